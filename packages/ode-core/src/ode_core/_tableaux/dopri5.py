"""Dormand--Prince 5(4), the FSAL pair behind scipy's RK45, ode45 and torchdiffeq's default."""

from __future__ import annotations

from .._tableau import ButcherTableau

# Tableau: J. R. Dormand and P. J. Prince, A family of embedded Runge-Kutta
# formulae, J. Comput. Appl. Math. 6 (1980) 19-26, Table 2.
# Continuous extension of order 4: L. F. Shampine, Some practical Runge-Kutta
# formulas, Math. Comp. 46 (1986) 135-150; written here as the coefficients
# of theta, theta^2, theta^3, theta^4 in b_i(theta) (the form scipy's RK45
# also uses). Its order conditions are checked in the test-suite.
DOPRI5 = ButcherTableau(
    name="dopri5",
    order=5,
    c=(0, "1/5", "3/10", "4/5", "8/9", 1, 1),
    a=(
        (),
        ("1/5",),
        ("3/40", "9/40"),
        ("44/45", "-56/15", "32/9"),
        ("19372/6561", "-25360/2187", "64448/6561", "-212/729"),
        ("9017/3168", "-355/33", "46732/5247", "49/176", "-5103/18656"),
        ("35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84"),
    ),
    b=("35/384", 0, "500/1113", "125/192", "-2187/6784", "11/84", 0),
    b_embedded=("5179/57600", 0, "7571/16695", "393/640", "-92097/339200", "187/2100", "1/40"),
    embedded_order=4,
    dense=(
        (1, "-8048581381/2820520608", "8663915743/2820520608", "-12715105075/11282082432"),
        (0, 0, 0, 0),
        (0, "131558114200/32700410799", "-68118460800/10900136933", "87487479700/32700410799"),
        (0, "-1754552775/470086768", "14199869525/1410260304", "-10690763975/1880347072"),
        (0, "127303824393/49829197408", "-318862633887/49829197408", "701980252875/199316789632"),
        (0, "-282668133/205662961", "2019193451/616988883", "-1453857185/822651844"),
        (0, "40617522/29380423", "-110615467/29380423", "69997945/29380423"),
    ),
    dense_order=4,
    citation=(
        "J. R. Dormand and P. J. Prince, J. Comput. Appl. Math. 6 (1980) 19-26; "
        "dense output: L. F. Shampine, Math. Comp. 46 (1986) 135-150."
    ),
)
