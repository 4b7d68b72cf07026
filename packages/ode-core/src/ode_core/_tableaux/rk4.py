"""The classical fourth-order Runge--Kutta method (Kutta 1901)."""

from __future__ import annotations

from .._tableau import ButcherTableau

RK4 = ButcherTableau(
    name="rk4",
    order=4,
    c=(0, "1/2", "1/2", 1),
    a=((), ("1/2",), (0, "1/2"), (0, 0, 1)),
    b=("1/6", "1/3", "1/3", "1/6"),
    citation="W. Kutta, Z. Math. Phys. 46 (1901) 435-453; Hairer, Norsett & Wanner, Solving ODEs I, Table II.1.2.",
)
