"""Against torchdiffeq (a benchmark-only dependency): same problem, same tolerances."""

from __future__ import annotations

from typing import Any

import ode_adjoint
import ode_core
import pytest
import torch
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


def test_dopri87_is_torchdiffeqs_dopri8_tableau() -> None:
    """ode-core's dopri87 and torchdiffeq's dopri8 are both Prince and Dormand's RK8(7)13M: the same
    nodes, matrix, weights and error weights, to float64 rounding (torchdiffeq divides the published
    rationals in float64). torchdiffeq's tableau lists stages 1..13, the last being f(t + h, y1)."""
    from torchdiffeq._impl.dopri8 import _DOPRI8_TABLEAU as theirs

    ours = ode_core.TABLEAUX["dopri87"]

    def as_tensor(values: object) -> torch.Tensor:
        return torch.tensor([float(v) for v in values], dtype=DTYPE)  # type: ignore[attr-defined]

    def same(got: torch.Tensor, expected: torch.Tensor) -> None:
        torch.testing.assert_close(got, expected.to(DTYPE), rtol=2e-16, atol=1e-17)

    same(as_tensor(ours.c[1:]), theirs.alpha)
    assert len(theirs.beta) == ours.n_stages - 1
    for i, row in enumerate(theirs.beta, start=1):
        same(as_tensor(ours.a[i][:i]), row)
    same(as_tensor(ours.b), theirs.c_sol)
    same(as_tensor(ours.error_weights or ()), theirs.c_error)


@pytest.mark.parametrize("tolerance", [1e-5, 1e-7, 1e-9])
def test_dopri87_takes_torchdiffeqs_dopri8_steps(tolerance: float) -> None:
    """The same method and error norm; the controllers differ in details (torchdiffeq's never shrinks
    an accepted step and may grow the step after a rejection, scipy's and ours may shrink and may not
    grow), so the steps may part. To the final time only (so that neither interpolates): within 15%
    of the evaluations, and the answers differ by about the global error, as in
    test_dopri5_solution_agrees_with_torchdiffeq (measured: 80/80, 119/132, 223/223 evaluations and
    12, 99 and 44 tolerances apart, absolute, at 1e-5, 1e-7, 1e-9)."""
    func = TimeMLP()
    calls = [0]

    def counted(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return func(t, y)

    t = OUTPUT_TIMES[[0, -1]]
    results = {}
    with torch.no_grad():
        for name, odeint, method in (
            ("ours", ode_adjoint.odeint, "dopri87"),
            ("torchdiffeq", torchdiffeq.odeint, "dopri8"),
        ):
            calls[0] = 0
            ys = odeint(counted, _initial_state(), t, method=method, rtol=tolerance, atol=tolerance)
            results[name] = (ys, calls[0])
    (ours, our_calls), (theirs, their_calls) = results["ours"], results["torchdiffeq"]
    assert abs(our_calls / their_calls - 1) <= 0.15, (our_calls, their_calls)
    scale = tolerance * (1 + theirs.abs())
    assert float(((ours - theirs).abs() / scale).max()) < 100


@pytest.mark.parametrize("method", ["explicit_adams", "implicit_adams"])
def test_adams_methods_take_torchdiffeqs_steps(method: str) -> None:
    """torchdiffeq's Adams methods (two 3/8 steps, orders rising to 11 and 12,
    its correction test): the same evaluations and, to round-off, the same values.
    |h lambda| = 0.0022, inside explicit_adams's small region of stability."""
    decay = torch.tensor([[-0.1, 0.2], [-0.2, -0.1]], dtype=torch.float64)

    def counted(calls: list[int]) -> Any:
        def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            calls.append(1)
            return y @ decay.T + torch.sin(3 * t)

        return field

    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    theirs_calls: list[int] = []
    ours_calls: list[int] = []
    theirs = torchdiffeq.odeint(counted(theirs_calls), y0, t, method=method, options={"step_size": 0.01})
    ours = ode_adjoint.odeint(counted(ours_calls), y0, t, method=method, options={"step_size": 0.01})
    assert len(ours_calls) == len(theirs_calls)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12)


def test_odeint_dense_agrees_with_torchdiffeqs_and_is_differentiable() -> None:
    net = torch.nn.Linear(2, 2).to(DTYPE)
    torch.manual_seed(0)

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.tanh(net(y))

    y0 = torch.tensor([1.0, 0.5], dtype=DTYPE, requires_grad=True)
    t0, t1 = torch.tensor(0.0, dtype=DTYPE), torch.tensor(1.0, dtype=DTYPE)
    ours = ode_adjoint.odeint_dense(field, y0, t0, t1, rtol=1e-9, atol=1e-10)
    theirs = torchdiffeq.odeint_dense(field, y0, t0, t1, rtol=1e-9, atol=1e-10)
    times = torch.tensor([0.13, 0.5, 0.91], dtype=DTYPE)
    torch.testing.assert_close(ours(times), torch.stack([theirs(time) for time in times]), rtol=1e-7, atol=1e-9)
    at = torch.tensor(0.37, dtype=DTYPE)
    ours_grad = torch.autograd.grad(ours(at).sum(), y0)[0]
    theirs_grad = torch.autograd.grad(theirs(at).sum(), y0)[0]
    torch.testing.assert_close(ours_grad, theirs_grad, rtol=1e-6, atol=1e-8)
