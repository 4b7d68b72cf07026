"""Kutta's 3/8 rule, order 4 (Kutta 1901)."""

from __future__ import annotations

from .._tableau import ButcherTableau

RK38 = ButcherTableau(
    name="rk38",
    order=4,
    c=(0, "1/3", "2/3", 1),
    a=((), ("1/3",), ("-1/3", 1), (1, -1, 1)),
    b=("1/8", "3/8", "3/8", "1/8"),
    citation="W. Kutta, Z. Math. Phys. 46 (1901) 435-453; Hairer, Norsett & Wanner, Solving ODEs I, Table II.1.2.",
)
