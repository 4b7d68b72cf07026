"""torchdiffeq's grid semantics under every engine: a single output time, fixed steps on the grid
of ``t`` or of ``grid_constructor``, and torchdiffeq's method names."""

from __future__ import annotations

import warnings

import numpy as np
import ode_adjoint
import ode_core
import pytest
import torch
from _adjoint_problems import DTYPE, GRADIENTS, TimeMLP
from ode_core.validation import check_method


@pytest.mark.parametrize("gradient", GRADIENTS)
@pytest.mark.parametrize("method", ["dopri5", "rk4", "implicit_euler", "radau5"])
def test_a_single_time_is_the_initial_state_with_its_gradient(gradient: str, method: str) -> None:
    func = TimeMLP()
    y0 = torch.tensor([[0.3, -0.2], [0.1, 0.4]], dtype=DTYPE, requires_grad=True)
    t = torch.tensor([0.5], dtype=DTYPE, requires_grad=True)
    solution = ode_adjoint.solve(func, y0, t, method=method, gradient=gradient)
    assert solution.ys.shape == (1, 2, 2) and torch.equal(solution.ys.detach(), y0.detach()[None])
    assert solution.stats.n_steps == 0
    weights = torch.arange(4, dtype=DTYPE).reshape(1, 2, 2)
    (solution.ys * weights).sum().backward()
    assert torch.equal(y0.grad, weights[0])  # type: ignore[arg-type]
    assert t.grad is not None and float(t.grad) == 0.0
    for parameter in func.parameters():
        assert parameter.grad is None or not parameter.grad.any()


def test_odeint_of_a_single_time_is_y0_stacked() -> None:
    y0 = (torch.ones(3, dtype=DTYPE), torch.zeros(2, dtype=DTYPE))
    ys = ode_adjoint.odeint(lambda t, y: (-y[0], y[1]), y0, torch.tensor([1.0], dtype=DTYPE))
    assert [tuple(y.shape) for y in ys] == [(1, 3), (1, 2)]
    assert torch.equal(ys[0][0], y0[0]) and torch.equal(ys[1][0], y0[1])


def _grid_problem() -> tuple[TimeMLP, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return TimeMLP(), torch.tensor([0.3, -0.2], dtype=DTYPE), torch.tensor([0.0, 0.2, 0.25, 0.6, 1.0], dtype=DTYPE)


@pytest.mark.parametrize("method", ["euler", "rk4", "heun2", "heun3", "trapezoid", "implicit_euler"])
def test_fixed_steps_without_step_size_are_the_grid_of_t(method: str) -> None:
    """The forward solution is ode-core's on NumPy, one step per interval of t."""
    func, y0, t = _grid_problem()
    solution = ode_adjoint.solve(func, y0, t, method=method)
    assert solution.stats.n_accepted == len(t) - 1

    def numpy_func(time: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return func(torch.tensor(time, dtype=DTYPE), torch.from_numpy(y)).numpy()

    reference = ode_core.solve(numpy_func, y0.numpy(), t.numpy(), method=method, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(solution.ys.detach().numpy(), reference.ys, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("method", ["rk4", "trapezoid"])
def test_every_engine_differentiates_the_grid_solve(method: str) -> None:
    """Backprop and the checkpoint differentiate the discrete solve (to round-off); the adjoint
    the continuous one, off by the discretisation error of these few steps."""
    grads = {}
    for gradient in GRADIENTS:
        func, y0, t = _grid_problem()
        y0.requires_grad_(True)
        ys = ode_adjoint.solve(func, y0, t, method=method, gradient=gradient).ys
        ys.square().sum().backward()
        grads[gradient] = torch.cat([y0.grad.reshape(-1), *(p.grad.reshape(-1) for p in func.parameters())])  # type: ignore[union-attr]
    # An implicit step's Newton iteration stops at its tolerance (rtol here), and backprop
    # differentiates those iterations where the checkpoint differentiates the converged step.
    exact = check_method(method).explicit
    torch.testing.assert_close(
        grads["checkpoint"], grads["backprop"], rtol=1e-12 if exact else 1e-5, atol=1e-14 if exact else 1e-9
    )
    # Relative to the gradient's norm; measured 1.5e-4 (rk4, order 4) and 1.1e-2 (trapezoid, order 2).
    bound = {"rk4": 1e-3, "trapezoid": 0.05}[method]
    difference = float(torch.linalg.vector_norm(grads["adjoint"] - grads["backprop"]))
    assert difference < bound * float(torch.linalg.vector_norm(grads["backprop"]))


def test_grid_constructor_gives_the_steps() -> None:
    func, y0, t = _grid_problem()
    fine = torch.linspace(0.0, 1.0, 9, dtype=DTYPE)  # multiples of 1/8, exact in binary
    calls = []

    def grid(f: object, y: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        calls.append((f, y, times))
        return fine

    by_grid = ode_adjoint.solve(func, y0, t, method="euler", options={"grid_constructor": grid})
    assert calls == [(func, y0, t)]
    # The grid's 8 steps, two of them cut by the output times 0.2 and 0.6 (0.25 is on the grid).
    assert by_grid.stats.n_accepted == 10
    by_step_t = ode_adjoint.solve(func, y0, t, method="euler", options={"step_t": fine[1:-1]})
    torch.testing.assert_close(by_grid.ys, by_step_t.ys, rtol=0, atol=0)


def test_grid_constructor_is_ignored_with_a_warning_by_an_adaptive_method() -> None:
    func, y0, t = _grid_problem()
    with pytest.warns(UserWarning, match=r"options\['grid_constructor'\]: method 'dopri5' chooses its own steps"):
        with_grid = ode_adjoint.odeint(func, y0, t, options={"grid_constructor": lambda f, y, s: s})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = ode_adjoint.odeint(func, y0, t)
    torch.testing.assert_close(with_grid, plain, rtol=0, atol=0)


@pytest.mark.parametrize(("alias", "own"), sorted(ode_core.ALIASES.items()))
def test_torchdiffeq_names_are_the_same_methods(alias: str, own: str) -> None:
    func, y0, t = _grid_problem()
    torch.testing.assert_close(
        ode_adjoint.odeint(func, y0, t, method=alias), ode_adjoint.odeint(func, y0, t, method=own), rtol=0, atol=0
    )


# --- torchdiffeq's event_fn and odeint_event -------------------------------------------


class Decay(torch.nn.Module):
    """``y' = -k y``: from y0 it reaches ``level`` at ``t0 + ln(y0 / level) / k``."""

    def __init__(self) -> None:
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(1.3, dtype=DTYPE))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -self.k * y


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_event_fn_gives_the_event_time_and_state_with_their_gradients(gradient: str) -> None:
    func = Decay()
    y0 = torch.tensor([2.0], dtype=DTYPE, requires_grad=True)
    t = torch.tensor([0.25, 1.0], dtype=DTYPE, requires_grad=True)  # only t[0] (and the direction) count
    event_t, ys = ode_adjoint.odeint(
        func, y0, t, event_fn=lambda t, y: y[0] - 0.5, gradient=gradient, rtol=1e-10, atol=1e-12
    )
    k = 1.3
    assert ys.shape == (2, 1) and torch.equal(ys[0].detach(), y0.detach())
    torch.testing.assert_close(ys[1].detach(), torch.tensor([0.5], dtype=DTYPE), rtol=1e-8, atol=0)
    torch.testing.assert_close(event_t.detach(), torch.tensor(0.25 + np.log(4.0) / k, dtype=DTYPE), rtol=1e-9, atol=0)
    event_t.backward()
    # t_e = t0 + ln(y0 / 0.5) / k: dt_e/dt0 = 1, dt_e/dy0 = 1 / (k y0), dt_e/dk = -ln(y0 / 0.5) / k^2.
    torch.testing.assert_close(t.grad, torch.tensor([1.0, 0.0], dtype=DTYPE), rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(y0.grad, torch.tensor([1 / (k * 2.0)], dtype=DTYPE), rtol=1e-7, atol=0)
    torch.testing.assert_close(func.k.grad, torch.tensor(-np.log(4.0) / k**2, dtype=DTYPE), rtol=1e-7, atol=0)


def test_odeint_adjoint_takes_event_fn() -> None:
    event_t, _ = ode_adjoint.odeint_adjoint(
        Decay(), torch.ones(1, dtype=DTYPE), torch.tensor([0.0, 1.0]), event_fn=lambda t, y: y - 0.5
    )
    assert event_t.dtype == torch.float32  # t's dtype, as torchdiffeq returns it
    torch.testing.assert_close(
        event_t.detach(), torch.tensor(np.log(2.0) / 1.3, dtype=torch.float32), rtol=1e-6, atol=0
    )


def test_event_fn_of_several_elements_stops_at_the_first_to_reach_zero() -> None:
    """torchdiffeq's rule: each element, made positive at the start, until the smallest reaches zero."""

    def event_fn(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack((y[0] - 0.25, 0.5 - y[0], t - 10.0))  # starts +, -, -: y reaches 0.5 first

    event_t, ys = ode_adjoint.odeint(
        lambda t, y: -y, torch.ones(1, dtype=DTYPE), torch.tensor([0.0, 1.0]), event_fn=event_fn
    )
    torch.testing.assert_close(event_t, torch.tensor(np.log(2.0), dtype=torch.float32), rtol=1e-6, atol=0)
    torch.testing.assert_close(ys[1], torch.tensor([0.5], dtype=DTYPE), rtol=1e-6, atol=0)


def test_odeint_event_forward_and_reversed_and_on_a_tuple_state() -> None:
    event_t, (position, velocity) = ode_adjoint.odeint_event(
        lambda t, y: (y[1], -y[0]), (torch.ones(1), torch.zeros(1)), torch.tensor(0.0), event_fn=lambda t, y: y[0]
    )
    torch.testing.assert_close(event_t, torch.tensor(np.pi / 2, dtype=torch.float32), rtol=1e-5, atol=0)
    assert position.shape == velocity.shape == (2, 1)
    torch.testing.assert_close(velocity[1], torch.tensor([-1.0]), rtol=1e-5, atol=0)
    # Backwards in time from y(0) = 1/4, y' = -y grows towards 1/2 at t = -ln 2.
    event_t, _ = ode_adjoint.odeint_event(
        lambda t, y: -y,
        torch.tensor([0.25], dtype=DTYPE),
        torch.tensor(0.0, dtype=DTYPE),
        event_fn=lambda t, y: y[0] - 0.5,
        reverse_time=True,
        odeint_interface=ode_adjoint.odeint_adjoint,
        adjoint_params=(),
    )
    torch.testing.assert_close(event_t.detach(), torch.tensor(-np.log(2.0), dtype=DTYPE), rtol=1e-6, atol=0)


def test_event_fn_with_fixed_steps_needs_a_step_size_and_no_event_is_an_error() -> None:
    half = lambda t, y: y - 0.5  # noqa: E731
    event_t, _ = ode_adjoint.odeint(
        lambda t, y: -y,
        torch.ones(1),
        torch.tensor([0.0, 1.0]),
        event_fn=half,
        method="rk4",
        options={"step_size": 0.01},
    )
    torch.testing.assert_close(event_t, torch.tensor(np.log(2.0), dtype=torch.float32), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="without a step size steps on the grid"):
        ode_adjoint.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]), event_fn=half, method="rk4")
    with pytest.raises(ode_adjoint.SolverError, match="max_steps"):
        ode_adjoint.odeint(
            lambda t, y: -y,
            torch.ones(1),
            torch.tensor([0.0, 1.0]),
            event_fn=lambda t, y: y + 1.0,
            options={"max_num_steps": 100},
        )
    with pytest.raises(ValueError, match="event_fn: give torchdiffeq's event_fn or our events"):
        ode_adjoint.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]), event_fn=half, events=half)


# --- torchdiffeq's step callbacks on func ----------------------------------------------


class Watched(torch.nn.Module):
    """TimeMLP with torchdiffeq's callbacks, counting their calls and keeping their arguments."""

    def __init__(self, adaptive: bool) -> None:
        super().__init__()
        self.inner = TimeMLP()
        self.calls: dict[str, list[tuple[torch.Tensor, object, torch.Tensor]]] = {}
        names = ["callback_step", "callback_step_adjoint"]
        if adaptive:
            names += ["callback_accept_step", "callback_reject_step"]
            names += ["callback_accept_step_adjoint", "callback_reject_step_adjoint"]
        for name in names:
            self.calls[name] = []
            setattr(self, name, lambda t, y, dt, name=name: self.calls[name].append((t, y, dt)))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.inner(t, y)


@pytest.mark.parametrize("method", ["rk4", "dopri5"])
def test_callbacks_on_func_are_called_forward_and_in_the_adjoint(method: str) -> None:
    func = Watched(adaptive=method == "dopri5")
    y0 = torch.tensor([0.3, -0.2], dtype=DTYPE)
    options = {"step_size": 0.1} if method == "rk4" else {}
    solution = ode_adjoint.solve(
        func, y0, torch.tensor([0.0, 1.0], dtype=DTYPE), method=method, options=options, gradient="adjoint"
    )
    forward = func.calls["callback_step"]
    assert len(forward) == solution.stats.n_steps
    if method == "rk4":
        assert len(forward) == 10
    else:
        assert len(func.calls["callback_accept_step"]) == solution.stats.n_accepted
        assert len(func.calls["callback_reject_step"]) == solution.stats.n_rejected
    t, y, dt = forward[0]
    assert float(t) == 0.0 and t.dtype == DTYPE and torch.equal(y, y0) and float(dt) > 0
    assert not func.calls["callback_step_adjoint"]
    solution.ys[-1].sum().backward()
    backward = func.calls["callback_step_adjoint"]
    assert solution.backward_stats is not None and len(backward) == solution.backward_stats.n_steps > 0
    t, augmented, dt = backward[0]
    assert float(t) == 1.0 and float(dt) < 0 and augmented.shape == (2 + 2 + sum(p.numel() for p in func.parameters()),)


def test_accept_and_reject_callbacks_of_fixed_steps_warn() -> None:
    func = Watched(adaptive=True)
    with pytest.warns(
        UserWarning,
        match=r"method 'rk4' takes fixed steps.*func.callback_accept_step and func.callback_reject_step will not",
    ):
        ode_adjoint.odeint(
            func,
            torch.ones(2, dtype=DTYPE),
            torch.tensor([0.0, 1.0], dtype=DTYPE),
            method="rk4",
            options={"step_size": 0.5},
        )
    assert len(func.calls["callback_step"]) == 2 and not func.calls["callback_accept_step"]


# --- torchdiffeq's perturb -------------------------------------------------------------


class Recording(torch.nn.Module):
    """TimeMLP that keeps the times it is evaluated at."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = TimeMLP()
        self.times: list[float] = []

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.times.append(float(t))
        return self.inner(t, y)


# float32 too: a float64 neighbour of 1.0 rounds back onto 1.0 in float32.
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", ["rk4", "trapezoid"])
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_perturb_keeps_every_evaluation_off_the_grid_forward_and_backward(
    method: str, gradient: str, dtype: torch.dtype
) -> None:
    func = Recording().to(dtype)
    y0 = torch.tensor([0.3, -0.2], dtype=dtype, requires_grad=True)
    grid = {0.0, 0.5, 1.0}
    ys = ode_adjoint.solve(
        func,
        y0,
        torch.tensor([0.0, 1.0], dtype=dtype),
        method=method,
        gradient=gradient,
        options={"step_size": 0.5, "perturb": True},
    ).ys
    assert not set(func.times) & grid
    func.times.clear()
    ys.square().sum().backward()
    assert not set(func.times) & grid
    assert y0.grad is not None and torch.isfinite(y0.grad).all()


def test_perturb_changes_nothing_for_a_continuous_f_and_the_checkpoint_replays_it() -> None:
    grads = {}
    for gradient in ("backprop", "checkpoint"):
        func = TimeMLP()
        y0 = torch.tensor([0.3, -0.2], dtype=DTYPE, requires_grad=True)
        ys = ode_adjoint.odeint(
            func,
            y0,
            torch.tensor([0.0, 1.0], dtype=DTYPE),
            method="rk4",
            gradient=gradient,
            options={"step_size": 0.25, "perturb": True},
        )
        plain = ode_adjoint.odeint(
            func, y0, torch.tensor([0.0, 1.0], dtype=DTYPE), method="rk4", options={"step_size": 0.25}
        )
        torch.testing.assert_close(ys, plain, rtol=1e-12, atol=1e-14)
        ys.sum().backward()
        grads[gradient] = y0.grad
    torch.testing.assert_close(grads["checkpoint"], grads["backprop"], rtol=1e-13, atol=1e-15)


def test_perturb_with_an_adaptive_method_warns_and_is_ignored() -> None:
    with pytest.warns(UserWarning, match=r"options\['perturb'\]: method 'dopri5' chooses its own steps"):
        ode_adjoint.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]), options={"perturb": True})
