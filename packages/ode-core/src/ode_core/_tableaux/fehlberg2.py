"""Fehlberg's RK1(2) pair, propagating the second-order solution."""

from __future__ import annotations

from .._tableau import ButcherTableau

# E. Fehlberg, Low-order classical Runge-Kutta formulas with stepsize control
# and their application to some heat transfer problems, NASA TR R-315 (1969),
# the RK1(2) formula. The third stage is the first-order solution; we
# propagate the second-order one (local extrapolation), as torchdiffeq does.
# Fehlberg made the first-order formula's error constant tiny (1/512), so the
# estimate it gives is well below the propagated solution's own error: the
# global error is proportional to the tolerance but can be hundreds of times
# it (measured on DETEST in the test-suite). Prefer bosh3 for real work.
FEHLBERG2 = ButcherTableau(
    name="fehlberg2",
    order=2,
    c=(0, "1/2", 1),
    a=((), ("1/2",), ("1/256", "255/256")),
    b=("1/512", "255/256", "1/512"),
    b_embedded=("1/256", "255/256", 0),
    embedded_order=1,
    citation="E. Fehlberg, NASA Technical Report R-315 (1969), RK1(2).",
)
