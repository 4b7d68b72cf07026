"""ode-adjoint: PyTorch gradient engines for neural ODEs, built on ode-core.

A drop-in for torchdiffeq: ``odeint(func, y0, t, ...)`` and
``odeint_adjoint(...)`` with torchdiffeq's arguments, every ode-core method
by name, and a choice of how the solve is differentiated: ``gradient=``
:class:`Backprop`, :class:`Adjoint` or :class:`Checkpoint` (objects, or
their names). Every solve runs through ode-core's one loop with a torch
stepper (:class:`TorchRungeKutta`); ``solve`` returns ode-core's result
vocabulary, differentiable, with events and dense output.

Examples
--------
>>> import torch, ode_adjoint
>>> net = torch.nn.Linear(2, 2)
>>> y = ode_adjoint.odeint(lambda t, y: net(y), torch.ones(3, 2), torch.linspace(0, 1, 4), gradient="checkpoint")
>>> y.sum().backward()
>>> net.weight.grad.shape
torch.Size([2, 2])
"""

from __future__ import annotations

import ode_core

from ._engines import Adjoint, Backprop, BackwardCounter, Checkpoint, GradientEngine
from ._odeint import GRADIENTS, odeint, odeint_adjoint, odeint_dense, odeint_event, solve
from ._solution import Solution, SolverError
from ._stepper import TorchRungeKutta, provide_stepper

__version__ = "0.2.0"

# The entry point (pyproject.toml) lets ode-core find the torch stepper without
# this import; registering it here as well covers a source tree on sys.path.
ode_core.register_stepper("torch", provide_stepper)

__all__ = [
    "GRADIENTS",
    "Adjoint",
    "Backprop",
    "BackwardCounter",
    "Checkpoint",
    "GradientEngine",
    "Solution",
    "SolverError",
    "TorchRungeKutta",
    "odeint",
    "odeint_adjoint",
    "odeint_dense",
    "odeint_event",
    "solve",
]
