"""Implicit midpoint rule: the one-stage Gauss method, order 2, symplectic."""

from __future__ import annotations

from .._tableau import ButcherTableau

# Stability function R(z) = (1 + z/2) / (1 - z/2), the same as the
# trapezoidal rule's: A-stable, |R(iy)| = 1 on the imaginary axis, and
# |R(z)| -> 1 as z -> -inf (not L-stable).
# Hairer, Norsett & Wanner, Solving ODEs I, 2nd ed., II.7 (Gauss methods);
# Hairer & Wanner, Solving ODEs II, 2nd ed., IV.3.
IMPLICIT_MIDPOINT = ButcherTableau(
    name="implicit_midpoint",
    order=2,
    c=("1/2",),
    a=(("1/2",),),
    b=(1,),
    citation="Hairer, Norsett & Wanner, Solving ODEs I, 2nd ed., II.7; Hairer & Wanner, Solving ODEs II, IV.3.",
)
