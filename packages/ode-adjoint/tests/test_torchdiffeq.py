"""Against torchdiffeq (a benchmark-only dependency): same problem, same tolerances."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ode_adjoint
from _adjoint_problems import DTYPE, TimeMLP, flat_parameter_grads, relative_difference

torchdiffeq = pytest.importorskip("torchdiffeq")

OUTPUT_TIMES = torch.linspace(0.0, 3.0, 7, dtype=DTYPE)


def _initial_state() -> torch.Tensor:
    return torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=DTYPE)


@pytest.mark.parametrize("grad_mode", ["enabled", "no_grad"])
@pytest.mark.parametrize("tolerance", [1e-5, 1e-7, 1e-9])
def test_dopri5_solution_agrees_with_torchdiffeq(tolerance: float, grad_mode: str) -> None:
    """The same method, controller and tolerances: the two solutions differ
    by about the solvers' global errors, which on this problem reach some
    tens of times the tolerance (torchdiffeq's own, against a dopri8
    reference at 1e-13); hence the factor 100. Under torch.no_grad() as well,
    how models are evaluated, where ode-adjoint runs without autograd."""
    func = TimeMLP()
    y0 = _initial_state()
    with torch.set_grad_enabled(grad_mode == "enabled"):
        ours = ode_adjoint.odeint(func, y0, OUTPUT_TIMES, method="dopri5", rtol=tolerance, atol=tolerance)
        theirs = torchdiffeq.odeint(func, y0, OUTPUT_TIMES, method="dopri5", rtol=tolerance, atol=tolerance)
    scale = tolerance * (1 + theirs.detach().abs())
    difference_in_tolerances = float(((ours - theirs).detach().abs() / scale).max())
    assert difference_in_tolerances < 100


def test_adjoint_gradients_agree_with_torchdiffeq() -> None:
    t = OUTPUT_TIMES[:4]
    gradients = []
    for odeint_adjoint in (ode_adjoint.odeint_adjoint, torchdiffeq.odeint_adjoint):
        func = TimeMLP()
        y0 = _initial_state().requires_grad_()
        ys = odeint_adjoint(func, y0, t, rtol=1e-9, atol=1e-9, adjoint_params=tuple(func.parameters()))
        ys.square().sum().backward()
        assert y0.grad is not None
        gradients.append((y0.grad, flat_parameter_grads(func)))
    for ours, theirs in zip(*gradients):
        assert relative_difference(ours, theirs) < 1e-6
