"""Backward (implicit) Euler: the one-stage, first-order, L-stable method."""

from __future__ import annotations

from .._tableau import ButcherTableau

# Stability function R(z) = 1 / (1 - z): A-stable, and R(z) -> 0 as z -> -inf
# (L-stable). Hairer & Wanner, Solving ODEs II, 2nd ed., section IV.3.
BACKWARD_EULER = ButcherTableau(
    name="backward_euler",
    order=1,
    c=(1,),
    a=((1,),),
    b=(1,),
    citation="Hairer & Wanner, Solving ODEs II, 2nd ed., IV.3 (the implicit Euler method).",
)
