"""Kvaerno's ESDIRK 5(4): 7 stages, explicit first stage, L-stable, stiffly accurate."""

from __future__ import annotations

from .._tableau import ButcherTableau

# Tableau: A. Kvaerno, Singly diagonally implicit Runge-Kutta methods with an
# explicit first stage, BIT Numerical Mathematics 44 (2004) 489-502, the
# 7-stage ESDIRK 5/4 pair with diagonal gamma = 0.26. The decimals are the
# published ones, verbatim: 17 digits for a, 15 for the nodes c (whose row
# sums therefore hold to ~4e-16), as SUNDIALS/ARKODE, OrdinaryDiffEq.jl and
# diffrax all carry them. The method is
# stiffly accurate (b is the last row of a) and its embedded 4th-order
# solution is the sixth stage (b_embedded is row 6 of a, last weight zero);
# implementations store the difference b - b_embedded instead.
_GAMMA = "0.26"

_ROW6 = (
    "0.13855640231268224",
    0,
    "-0.04245337201752043",
    "0.02446657898003141",
    "0.61943039072480676",
    _GAMMA,
    0,
)
_ROW7 = (
    "0.13659751177640291",
    0,
    "-0.05496908796538376",
    "-0.04118626728321046",
    "0.62993304899016403",
    "0.06962479448202728",
    _GAMMA,
)

KVAERNO5 = ButcherTableau(
    name="kvaerno5",
    order=5,
    c=(0, "0.52", "1.230333209967908", "0.895765984350076", "0.436393609858648", 1, 1),
    a=(
        (0, 0, 0, 0, 0, 0, 0),
        (_GAMMA, _GAMMA, 0, 0, 0, 0, 0),
        ("0.13", "0.84033320996790809", _GAMMA, 0, 0, 0, 0),
        ("0.22371961478320505", "0.47675532319799699", "-0.06470895363112615", _GAMMA, 0, 0, 0),
        ("0.16648564323248321", "0.10450018841591720", "0.03631482272098715", "-0.13090704451073998", _GAMMA, 0, 0),
        _ROW6,
        _ROW7,
    ),
    b=_ROW7,
    b_embedded=_ROW6,
    embedded_order=4,
    exact=False,
    citation="A. Kvaerno, BIT Numer. Math. 44 (2004) 489-502, the 7-stage ESDIRK 5/4 method (gamma = 0.26).",
)
