"""Gauss-Legendre collocation methods of orders 4 and 6: A-stable, symmetric, symplectic.

The ``s``-stage Gauss method collocates at the zeros of the shifted
Legendre polynomial of degree ``s`` and has order ``2 s`` (Hairer, Norsett &
Wanner, *Solving ODEs I*, Table II.7.3 and II.7.4; Butcher 1964):

    gl4:  c = 1/2 -+ sqrt3/6,
          a = ((1/4, 1/4 - sqrt3/6), (1/4 + sqrt3/6, 1/4)),  b = (1/2, 1/2);
    gl6:  c = (1/2 - sqrt15/10, 1/2, 1/2 + sqrt15/10),
          a = ((5/36, 2/9 - sqrt15/15, 5/36 - sqrt15/30),
               (5/36 + sqrt15/24, 2/9, 5/36 - sqrt15/24),
               (5/36 + sqrt15/30, 2/9 + sqrt15/15, 5/36)),
          b = (5/18, 4/9, 5/18).

torchdiffeq's ``gl4`` and ``gl6`` are these tableaux. The coefficients lie in
``Q(sqrt 3)`` and ``Q(sqrt 15)``; they are stored as 40-digit decimals
(``exact=False``). Neither has an error estimate: fixed steps only.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from .._tableau import ButcherTableau

_DIGITS = 40


def _text(value: Decimal) -> str:
    with localcontext() as rounding:
        rounding.prec = _DIGITS
        return str(+value)


def _gl4() -> dict[str, tuple]:  # type: ignore[type-arg]
    with localcontext() as context:
        context.prec = _DIGITS + 5
        r = Decimal(3).sqrt() / 6
        half, quarter = Decimal(1) / 2, Decimal(1) / 4
        return {
            "c": (_text(half - r), _text(half + r)),
            "a": ((_text(quarter), _text(quarter - r)), (_text(quarter + r), _text(quarter))),
        }


def _gl6() -> dict[str, tuple]:  # type: ignore[type-arg]
    with localcontext() as context:
        context.prec = _DIGITS + 5
        s15 = Decimal(15).sqrt()
        half, first, middle = Decimal(1) / 2, Decimal(5) / 36, Decimal(2) / 9
        return {
            "c": (_text(half - s15 / 10), "1/2", _text(half + s15 / 10)),
            "a": (
                (_text(first), _text(middle - s15 / 15), _text(first - s15 / 30)),
                (_text(first + s15 / 24), _text(middle), _text(first - s15 / 24)),
                (_text(first + s15 / 30), _text(middle + s15 / 15), _text(first)),
            ),
        }


_GL4, _GL6 = _gl4(), _gl6()

GL4 = ButcherTableau(
    name="gl4",
    order=4,
    c=_GL4["c"],
    a=_GL4["a"],
    b=("1/2", "1/2"),
    exact=False,
    citation="J. C. Butcher, Math. Comp. 18 (1964) 50-64; Hairer, Norsett & Wanner, Solving ODEs I, Table II.7.3.",
)

GL6 = ButcherTableau(
    name="gl6",
    order=6,
    c=_GL6["c"],
    a=_GL6["a"],
    b=("5/18", "4/9", "5/18"),
    exact=False,
    citation="J. C. Butcher, Math. Comp. 18 (1964) 50-64; Hairer, Norsett & Wanner, Solving ODEs I, Table II.7.4.",
)
