"""Kvaerno's ESDIRK 3(2): 4 stages, explicit first stage, L-stable, stiffly accurate."""

from __future__ import annotations

from fractions import Fraction

from .._tableau import ButcherTableau

# Tableau: A. Kvaerno, Singly diagonally implicit Runge-Kutta methods with an
# explicit first stage, BIT Numerical Mathematics 44 (2004) 489-502, the
# 4-stage ESDIRK 3/2 pair. Every coefficient is a rational function of the
# diagonal entry gamma:
#
#   c   = (0, 2 gamma, 1, 1)
#   a21 = gamma
#   a31 = (-4 gamma^2 + 6 gamma - 1) / (4 gamma)
#   a32 = (1 - 2 gamma) / (4 gamma)
#   a41 = (6 gamma - 1) / (12 gamma)
#   a42 = -1 / ((24 gamma - 12) gamma)
#   a43 = (-6 gamma^2 + 6 gamma - 1) / (6 gamma - 3)
#   a_ii = gamma for i >= 2;  b = row 4 of a;  b_embedded = row 3 of a.
#
# With these formulas b has order 3 and b_embedded order 2 for every gamma;
# gamma itself, a root of a cubic, is chosen to make the method L-stable
# (R(-inf) = 0). The paper publishes it as the decimal below, which carries
# that root to about 1e-11, so R(-inf) is ~1e-10 rather than zero. The other
# coefficients are evaluated from the formulas exactly (in Fraction
# arithmetic) at that published decimal, once, at import time; they agree
# with the 15-digit decimals other transcriptions list.
_GAMMA = Fraction("0.4358665215")

_A31 = (-4 * _GAMMA**2 + 6 * _GAMMA - 1) / (4 * _GAMMA)
_A32 = (1 - 2 * _GAMMA) / (4 * _GAMMA)
_A41 = (6 * _GAMMA - 1) / (12 * _GAMMA)
_A42 = -1 / ((24 * _GAMMA - 12) * _GAMMA)
_A43 = (-6 * _GAMMA**2 + 6 * _GAMMA - 1) / (6 * _GAMMA - 3)

KVAERNO3 = ButcherTableau(
    name="kvaerno3",
    order=3,
    c=(0, 2 * _GAMMA, 1, 1),
    a=(
        (0, 0, 0, 0),
        (_GAMMA, _GAMMA, 0, 0),
        (_A31, _A32, _GAMMA, 0),
        (_A41, _A42, _A43, _GAMMA),
    ),
    b=(_A41, _A42, _A43, _GAMMA),
    b_embedded=(_A31, _A32, _GAMMA, 0),
    embedded_order=2,
    exact=False,
    citation="A. Kvaerno, BIT Numer. Math. 44 (2004) 489-502, the 4-stage ESDIRK 3/2 method.",
)
