"""The three engines against each other, against ode-core, and their statistics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import ode_adjoint
import ode_core
import pytest
import torch
from _adjoint_problems import (
    DTYPE,
    EXPLICIT,
    EXPLICIT_ADAPTIVE,
    GRADIENTS,
    TimeMLP,
    flat_parameter_grads,
    forced_van_der_pol,
    relative_difference,
    van_der_pol_inputs,
)
from ode_core.validation import check_method

# Output times inside steps and at the end.
OUTPUT_TIMES = (0.0, 0.35, 1.0, 1.6)
# The field's pulse at t = 0.8 makes adaptive solves reject steps after
# accepted ones at these tolerances.
PULSE_HEIGHT = 2.0
RTOL, ATOL = 1e-5, 1e-7


def _batch_y0() -> torch.Tensor:
    return torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=DTYPE, requires_grad=True)


def _solve_kwargs(method: str) -> dict[str, Any]:
    if check_method(method).adaptive:
        return {"rtol": RTOL, "atol": ATOL}
    return {"options": {"step_size": 0.05}}


def _mlp_gradients(
    method: str, gradient: str, pulse: bool = True, **solve_kwargs: Any
) -> tuple[ode_adjoint.Solution, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Solution and gradients (y0, parameters, t) of a weighted sum of the outputs."""
    func = TimeMLP(pulse_height=PULSE_HEIGHT if pulse else 0.0)
    y0 = _batch_y0()
    t = torch.tensor(OUTPUT_TIMES, dtype=DTYPE, requires_grad=True)
    solution = ode_adjoint.solve(func, y0, t, method=method, gradient=gradient, **solve_kwargs)
    weights = torch.linspace(-1.0, 2.0, solution.ys.numel(), dtype=DTYPE).reshape(solution.ys.shape)
    (solution.ys * weights).sum().backward()
    assert y0.grad is not None
    assert t.grad is not None
    return solution, (y0.grad, flat_parameter_grads(func), t.grad)


# --- the forward solve -------------------------------------------------------


@pytest.mark.parametrize("method", EXPLICIT_ADAPTIVE)
def test_forward_solution_does_not_depend_on_engine_or_grad_mode(method: str) -> None:
    """Every engine runs the same forward loop (backprop recording a graph,
    adjoint and checkpoint under no_grad), so the steps and the solution must
    be the same; so must a solve under torch.no_grad()."""
    func = TimeMLP(pulse_height=PULSE_HEIGHT)
    t = torch.tensor(OUTPUT_TIMES, dtype=DTYPE)
    solutions = {
        gradient: ode_adjoint.solve(func, _batch_y0(), t, method=method, gradient=gradient, rtol=RTOL, atol=ATOL)
        for gradient in GRADIENTS
    }
    with torch.no_grad():
        solutions["no_grad"] = ode_adjoint.solve(func, _batch_y0(), t, method=method, rtol=RTOL, atol=ATOL)
    reference = solutions["backprop"]
    assert reference.stats.n_rejected > 0, "the problem should exercise rejected steps"
    for name, solution in solutions.items():
        assert (solution.stats.n_steps, solution.stats.n_rejected) == (
            reference.stats.n_steps,
            reference.stats.n_rejected,
        ), name
        # Same steps; the values agree to round-off only, since the loop sums
        # stages with addmv without autograd and with add chains under it
        # (dopri8's 13 stages reach about 1e-12 here).
        torch.testing.assert_close(solution.ys.detach(), reference.ys.detach(), rtol=1e-10, atol=1e-10, msg=name)


@pytest.mark.parametrize("method", EXPLICIT)
def test_explicit_methods_take_ode_core_steps(method: str) -> None:
    """The torch loop reimplements ode-core's explicit solve (same tableau,
    controller, initial step and output rule): same steps, same values."""
    theta = torch.tensor([1.0, 0.8, 0.5], dtype=DTYPE)
    field = forced_van_der_pol(theta)
    y0 = torch.tensor([0.6, -0.4], dtype=DTYPE, requires_grad=True)
    t = torch.linspace(0.0, 2.0, 9, dtype=DTYPE)
    if check_method(method).adaptive:
        core_kwargs: dict[str, Any] = {"rtol": 1e-6, "atol": 1e-8}
        ours_kwargs: dict[str, Any] = dict(core_kwargs)
    else:
        core_kwargs = {"step_size": 0.05}
        ours_kwargs = {"options": {"step_size": 0.05}}
    expected = ode_core.solve(
        lambda time, y: field(torch.tensor(time, dtype=DTYPE), y), y0.detach(), t.tolist(), method=method, **core_kwargs
    )
    got = ode_adjoint.solve(field, y0, t, method=method, **ours_kwargs)
    assert got.stats.n_steps == expected.stats.n_steps
    assert got.stats.n_accepted == expected.stats.n_accepted
    if method == "dopri87":
        # Its local error at the initial step is at round-off level, where the
        # two loops' matrix products (summed in different orders) give error
        # estimates tens of percent apart: the later steps differ slightly, and
        # the interpolated outputs by a small fraction of rtol (measured 2.3e-8).
        torch.testing.assert_close(got.ys.detach(), expected.ys, rtol=1e-7, atol=1e-7)
    else:
        torch.testing.assert_close(got.ys.detach(), expected.ys, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("method", EXPLICIT_ADAPTIVE)
def test_outputs_inside_steps_are_as_accurate_as_step_ends(method: str) -> None:
    """An output time between steps is interpolated; it should be about as
    accurate as a solve that lands on that time (ode-core steps onto outputs
    for methods whose interpolant is much less accurate than the method)."""
    theta = torch.tensor([1.0, 0.8, 0.5], dtype=DTYPE)
    field = forced_van_der_pol(theta)
    y0 = torch.tensor([1.0, -2.0], dtype=DTYPE)
    t = torch.linspace(0.0, 3.0, 7, dtype=DTYPE)
    tolerance = 1e-6
    exact = ode_adjoint.odeint(field, y0, t, method="dopri8", rtol=1e-13, atol=1e-13)
    interpolated = ode_adjoint.odeint(field, y0, t, method=method, rtol=tolerance, atol=tolerance)
    interpolation_error = float((interpolated - exact).abs().max())
    landing_error = max(
        float(
            (ode_adjoint.odeint(field, y0, t[[0, i]], method=method, rtol=tolerance, atol=tolerance)[-1] - exact[i])
            .abs()
            .max()
        )
        for i in range(1, len(t))
    )
    assert interpolation_error < 10 * max(landing_error, tolerance)


# --- checkpoint and backprop ------------------------------------------------


@pytest.mark.parametrize("method", EXPLICIT)
def test_checkpoint_equals_backprop(method: str) -> None:
    backprop, expected = _mlp_gradients(method, "backprop", **_solve_kwargs(method))
    checkpoint, got = _mlp_gradients(method, "checkpoint", **_solve_kwargs(method))
    # The forward values agree to round-off (addmv without autograd, add
    # chains under it); the gradients, which checkpoint recomputes with the
    # very operations of backprop, to the 1e-9.
    torch.testing.assert_close(checkpoint.ys, backprop.ys, rtol=1e-10, atol=1e-10)
    for name, got_grad, expected_grad in zip(("y0", "parameters", "t"), got, expected):
        assert relative_difference(got_grad, expected_grad) < 1e-9, name


# cash_karp: adaptive, not FSAL, outputs interpolated inside steps; rk4: fixed.
@pytest.mark.parametrize("budget", [1, 2, 3, 5, 8, 1000])
@pytest.mark.parametrize("method", ["cash_karp", "rk4"])
def test_checkpoint_with_a_revolve_budget_equals_backprop(method: str, budget: int) -> None:
    solve_kwargs = _solve_kwargs(method)
    _, expected = _mlp_gradients(method, "backprop", **solve_kwargs)
    options = {**solve_kwargs.get("options", {}), "checkpoints": budget}
    checkpoint, got = _mlp_gradients(method, "checkpoint", **{**solve_kwargs, "options": options})
    assert checkpoint.stats.n_accepted > 8, "the budgets should be below the number of steps"
    for name, got_grad, expected_grad in zip(("y0", "parameters", "t"), got, expected):
        assert relative_difference(got_grad, expected_grad) < 1e-9, name


def _revolve_repetitions(n_steps: int, budget: int) -> int:
    """Fewest recomputations per step with which ``budget`` stored states
    reverse ``n_steps`` steps: the least r with C(budget + r, budget) >= n_steps
    (Griewank & Walther 2000)."""
    repetitions = 0
    while math.comb(budget + repetitions, budget) < n_steps:
        repetitions += 1
    return repetitions


def test_revolve_budget_sets_the_recomputation() -> None:
    """rk4 with n fixed steps and one output at the end. Without a budget each
    step is replayed once (4 evaluations). With one checkpoint (y0 only) step
    k is reached again by k recomputed steps: n (n + 1) / 2 replays in all.
    With a budget K each step is recomputed at most r(n, K) times, and a
    larger budget never costs more."""
    n_steps, stages = 12, 4
    y0, theta = van_der_pol_inputs()
    t = torch.tensor([0.0, 0.6], dtype=DTYPE)

    def backward_counts(budget: int | None) -> tuple[int, int]:
        options: dict[str, Any] = {"step_size": 0.6 / n_steps}
        if budget is not None:
            options["checkpoints"] = budget
        solution = ode_adjoint.solve(
            forced_van_der_pol(theta),
            y0,
            t,
            method="rk4",
            options=options,
            gradient="checkpoint",
            adjoint_params=(theta,),
        )
        assert solution.stats.n_accepted == n_steps
        solution.ys[-1].sum().backward()
        backward = solution.backward_stats
        assert backward is not None
        return backward.nfev, backward.n_steps

    assert backward_counts(None) == (stages * n_steps, n_steps)
    assert backward_counts(1) == (stages * n_steps * (n_steps + 1) // 2, n_steps)
    previous = stages * n_steps * (n_steps + 1) // 2
    for budget in (2, 3, 4, 6, n_steps, 2 * n_steps):
        nfev, steps = backward_counts(budget)
        assert steps == n_steps
        recomputed_steps = nfev // stages - n_steps
        assert recomputed_steps <= _revolve_repetitions(n_steps, budget) * n_steps, budget
        assert nfev <= previous, budget
        previous = nfev


# --- the adjoint --------------------------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dopri8", "dopri87", "cash_karp"])
def test_adjoint_converges_to_backprop(method: str) -> None:
    differences = []
    for tolerance in (1e-4, 1e-7, 1e-10):
        _, expected = _mlp_gradients(method, "backprop", pulse=False, rtol=tolerance, atol=tolerance)
        _, got = _mlp_gradients(method, "adjoint", pulse=False, rtol=tolerance, atol=tolerance)
        differences.append(max(relative_difference(g, e) for g, e in zip(got, expected)))
    assert differences[0] > differences[1] > differences[2], differences
    assert differences[2] < 1e-6, differences


@pytest.mark.parametrize("method", ["kvaerno5", "radau5"])
def test_adjoint_of_implicit_methods_matches_backprop(method: str) -> None:
    """Backprop differentiates the Newton iterations, the adjoint solves the
    adjoint equation with the same implicit method: they agree to tolerance."""
    t = torch.tensor([0.0, 0.4, 1.0], dtype=DTYPE, requires_grad=True)
    gradients = {}
    for gradient in ("backprop", "adjoint"):
        y0, theta = van_der_pol_inputs()
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            t,
            method=method,
            gradient=gradient,
            adjoint_params=(theta,),
            rtol=1e-10,
            atol=1e-10,
        )
        gradients[gradient] = torch.autograd.grad(ys.square().sum(), (y0, theta, t))
    for name, got, expected in zip(("y0", "parameters", "t"), gradients["adjoint"], gradients["backprop"]):
        assert relative_difference(got, expected) < 1e-7, name


def test_odeint_adjoint_is_odeint_with_the_adjoint_engine() -> None:
    func = TimeMLP()
    t = torch.tensor(OUTPUT_TIMES, dtype=DTYPE)
    results = []
    for call in (
        lambda y0: ode_adjoint.odeint_adjoint(func, y0, t, rtol=1e-6, atol=1e-8),
        lambda y0: ode_adjoint.odeint(func, y0, t, rtol=1e-6, atol=1e-8, gradient="adjoint"),
    ):
        func.zero_grad()
        y0 = _batch_y0()
        ys = call(y0)
        ys.square().sum().backward()
        results.append((ys.detach(), y0.grad, flat_parameter_grads(func)))
    for got, expected in zip(*results):
        assert torch.equal(got, expected)


def test_adjoint_method_and_tolerances_apply_to_the_backward_solve() -> None:
    forward = {"pulse": False, "rtol": 1e-10, "atol": 1e-10}
    _, expected = _mlp_gradients("dopri5", "backprop", **forward)
    tight, got = _mlp_gradients(
        "dopri5", "adjoint", **forward, adjoint_method="dopri8", adjoint_rtol=1e-10, adjoint_atol=1e-10
    )
    for got_grad, expected_grad in zip(got, expected):
        assert relative_difference(got_grad, expected_grad) < 1e-7
    loose, loose_grads = _mlp_gradients("dopri5", "adjoint", **forward, adjoint_rtol=1e-4, adjoint_atol=1e-4)
    assert loose.stats.nfev == tight.stats.nfev  # same forward solve
    strict, _ = _mlp_gradients("dopri5", "adjoint", **forward)
    assert loose.backward_stats.nfev < strict.backward_stats.nfev
    assert relative_difference(loose_grads[1], expected[1]) > relative_difference(got[1], expected[1])


def test_seminorm_gives_the_same_gradient_with_no_more_work() -> None:
    """Leaving the parameter adjoints out of the backward error control
    (Kidger, Chen & Lyons 2021) keeps the gradient to tolerance and never
    takes more steps; with many parameters it takes fewer."""
    func = TimeMLP(n_hidden=32)
    y0 = _batch_y0().detach()
    t = torch.tensor((0.0, 0.5, 1.0), dtype=DTYPE)
    saved_work = False
    for tolerance in (1e-4, 1e-6, 1e-8):
        gradients, work = {}, {}
        for name, adjoint_options in (("full", None), ("seminorm", {"norm": "seminorm"})):
            func.zero_grad()
            solution = ode_adjoint.solve(
                func, y0, t, gradient="adjoint", rtol=tolerance, atol=tolerance, adjoint_options=adjoint_options
            )
            assert solution.backward_stats is None
            solution.ys.square().sum().backward()
            gradients[name] = flat_parameter_grads(func)
            work[name] = solution.backward_stats.nfev
        func.zero_grad()
        ode_adjoint.odeint(func, y0, t, rtol=tolerance, atol=tolerance).square().sum().backward()
        exact = flat_parameter_grads(func)
        assert work["seminorm"] <= work["full"]
        saved_work = saved_work or work["seminorm"] < work["full"]
        assert relative_difference(gradients["seminorm"], exact) < 1e3 * tolerance
        assert relative_difference(gradients["full"], exact) < 1e3 * tolerance
    assert saved_work


# --- statistics ----------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_stats_count_the_forward_solve_and_fill_in_the_backward_counts(gradient: str) -> None:
    func = TimeMLP()
    y0 = _batch_y0()
    solution = ode_adjoint.solve(func, y0, torch.tensor(OUTPUT_TIMES, dtype=DTYPE), gradient=gradient, rtol=1e-6)
    stats = solution.stats
    assert stats.n_steps == stats.n_accepted + stats.n_rejected
    assert stats.n_accepted > 0
    # dopri5: 7 stages, FSAL: 6 new evaluations per step, plus f(t0, y0) and
    # the initial-step heuristic's one.
    assert stats.nfev == 6 * stats.n_steps + 2
    assert solution.backward_stats is None
    solution.ys.sum().backward()
    backward = solution.backward_stats
    if gradient == "backprop":
        assert backward is None
    elif gradient == "checkpoint":
        assert backward is not None
        assert backward.n_steps == backward.n_accepted == stats.n_accepted
        assert backward.nfev >= 7 * stats.n_accepted
    else:
        assert backward is not None
        assert backward.n_steps == backward.n_accepted + backward.n_rejected > 0
        assert backward.nfev > backward.n_steps


def test_stats_of_each_solve_are_its_own() -> None:
    func = TimeMLP()
    t = torch.tensor(OUTPUT_TIMES, dtype=DTYPE)
    loose = ode_adjoint.solve(func, _batch_y0(), t, gradient="adjoint", rtol=1e-3, atol=1e-6)
    tight = ode_adjoint.solve(func, _batch_y0(), t, gradient="adjoint", rtol=1e-9, atol=1e-9)
    assert loose.stats.n_steps < tight.stats.n_steps
    loose.ys.sum().backward()
    assert tight.backward_stats is None
    assert loose.backward_stats is not None and loose.backward_stats.nfev > 0


def test_float_times_give_the_same_results_as_tensor_times() -> None:
    func = TimeMLP()
    y0 = _batch_y0().detach()
    from_list = ode_adjoint.odeint(func, y0, list(OUTPUT_TIMES))
    from_array = ode_adjoint.odeint(func, y0, np.array(OUTPUT_TIMES))
    from_tensor = ode_adjoint.odeint(func, y0, torch.tensor(OUTPUT_TIMES, dtype=DTYPE))
    assert torch.equal(from_list, from_tensor)
    assert torch.equal(from_array, from_tensor)
