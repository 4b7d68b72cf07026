"""Heun--Euler 2(1): Heun's method with forward Euler as the embedded method."""

from __future__ import annotations

from .._tableau import ButcherTableau

HEUN_EULER = ButcherTableau(
    name="heun_euler",
    order=2,
    c=(0, 1),
    a=((), (1,)),
    b=("1/2", "1/2"),
    b_embedded=(1, 0),
    embedded_order=1,
    citation="Hairer, Norsett & Wanner, Solving ODEs I, II.4 (embedded pair of Heun's and Euler's methods).",
)
