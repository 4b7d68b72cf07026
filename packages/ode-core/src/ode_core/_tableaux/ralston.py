"""Ralston's second-order method: the two-stage method of minimum error bound."""

from __future__ import annotations

from .._tableau import ButcherTableau

RALSTON = ButcherTableau(
    name="ralston",
    order=2,
    c=(0, "2/3"),
    a=((), ("2/3",)),
    b=("1/4", "3/4"),
    citation="A. Ralston, Runge-Kutta methods with minimum error bounds, Math. Comp. 16 (1962) 431-437.",
)
