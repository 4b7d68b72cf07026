"""Heun's method (explicit trapezoidal rule), order 2 (Heun 1900)."""

from __future__ import annotations

from .._tableau import ButcherTableau

HEUN = ButcherTableau(
    name="heun",
    order=2,
    c=(0, 1),
    a=((), (1,)),
    b=("1/2", "1/2"),
    citation="K. Heun, Z. Math. Phys. 45 (1900) 23-38; Hairer, Norsett & Wanner, Solving ODEs I, II.1.",
)
