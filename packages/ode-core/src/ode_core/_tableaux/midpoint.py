"""Explicit midpoint rule, order 2 (Runge 1895)."""

from __future__ import annotations

from .._tableau import ButcherTableau

MIDPOINT = ButcherTableau(
    name="midpoint",
    order=2,
    c=(0, "1/2"),
    a=((), ("1/2",)),
    b=(0, 1),
    citation="C. Runge, Math. Ann. 46 (1895) 167-178; Hairer, Norsett & Wanner, Solving ODEs I, II.1.",
)
