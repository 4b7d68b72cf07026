"""ode-adjoint: PyTorch gradient engines for neural ODEs, built on ode-core.

This release is a skeleton; the engines (backprop, adjoint, checkpointed)
land with their issue.
"""

from __future__ import annotations

__version__ = "0.0.1"

__all__: list[str] = []
