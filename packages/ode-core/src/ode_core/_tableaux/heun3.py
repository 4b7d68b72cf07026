"""Heun's third-order method (Heun 1900)."""

from __future__ import annotations

from .._tableau import ButcherTableau

HEUN3 = ButcherTableau(
    name="heun3",
    order=3,
    c=(0, "1/3", "2/3"),
    a=((), ("1/3",), (0, "2/3")),
    b=("1/4", 0, "3/4"),
    citation="K. Heun, Z. Math. Phys. 45 (1900) 23-38; Hairer, Norsett & Wanner, Solving ODEs I, Table II.1.1.",
)
