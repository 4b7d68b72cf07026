"""ode-adjoint: PyTorch gradient engines for neural ODEs, built on ode-core.

A drop-in for torchdiffeq: ``odeint(func, y0, t, ...)`` and
``odeint_adjoint(...)`` with torchdiffeq's arguments, every ode-core method
by name, and a choice of how the solve is differentiated (``gradient=``
``"backprop"``, ``"adjoint"`` or ``"checkpoint"``). ``solve`` returns the
statistics as well.

Examples
--------
>>> import torch, ode_adjoint
>>> net = torch.nn.Linear(2, 2)
>>> y = ode_adjoint.odeint(lambda t, y: net(y), torch.ones(3, 2), torch.linspace(0, 1, 4),
...                        gradient="checkpoint", adjoint_params=tuple(net.parameters()))
>>> y.sum().backward()
>>> net.weight.grad.shape
torch.Size([2, 2])
"""

from __future__ import annotations

from ._odeint import GRADIENTS, GradientStats, Solution, SolverError, odeint, odeint_adjoint, solve

__version__ = "0.1.0"

__all__ = ["GRADIENTS", "GradientStats", "Solution", "SolverError", "odeint", "odeint_adjoint", "solve"]
