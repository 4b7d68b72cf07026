"""Bogacki--Shampine 3(2), the FSAL pair behind scipy's RK23 and MATLAB's ode23."""

from __future__ import annotations

from .._tableau import ButcherTableau

# The continuous extension is the cubic Hermite interpolant, which for this
# FSAL pair is third order and costs nothing (Bogacki & Shampine 1989, sec. 4).
BOSH3 = ButcherTableau(
    name="bosh3",
    order=3,
    c=(0, "1/2", "3/4", 1),
    a=((), ("1/2",), (0, "3/4"), ("2/9", "1/3", "4/9")),
    b=("2/9", "1/3", "4/9", 0),
    b_embedded=("7/24", "1/4", "1/3", "1/8"),
    embedded_order=2,
    citation="P. Bogacki and L. F. Shampine, A 3(2) pair of Runge-Kutta formulas, Appl. Math. Lett. 2 (1989) 321-325.",
)
