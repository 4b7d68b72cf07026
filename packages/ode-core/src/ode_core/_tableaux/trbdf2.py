"""TR-BDF2 as a Runge-Kutta method: a trapezoidal stage then BDF2, order 2, L-stable.

Bank, Coughran, Fichtner, Grosse, Rose & Smith (IEEE Trans. CAD 4 (1985)
436-451) with ``gamma = 2 - sqrt 2`` for the trapezoidal fraction of the
step; written as the ESDIRK of Hosea & Shampine (Appl. Numer. Math. 20
(1996) 21-37), with ``d = 1 - sqrt(2)/2`` on the diagonal and
``w = sqrt(2)/4``:

    c = (0, 2 d, 1),  a = ((0, 0, 0), (d, d, 0), (w, w, d)),  b = (w, w, d).

torchdiffeq's ``trbdf2`` is this tableau. The coefficients lie in
``Q(sqrt 2)``; they are stored as 40-digit decimals (``exact=False``).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from .._tableau import ButcherTableau

_DIGITS = 40


def _coefficients() -> tuple[str, str, str]:
    with localcontext() as context:
        context.prec = _DIGITS + 5
        root = Decimal(2).sqrt()
        diagonal, weight = 1 - root / 2, root / 4
        node = 2 * diagonal
        context.prec = _DIGITS
        return str(+diagonal), str(+weight), str(+node)


_D, _W, _NODE = _coefficients()

TRBDF2 = ButcherTableau(
    name="trbdf2",
    order=2,
    c=(0, _NODE, 1),
    a=((0, 0, 0), (_D, _D, 0), (_W, _W, _D)),
    b=(_W, _W, _D),
    exact=False,
    citation=(
        "R. E. Bank et al., IEEE Trans. Computer-Aided Design 4 (1985) 436-451; "
        "M. E. Hosea, L. F. Shampine, Appl. Numer. Math. 20 (1996) 21-37 (the ESDIRK form)."
    ),
)
