"""Alexander's two-stage SDIRK of order 2: L-stable, stiffly accurate.

With ``gamma = 1 - sqrt(2)/2`` (R. Alexander, Diagonally implicit Runge-Kutta
methods for stiff O.D.E.'s, SIAM J. Numer. Anal. 14 (1977) 1006-1021, the
two-stage method of order 2; Hairer & Wanner, *Solving ODEs II*, IV.6):

    c = (gamma, 1),  a = ((gamma, 0), (1 - gamma, gamma)),  b = (1 - gamma, gamma).

torchdiffeq's ``sdirk2`` is this tableau. The coefficients lie in
``Q(sqrt 2)``; they are stored as 40-digit decimals (``exact=False``).
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from .._tableau import ButcherTableau

_DIGITS = 40


def _gamma_and_complement() -> tuple[str, str]:
    with localcontext() as context:
        context.prec = _DIGITS + 5
        gamma = 1 - Decimal(2).sqrt() / 2
        complement = 1 - gamma
        context.prec = _DIGITS
        return str(+gamma), str(+complement)


_GAMMA, _COMPLEMENT = _gamma_and_complement()

SDIRK2 = ButcherTableau(
    name="sdirk2",
    order=2,
    c=(_GAMMA, 1),
    a=((_GAMMA, 0), (_COMPLEMENT, _GAMMA)),
    b=(_COMPLEMENT, _GAMMA),
    exact=False,
    citation="R. Alexander, SIAM J. Numer. Anal. 14 (1977) 1006-1021; Hairer & Wanner, Solving ODEs II, IV.6.",
)
