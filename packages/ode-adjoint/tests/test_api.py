"""The torchdiffeq-style API: states, parameters, dtypes, options, input errors and solver failures."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ode_adjoint
import ode_core
import pytest
import torch
from _adjoint_problems import (
    DTYPE,
    GRADIENTS,
    TimeMLP,
    flat_parameter_grads,
    forced_van_der_pol,
    relative_difference,
    van_der_pol_inputs,
)
from ode_core import PIDController, Status

# Settings at which the adjoint agrees with backprop to about 1e-8. The
# method is adaptive but does not reuse its last stage (FSAL), so that these
# tests of the API do not also test that reuse after rejected steps (the
# tests of test_engines.py do, with every method).
TIGHT = {"method": "cash_karp", "rtol": 1e-10, "atol": 1e-10}


def _grad_closeness(gradient: str) -> float:
    """How close an engine's gradient is to backprop's at TIGHT tolerances:
    checkpoint replays backprop's operations, the adjoint solves another ODE."""
    return 1e-9 if gradient == "checkpoint" else 1e-6


def _decay(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -y


# --- results --------------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_solution_has_torchdiffeq_layout(gradient: str) -> None:
    func = TimeMLP()
    y0 = torch.randn(5, 2, dtype=DTYPE, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.0, 0.3, 0.9], dtype=DTYPE)
    solution = ode_adjoint.solve(func, y0, t, gradient=gradient)
    assert solution.success
    assert solution.status is Status.SUCCESS
    assert solution.ys.shape == (3, 5, 2)
    assert solution.ys.dtype == DTYPE
    assert torch.equal(solution.ys[0], y0)
    torch.testing.assert_close(solution.ts, t, rtol=0, atol=0)
    assert solution.t_final == 0.9
    assert torch.equal(ode_adjoint.odeint(func, y0, t, gradient=gradient), solution.ys)


def test_exponential_decay_is_accurate() -> None:
    y0 = torch.tensor([1.0, -2.0], dtype=DTYPE)
    t = torch.linspace(0.0, 2.0, 5, dtype=DTYPE)
    ys = ode_adjoint.odeint(_decay, y0, t, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ys, torch.exp(-t)[:, None] * y0, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_func_gets_t_as_a_0d_tensor_of_the_state_dtype(gradient: str) -> None:
    seen: list[torch.Tensor] = []
    rate = torch.tensor(0.5, requires_grad=True)

    def func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return -rate * y * (1 + t)

    y0 = torch.ones(3, requires_grad=True)  # float32
    ys = ode_adjoint.odeint(func, y0, torch.tensor([0.0, 1.0], dtype=DTYPE), gradient=gradient, adjoint_params=(rate,))
    n_forward = len(seen)
    ys.sum().backward()
    if gradient != "backprop":
        assert len(seen) > n_forward, "the backward pass evaluates func too"
    assert all(isinstance(t, torch.Tensor) and t.shape == () and t.dtype == torch.float32 for t in seen)
    assert all(t.device == y0.device for t in seen)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_decreasing_times(gradient: str) -> None:
    """Backwards in time: each engine's gradients match backprop's."""
    gradients = {}
    for engine in ("backprop", gradient):
        y0, theta = van_der_pol_inputs()
        t = torch.tensor([1.0, 0.6, -0.2], dtype=DTYPE, requires_grad=True)
        ys = ode_adjoint.odeint(forced_van_der_pol(theta), y0, t, gradient=engine, adjoint_params=(theta,), **TIGHT)
        gradients[engine] = torch.autograd.grad(
            (ys * torch.arange(6.0, dtype=DTYPE).reshape(3, 2)).sum(), (y0, theta, t)
        )
    for name, got, expected in zip(("y0", "theta", "t"), gradients[gradient], gradients["backprop"]):
        assert relative_difference(got, expected) < _grad_closeness(gradient), name


# --- gradients with respect to t -----------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_time_gradients_are_the_slopes(gradient: str) -> None:
    """dy(t_i)/dt_i = f(t_i, y_i); dy(t_i)/dt_0 = -dy(t_i)/dy0 f(t_0, y_0);
    y(t_0) = y0 whatever t_0."""
    y0, theta = van_der_pol_inputs()
    field = forced_van_der_pol(theta)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=DTYPE, requires_grad=True)
    ys = ode_adjoint.odeint(field, y0, t, gradient=gradient, adjoint_params=(theta,), **TIGHT)
    cotangent = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, -0.5]], dtype=DTYPE)
    grad_y0, grad_t = torch.autograd.grad((ys * cotangent).sum(), (y0, t))
    with torch.no_grad():
        slope_end = field(t[2], ys[2])
        slope_start = field(t[0], y0)
    torch.testing.assert_close(grad_t[2], (cotangent[2] * slope_end).sum(), rtol=1e-12, atol=1e-14)
    assert grad_t[1] == 0
    torch.testing.assert_close(grad_t[0], -(grad_y0 * slope_start).sum(), rtol=1e-12, atol=1e-14)


# --- states and parameters -------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_tuple_state_matches_the_flat_formulation(gradient: str) -> None:
    """A state (a of shape (2,), b of shape (2, 3)) gives what the same system
    written on one flat tensor gives: values and gradients."""
    rate = torch.tensor(0.3, dtype=DTYPE, requires_grad=True)

    def tuple_field(t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = state
        return -rate * a + 0.1 * b.sum(-1) * torch.cos(t), 0.2 * a[:, None] * b - b

    def flat_field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        da, db = tuple_field(t, (y[:2], y[2:].reshape(2, 3)))
        return torch.cat((da, db.reshape(-1)))

    a0 = torch.tensor([1.0, 2.0], dtype=DTYPE)
    b0 = torch.linspace(-1.0, 1.0, 6, dtype=DTYPE).reshape(2, 3)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE)
    weights = torch.linspace(0.5, 1.5, 8, dtype=DTYPE)

    state = (a0.clone().requires_grad_(), b0.clone().requires_grad_())
    ys = ode_adjoint.odeint(tuple_field, state, t, gradient=gradient, adjoint_params=(rate,), **TIGHT)
    assert isinstance(ys, tuple)
    assert [part.shape for part in ys] == [(3, 2), (3, 2, 3)]
    flat_ys = torch.cat((ys[0], ys[1].reshape(3, 6)), dim=1)
    grads = torch.autograd.grad((flat_ys * weights).sum(), (*state, rate))

    # A tuple state's default error norm is torchdiffeq's: the larger of each tensor's RMS.
    y0 = torch.cat((a0, b0.reshape(-1))).requires_grad_()
    mixed = {"norm": ode_core.MixedNorm([2, 6])}
    expected_ys = ode_adjoint.odeint(
        flat_field, y0, t, gradient=gradient, adjoint_params=(rate,), options=mixed, **TIGHT
    )
    expected_y0_grad, expected_rate_grad = torch.autograd.grad((expected_ys * weights).sum(), (y0, rate))

    torch.testing.assert_close(flat_ys, expected_ys, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(torch.cat((grads[0], grads[1].reshape(-1))), expected_y0_grad, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads[2], expected_rate_grad, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_module_parameters_are_the_default_adjoint_params(gradient: str) -> None:
    func = TimeMLP()
    y0 = torch.tensor([[0.6, -0.4], [0.1, 0.9]], dtype=DTYPE)
    t = torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE)
    ode_adjoint.odeint(func, y0, t, **TIGHT).square().sum().backward()
    expected = flat_parameter_grads(func)
    func.zero_grad(set_to_none=True)
    ode_adjoint.odeint(func, y0, t, gradient=gradient, **TIGHT).square().sum().backward()
    assert all(p.grad is not None for p in func.parameters())
    assert relative_difference(flat_parameter_grads(func), expected) < _grad_closeness(gradient)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_unused_parameters(gradient: str) -> None:
    """A listed parameter func never uses: the adjoint and checkpoint engines
    return a zero gradient for it (they own the backward pass); backprop leaves
    it to autograd, which never reaches it (grad stays None)."""
    rate = torch.tensor(0.7, dtype=DTYPE, requires_grad=True)
    unused = torch.ones(3, dtype=DTYPE, requires_grad=True)
    ys = ode_adjoint.odeint(
        lambda t, y: -rate * y, torch.ones(2, dtype=DTYPE), [0.0, 1.0], gradient=gradient, adjoint_params=(rate, unused)
    )
    ys.sum().backward()
    assert rate.grad is not None
    torch.testing.assert_close(rate.grad, -2.0 * torch.exp(torch.tensor(-0.7, dtype=DTYPE)), rtol=1e-6, atol=0)
    if gradient == "backprop":
        assert unused.grad is None
    else:
        assert unused.grad is not None
        assert torch.equal(unused.grad, torch.zeros(3, dtype=DTYPE))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["euler", "midpoint", "heun3", "rk4", "rk38", "dopri5", "dopri8"])
def test_func_sees_each_stage_at_its_node_as_a_0d_tensor_of_the_states_dtype(method: str, dtype: torch.dtype) -> None:
    """Fixed steps of h: f(t0), then per step the stages' times t_n + c_i h
    (stage 0's slope is the step's first), and for a method without FSAL the
    step's end (the next step's first slope) but after the last."""
    seen: list[torch.Tensor] = []

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append(t)
        return -y

    h, steps = 0.25, 4
    nodes = [float(c) for c in ode_core.TABLEAUX[method].c]
    fsal = ode_core.TABLEAUX[method].fsal
    expected = [0.0]
    for n in range(steps):
        expected += [n * h + c * h for c in nodes[1:]]
        if not fsal and n < steps - 1:
            expected.append((n + 1) * h)
    with torch.no_grad():
        ode_adjoint.odeint(
            field, torch.ones(3, dtype=dtype), torch.tensor([0.0, 1.0]), method=method, options={"step_size": h}
        )
    assert all(isinstance(t, torch.Tensor) and t.shape == () and t.dtype == dtype for t in seen)
    tolerance = 1e-6 if dtype == torch.float32 else 1e-14
    assert [float(t) for t in seen] == pytest.approx(expected, abs=tolerance)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_float32_state_with_float64_times(gradient: str) -> None:
    seen_dtypes: set[torch.dtype] = set()
    results = {}
    for dtype in (torch.float32, torch.float64):
        theta = torch.tensor([1.0, 0.8, 0.5], dtype=dtype, requires_grad=True)
        field = forced_van_der_pol(theta)

        def func(
            t: torch.Tensor,
            y: torch.Tensor,
            dtype: torch.dtype = dtype,
            field: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = field,
        ) -> torch.Tensor:
            if dtype == torch.float32:
                seen_dtypes.add(t.dtype)
            return field(t, y)

        y0 = torch.tensor([0.6, -0.4], dtype=dtype, requires_grad=True)
        t = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64, requires_grad=True)
        ys = ode_adjoint.odeint(
            func, y0, t, gradient=gradient, adjoint_params=(theta,), method="cash_karp", rtol=1e-6, atol=1e-7
        )
        grads = torch.autograd.grad(ys.sum(), (y0, theta, t))
        results[dtype] = (ys, *grads)
    ys32, y0_grad32, theta_grad32, t_grad32 = results[torch.float32]
    assert seen_dtypes == {torch.float32}
    assert ys32.dtype == y0_grad32.dtype == theta_grad32.dtype == torch.float32
    assert t_grad32.dtype == torch.float64
    for got, expected in zip(results[torch.float32], results[torch.float64]):
        torch.testing.assert_close(got.double(), expected.detach(), rtol=1e-4, atol=1e-5)


# --- options ------------------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_callable_norm_option(gradient: str) -> None:
    """options["norm"] (torchdiffeq's: a callable on the state's structure)
    controls the forward solve of every engine; the adjoint's backward solve
    works on another state, so it must not break it."""
    received: list[Any] = []

    def max_norm(scaled: torch.Tensor) -> torch.Tensor:
        received.append(scaled)
        return scaled.abs().max()

    gradients = {}
    for engine in ("backprop", gradient):
        y0, theta = van_der_pol_inputs()
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            [0.0, 0.5, 1.0],
            gradient=engine,
            adjoint_params=(theta,),
            options={"norm": max_norm},
            **TIGHT,
        )
        gradients[engine] = torch.autograd.grad(ys.square().sum(), (y0, theta))
    assert received
    assert all(isinstance(value, torch.Tensor) and value.shape[-1:] == (2,) for value in received)
    for got, expected in zip(gradients[gradient], gradients["backprop"]):
        assert relative_difference(got, expected) < _grad_closeness(gradient)


def test_callable_norm_receives_the_tuple_structure() -> None:
    received: list[Any] = []

    def norm(scaled: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        received.append(scaled)
        return torch.stack([part.abs().max() for part in scaled]).max()

    state = (torch.ones(2, dtype=DTYPE), torch.ones(3, 4, dtype=DTYPE))
    ode_adjoint.odeint(lambda t, y: (-y[0], -2 * y[1]), state, [0.0, 1.0], options={"norm": norm})
    assert received
    assert all(isinstance(value, tuple) and [p.shape for p in value] == [(2,), (3, 4)] for value in received)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_step_t_makes_the_solver_step_onto_given_times(gradient: str) -> None:
    """step_t: a kink at t = 0.55 is stepped onto, not across; every engine's
    gradient matches backprop's there too."""
    evaluated: set[float] = set()
    gradients = {}
    for engine in ("backprop", gradient):
        rate = torch.tensor(0.8, dtype=DTYPE, requires_grad=True)

        def kinked(t: torch.Tensor, y: torch.Tensor, rate: torch.Tensor = rate) -> torch.Tensor:
            evaluated.add(float(t))
            return -rate * y * torch.where(t < 0.55, 1.0, 3.0)

        y0 = torch.tensor([1.0, 0.5], dtype=DTYPE, requires_grad=True)
        ys = ode_adjoint.odeint(
            kinked, y0, [0.0, 1.0], gradient=engine, adjoint_params=(rate,), options={"step_t": [0.55]}, **TIGHT
        )
        gradients[engine] = torch.autograd.grad(ys[-1].sum(), (y0, rate))
    assert 0.55 in evaluated
    for got, expected in zip(gradients[gradient], gradients["backprop"]):
        assert relative_difference(got, expected) < _grad_closeness(gradient)


def test_max_step_and_first_step() -> None:
    y0 = torch.ones(2, dtype=DTYPE)
    free = ode_adjoint.solve(_decay, y0, [0.0, 2.0], rtol=1e-4, atol=1e-6)
    capped = ode_adjoint.solve(_decay, y0, [0.0, 2.0], rtol=1e-4, atol=1e-6, options={"max_step": 0.1})
    assert free.stats.n_accepted < 20
    assert capped.stats.n_accepted >= 20
    recorded: list[float] = []

    def decay(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        recorded.append(float(t))
        return -y

    ode_adjoint.solve(decay, y0, [0.0, 2.0], options={"first_step": 1e-3})
    # dopri5's second stage sits at c2 h = h / 5 into the first step.
    assert recorded[1] == pytest.approx(1e-3 / 5, rel=1e-12)


def test_controller_options() -> None:
    y0 = torch.ones(2, dtype=DTYPE)
    default = ode_adjoint.solve(_decay, y0, [0.0, 5.0], rtol=1e-8)
    timid = ode_adjoint.solve(_decay, y0, [0.0, 5.0], rtol=1e-8, options={"safety": 0.5, "ifactor": 1.5})
    assert timid.stats.n_steps > default.stats.n_steps
    with_controller = ode_adjoint.solve(
        _decay, y0, [0.0, 5.0], rtol=1e-8, options={"controller": PIDController(safety=0.5, max_factor=1.5)}
    )
    assert with_controller.stats.n_steps == timid.stats.n_steps


# --- bad input ------------------------------------------------------------------------


def _wrong_shape(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return y[:1]


def _wrong_dtype(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return y.float()


BAD_INPUTS = [
    pytest.param({"func": _wrong_shape}, ValueError, r"func: func\(t, y\) has shape \(1,\)", id="func-shape"),
    pytest.param({"func": _wrong_dtype}, TypeError, r"func: func\(t, y\) has dtype torch.float32", id="func-dtype"),
    pytest.param(
        {"func": lambda t, y: -y[0], "y0": (torch.ones(2, dtype=DTYPE), torch.ones(3, dtype=DTYPE))},
        TypeError,
        r"func: expected a tuple of 2 tensors",
        id="func-not-tuple",
    ),
    pytest.param({"func": "decay"}, TypeError, r"func: expected a callable", id="func-not-callable"),
    pytest.param({"y0": torch.tensor([1, 2])}, TypeError, r"y0: expected a floating point tensor", id="y0-int"),
    pytest.param({"y0": [1.0, 2.0]}, TypeError, r"y0: expected a torch.Tensor", id="y0-list"),
    pytest.param({"y0": ()}, ValueError, r"y0: expected a tensor or a non-empty tuple", id="y0-empty-tuple"),
    pytest.param(
        {"y0": (torch.ones(2, dtype=DTYPE), torch.ones(3, dtype=torch.float32))},
        TypeError,
        r"y0\[1\]: dtype torch.float32 differs from y0\[0\]'s torch.float64",
        id="y0-tuple-dtypes",
    ),
    pytest.param({"gradient": "reverse"}, ValueError, r"gradient: expected one of .*'reverse'", id="gradient"),
    pytest.param({"method": "rk45"}, ValueError, r"method: unknown method 'rk45'; valid names are", id="method"),
    pytest.param(
        {"adjoint_method": "rk45", "gradient": "adjoint", "adjoint_params": ()},
        ValueError,
        r"adjoint_method: unknown method 'rk45'",
        id="adjoint-method",
    ),
    pytest.param({"options": {"stepsize": 0.1}}, ValueError, r"options: unknown keys \['stepsize'\]", id="options-key"),
    pytest.param(
        {"adjoint_options": {"stepsize": 0.1}, "gradient": "adjoint", "adjoint_params": ()},
        ValueError,
        r"adjoint_options: unknown keys \['stepsize'\]",
        id="adjoint-options-key",
    ),
    pytest.param(
        {"options": {"norm": "seminorm"}}, ValueError, r"options\['norm'\]: 'seminorm' is not a norm", id="seminorm"
    ),
    pytest.param({"options": {"max_num_steps": 0}}, ValueError, r"options\['max_num_steps'\]", id="max-steps"),
    pytest.param({"options": {"checkpoints": 0}}, ValueError, r"options\['checkpoints'\]", id="checkpoints"),
    pytest.param({"options": {"step_size": -0.1}}, ValueError, r"options\['step_size'\]", id="step-size"),
    pytest.param(
        {"options": {"controller": PIDController(), "safety": 0.8}},
        ValueError,
        r"options: give either controller or safety",
        id="controller-and-safety",
    ),
    pytest.param(
        {"method": "rk4", "options": {"step_size": 0.1, "grid_constructor": lambda f, y0, t: t}},
        ValueError,
        r"options: step_size and grid_constructor are mutually exclusive",
        id="grid-and-step",
    ),
    pytest.param(
        {"method": "rk4", "options": {"grid_constructor": lambda f, y0, t: torch.tensor([0.0, 0.5])}},
        ValueError,
        r"options\['grid_constructor'\]: expected a grid from t\[0\]=0.0 to t\[-1\]=1.0, got one from 0.0 to 0.5",
        id="grid-span",
    ),
    pytest.param(
        {"method": "rk4", "options": {"grid_constructor": lambda f, y0, t: torch.tensor([0.0, 0.7, 0.5, 1.0])}},
        ValueError,
        r"options\['grid_constructor'\] \(its grid\): expected strictly increasing",
        id="grid-order",
    ),
    pytest.param({"method": "implicit_eulr"}, ValueError, r"the aliases heun2 \(heun\)", id="alias-listed"),
    pytest.param({"rtol": -1e-6}, ValueError, r"rtol: expected a finite number > 0", id="rtol"),
    pytest.param({"atol": "tight"}, TypeError, r"atol: expected a number", id="atol"),
    pytest.param({"gradient": "adjoint"}, ValueError, r"adjoint_params: func is a function", id="adjoint-no-params"),
    pytest.param(
        {"gradient": "adjoint", "adjoint_params": [0.5]},
        TypeError,
        r"adjoint_params\[0\]: expected a tensor",
        id="param",
    ),
    pytest.param(
        {"t": [0.0, 1.0, 0.5]}, ValueError, r"t: expected strictly increasing or strictly decreasing", id="t-order"
    ),
    pytest.param({"t": [0.0, 1.0, 1.0]}, ValueError, r"t: expected strictly increasing", id="t-repeated"),
    pytest.param({"t": []}, ValueError, r"t: expected at least one output time", id="t-empty"),
    pytest.param({"t": torch.zeros(2, 2)}, ValueError, r"t: expected a 1-D sequence of times", id="t-2d"),
    pytest.param({"t": [0.0, float("nan")]}, ValueError, r"t: contains inf or nan", id="t-nan"),
    pytest.param({"on_failure": "ignore"}, ValueError, r"on_failure: expected 'raise' or 'return'", id="on-failure"),
]


@pytest.mark.parametrize(("overrides", "error", "message"), BAD_INPUTS)
def test_bad_input_raises_naming_the_argument(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {
        "func": _decay,
        "y0": torch.ones(2, dtype=DTYPE),
        "t": torch.tensor([0.0, 0.5, 1.0], dtype=DTYPE),
        **overrides,
    }
    func, y0, t = arguments.pop("func"), arguments.pop("y0"), arguments.pop("t")
    with pytest.raises(error, match=message):
        ode_adjoint.odeint(func, y0, t, **arguments)


def test_odeint_adjoint_refuses_another_engine() -> None:
    with pytest.raises(ValueError, match=r"gradient: odeint_adjoint uses the adjoint engine, got 'backprop'"):
        ode_adjoint.odeint_adjoint(_decay, torch.ones(2), [0.0, 1.0], gradient="backprop", adjoint_params=())


# --- solver failures ---------------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_max_num_steps_raises_solver_error(gradient: str) -> None:
    with pytest.raises(ode_adjoint.SolverError, match=r"max_steps_reached: max_steps=3") as caught:
        ode_adjoint.odeint(
            _decay,
            torch.ones(2, dtype=DTYPE),
            [0.0, 10.0],
            gradient=gradient,
            adjoint_params=(),
            options={"max_num_steps": 3},
        )
    assert caught.value.status is Status.MAX_STEPS_REACHED
    assert isinstance(caught.value, RuntimeError)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_on_failure_return_gives_the_partial_solution(gradient: str) -> None:
    """rk4 with h = 0.1 and seven steps allowed reaches t = 0.7: the outputs
    at 0, 0.25 and 0.5 come back, equal to those of the full solve, and
    differentiate like backprop's partial solution."""
    t = torch.tensor([0.0, 0.25, 0.5, 1.0, 2.0], dtype=DTYPE)
    options = {"step_size": 0.1}
    y0, theta = van_der_pol_inputs()
    full = ode_adjoint.odeint(forced_van_der_pol(theta), y0, t, method="rk4", options=options)
    gradients = {}
    for engine in ("backprop", gradient):
        y0, theta = van_der_pol_inputs()
        partial = ode_adjoint.solve(
            forced_van_der_pol(theta),
            y0,
            t,
            method="rk4",
            options={**options, "max_num_steps": 7},
            gradient=engine,
            adjoint_params=(theta,),
            on_failure="return",
        )
        assert partial.status is Status.MAX_STEPS_REACHED
        assert not partial.success
        assert "max_steps=7" in partial.message
        assert partial.t_final == pytest.approx(0.7)
        torch.testing.assert_close(partial.ts, t[:3], rtol=0, atol=0)
        assert partial.ys.shape == (3, 2)
        torch.testing.assert_close(partial.ys, full[:3], rtol=1e-14, atol=1e-15)
        gradients[engine] = torch.autograd.grad(partial.ys.square().sum(), (y0, theta))
    for got, expected in zip(gradients[gradient], gradients["backprop"]):
        assert relative_difference(got, expected) < (1e-9 if gradient != "adjoint" else 1e-3)


def test_non_finite_fixed_step_solution_raises() -> None:
    # y' = y^2 from y(0) = 1 blows up at t = 1.
    with pytest.raises(ode_adjoint.SolverError) as caught:
        ode_adjoint.odeint(
            lambda t, y: y**2, torch.ones(1, dtype=DTYPE), [0.0, 2.0], method="rk4", options={"step_size": 0.1}
        )
    assert caught.value.status is Status.NON_FINITE


def test_step_size_underflow_raises() -> None:
    with pytest.raises(ode_adjoint.SolverError) as caught:
        ode_adjoint.odeint(lambda t, y: y**2, torch.ones(1, dtype=DTYPE), [0.0, 2.0])
    assert caught.value.status is Status.STEP_SIZE_UNDERFLOW


def test_failed_adjoint_backward_solve_raises() -> None:
    y0, theta = van_der_pol_inputs()
    ys = ode_adjoint.odeint(
        forced_van_der_pol(theta),
        y0,
        [0.0, 2.0],
        gradient="adjoint",
        adjoint_params=(theta,),
        adjoint_options={"max_num_steps": 2},
    )
    with pytest.raises(RuntimeError, match=r"adjoint backward solve failed: max_steps_reached"):
        ys.sum().backward()


@pytest.mark.parametrize("gradient", ["backprop", "adjoint", "checkpoint"])
def test_jump_t_steps_onto_a_discontinuity_of_f(gradient: str) -> None:
    """f jumps from +w to -w at t = 1: with jump_t the solve lands on the
    jump, sees f's one-sided limits and is exact; the engines agree."""
    weight = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    evaluated_at: list[float] = []

    def ramp(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        evaluated_at.append(float(t))
        return (weight if float(t) < 1.0 else -weight) * torch.ones_like(y)

    y0 = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0.0, 1.5, 2.0], dtype=torch.float64)
    solution = ode_adjoint.solve(
        ramp, y0, t, gradient=gradient, adjoint_params=(weight,), options={"jump_t": [1.0]}, rtol=1e-8, atol=1e-10
    )
    expected = torch.tensor([[0.0, 0.0], [0.35, 0.35], [0.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(solution.ys.detach(), expected, rtol=0.0, atol=1e-12)
    assert math.nextafter(1.0, math.inf) in evaluated_at
    assert math.nextafter(1.0, -math.inf) in evaluated_at
    (grad_weight,) = torch.autograd.grad(solution.ys[1].sum(), (weight,))
    # y(1.5) = w * 1 - w * 0.5 per component.
    torch.testing.assert_close(grad_weight, torch.tensor(1.0, dtype=torch.float64), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("method", ["dopri5", "dopri8"])
def test_callable_norm_equal_to_rms_takes_the_default_steps(method: str) -> None:
    """A callable norm sees the error scaled exactly as the default RMS norm
    does (dopri8 also combines two estimates): the same steps, to the bit."""

    def rms(scaled: torch.Tensor) -> torch.Tensor:
        return scaled.pow(2).mean().sqrt()

    y0, theta = van_der_pol_inputs()
    with torch.no_grad():
        default = ode_adjoint.solve(forced_van_der_pol(theta), y0, [0.0, 2.0], method=method, rtol=1e-6, atol=1e-8)
        custom = ode_adjoint.solve(
            forced_van_der_pol(theta), y0, [0.0, 2.0], method=method, rtol=1e-6, atol=1e-8, options={"norm": rms}
        )
    assert (custom.stats.n_accepted, custom.stats.n_rejected) == (default.stats.n_accepted, default.stats.n_rejected)
    torch.testing.assert_close(custom.ys, default.ys, rtol=1e-12, atol=1e-12)


def test_a_solve_nested_in_func_of_the_same_shape_gets_its_own_buffers() -> None:
    """The forward loop pools its stage buffers across solves; a solve
    started inside ``func`` of another, with the same shape, must not share
    the outer one's."""
    decay = torch.tensor([[1.0, 2.0]], dtype=DTYPE)

    def inner_flow(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -decay * y

    def outer(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # d/dt y = -y pushed through a short inner solve of the same shape (identity in the limit).
        pushed = ode_adjoint.odeint(inner_flow, y, torch.tensor([0.0, 1e-9], dtype=DTYPE), rtol=1e-10, atol=1e-12)[-1]
        return -pushed

    y0 = torch.ones(3, 2, dtype=DTYPE)
    with torch.no_grad():
        nested = ode_adjoint.odeint(outer, y0, torch.tensor([0.0, 1.0], dtype=DTYPE), rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(nested[-1], torch.full((3, 2), math.exp(-1.0), dtype=DTYPE), rtol=1e-7, atol=1e-9)


def test_a_tuple_states_default_norm_weighs_each_tensor_on_its_own() -> None:
    """torchdiffeq's default for tuple states: a one-element tensor is not
    drowned in a thousand-element one's mean, so its error sets the steps."""
    state = (torch.ones(1, dtype=DTYPE), torch.ones(1000, dtype=DTYPE))

    def field(t: torch.Tensor, y: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return -5.0 * y[0], -0.1 * y[1]

    t = torch.tensor([0.0, 1.0], dtype=DTYPE)
    default = ode_adjoint.solve(field, state, t).stats.n_steps
    mixed = ode_adjoint.solve(
        field, state, t, options={"norm": lambda y: max(float(part.pow(2).mean().sqrt()) for part in y)}
    ).stats.n_steps
    flat_rms = ode_adjoint.solve(
        field, state, t, options={"norm": lambda y: float(torch.cat(y).pow(2).mean().sqrt())}
    ).stats.n_steps
    assert default == mixed > flat_rms


def test_a_callable_adjoint_norm_gets_torchdiffeqs_tuple() -> None:
    """adjoint_options={"norm": f}: f gets (t, *y, *a_y, *a_theta) in the
    shapes of the state's tensors and the parameters, as torchdiffeq gives it,
    and its value controls the backward solve's steps."""
    weight = torch.tensor([[0.3, -0.2], [0.1, 0.4]], dtype=DTYPE, requires_grad=True)
    bias = torch.tensor(0.05, dtype=DTYPE, requires_grad=True)
    state = (torch.tensor(1.0, dtype=DTYPE), torch.tensor([[0.5, 0.5], [0.1, 0.1]], dtype=DTYPE))
    shapes: list[list[tuple[int, ...]]] = []

    def field(t: torch.Tensor, y: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        return -y[0] + bias, y[1] @ weight

    def norm(parts: tuple[torch.Tensor, ...], scale: float = 1.0) -> torch.Tensor:
        shapes.append([tuple(part.shape) for part in parts])
        return scale * torch.stack([part.abs().max() for part in parts]).max()

    t = torch.tensor([0.0, 1.0], dtype=DTYPE)
    steps = []
    for scale in (1.0, 100.0):
        solution = ode_adjoint.solve(
            field,
            state,
            t,
            gradient="adjoint",
            adjoint_params=(weight, bias),
            adjoint_options={"norm": lambda parts, scale=scale: norm(parts, scale)},
        )
        solution.ys[1][-1].sum().backward()
        steps.append(solution.backward_stats.n_steps)
    assert shapes[0] == [(), (), (2, 2), (), (2, 2), (2, 2), ()]
    assert steps[1] > steps[0]


def test_a_solve_with_nothing_to_differentiate_records_no_graph() -> None:
    """Outside no_grad, a solve whose state and f need no grad takes the same
    buffered steps as under no_grad (the same values, bit for bit); with a
    parameter that needs grad it records the steps."""
    t = torch.linspace(0.0, 2.0, 5, dtype=DTYPE)
    y0 = torch.tensor([1.0, -0.5], dtype=DTYPE)
    rate = torch.tensor(0.7, dtype=DTYPE)
    plain = ode_adjoint.odeint(lambda t, y: -rate * y + torch.sin(t), y0, t, method="dopri8")
    with torch.no_grad():
        reference = ode_adjoint.odeint(lambda t, y: -rate * y + torch.sin(t), y0, t, method="dopri8")
    assert not plain.requires_grad
    torch.testing.assert_close(plain, reference, rtol=0.0, atol=0.0)
    rate.requires_grad_(True)
    recorded = ode_adjoint.odeint(lambda t, y: -rate * y + torch.sin(t), y0, t, method="dopri8")
    assert recorded.requires_grad
    torch.testing.assert_close(recorded.detach(), reference, rtol=1e-12, atol=1e-14)
