"""Trapezoidal rule (Crank--Nicolson), order 2, as an ESDIRK with an explicit first stage."""

from __future__ import annotations

from .._tableau import ButcherTableau

# y1 = y + h/2 (f(t, y) + f(t + h, y1)): the first stage is explicit (it is
# f(t, y), row zero of a), the second solves for y1 itself, and b equals the
# last row of a (stiffly accurate in form). Stability function
# R(z) = (1 + z/2) / (1 - z/2): A-stable, but |R(z)| -> 1 as z -> -inf, so
# not L-stable (stiff components are not damped).
# J. Crank and P. Nicolson, Proc. Cambridge Philos. Soc. 43 (1947) 50-67;
# Hairer & Wanner, Solving ODEs II, 2nd ed., IV.3.
TRAPEZOID = ButcherTableau(
    name="trapezoid",
    order=2,
    c=(0, 1),
    a=((0, 0), ("1/2", "1/2")),
    b=("1/2", "1/2"),
    citation=(
        "J. Crank and P. Nicolson, Proc. Cambridge Philos. Soc. 43 (1947) 50-67; "
        "Hairer & Wanner, Solving ODEs II, 2nd ed., IV.3."
    ),
)
