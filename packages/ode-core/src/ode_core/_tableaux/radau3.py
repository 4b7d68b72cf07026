"""Radau IIA of order 3: 2 implicit stages, collocation, L-stable, stiffly accurate (Ehle 1969)."""

from __future__ import annotations

from .._tableau import ButcherTableau

# Hairer & Wanner, Solving ODEs II, Table IV.5.5 (s = 2). torchdiffeq's
# radauIIA3 is this tableau. No error estimate: fixed steps only.
RADAU3 = ButcherTableau(
    name="radau3",
    order=3,
    c=("1/3", 1),
    a=(("5/12", "-1/12"), ("3/4", "1/4")),
    b=("3/4", "1/4"),
    citation="B. L. Ehle, Univ. Waterloo report CSRR 2010 (1969); Hairer & Wanner, Solving ODEs II, Table IV.5.5.",
)
