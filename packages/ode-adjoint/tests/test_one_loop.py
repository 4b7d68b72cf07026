"""ode-adjoint through ode-core's one loop: what it gains, and the bugs of its own loop that it lost.

Each test under "regressions" reproduces a failure of the torch loop that
ode-adjoint had before it ran on ode-core's loop (issue 13's list).
"""

from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any

import ode_adjoint
import pytest
import torch
from _adjoint_problems import DTYPE, GRADIENTS, forced_van_der_pol, relative_difference, van_der_pol_inputs
from ode_core import Status

# check_state's message, scipy's words included.
NON_FINITE_Y0 = r"^y0: contains inf or nan; All components of the initial state `y0` must be finite\.$"

ENGINES = {
    "backprop": ode_adjoint.Backprop(),
    "adjoint": ode_adjoint.Adjoint(),
    "checkpoint": ode_adjoint.Checkpoint(),
}


def _decay(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -y


# --- regressions ---------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_non_finite_y0_raises_at_once(bad: float, gradient: str) -> None:
    """It used to spend 17 s on 100,000 rejected steps and report max_steps_reached."""
    y0 = torch.tensor([1.0, bad], dtype=DTYPE)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=NON_FINITE_Y0):
        ode_adjoint.odeint(_decay, y0, [0.0, 1.0], gradient=gradient, adjoint_params=())
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_non_finite_tuple_part_is_caught(gradient: str) -> None:
    y0 = (torch.ones(2, dtype=DTYPE), torch.tensor([math.nan], dtype=DTYPE))
    with pytest.raises(ValueError, match=r"y0: contains inf or nan"):
        ode_adjoint.odeint(lambda t, y: (-y[0], -y[1]), y0, [0.0, 1.0], gradient=gradient, adjoint_params=())


def _nan_after_half(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -y if float(t) <= 0.5 else y * math.nan


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_f_turning_nan_mid_solve_is_non_finite(gradient: str) -> None:
    """It used to say step_size_underflow. ``step_t`` makes the solve land on
    0.5 exactly, so the message is the same whatever the engine."""
    solution = ode_adjoint.solve(
        _nan_after_half,
        torch.ones(2, dtype=DTYPE),
        [0.0, 1.0],
        gradient=gradient,
        adjoint_params=(),
        options={"step_t": [0.5]},
        on_failure="return",
    )
    assert solution.status is Status.NON_FINITE
    assert solution.message.startswith("f or the state became inf or nan near t=0.5,")
    assert solution.t_final == 0.5


def test_adjoint_backward_turning_nan_is_non_finite() -> None:
    """The backward solve of the adjoint fails with ode-core's status too."""
    rate = torch.tensor(1.0, dtype=DTYPE, requires_grad=True)

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # Fine forward (no graph); the backward solve's vector-Jacobian product is nan.
        return -rate * y if not torch.is_grad_enabled() else -rate * y * (y - y).div(0.0).add(1.0)

    ys = ode_adjoint.odeint(field, torch.ones(2, dtype=DTYPE), [0.0, 1.0], gradient="adjoint", adjoint_params=(rate,))
    with pytest.raises(RuntimeError, match=r"adjoint backward solve failed: non_finite"):
        ys.sum().backward()


BAD_INPUTS = [
    pytest.param({"y0": torch.ones(0, dtype=DTYPE)}, ValueError, r"^y0: expected at least one element", id="empty"),
    pytest.param(
        {"options": [("step_size", 0.1)]}, TypeError, r"^options: expected a dict of options, got list", id="list"
    ),
    pytest.param(
        {"options": {"safety": "x"}}, TypeError, r"^options\['safety'\]: expected a number, got str", id="safety"
    ),
    pytest.param(
        {"options": {"ifactor": 0.5}}, ValueError, r"^options\['ifactor'\]: expected max_factor >= 1", id="ifactor"
    ),
    pytest.param(
        {"options": {"step_t": [math.nan]}}, ValueError, r"^options\['step_t'\]: contains inf or nan", id="step-t"
    ),
    pytest.param(
        {"options": {"jump_t": "0.5"}}, TypeError, r"^options\['jump_t'\]: expected a 1-D sequence", id="jump-t"
    ),
    pytest.param(
        {"options": {"min_step": -1.0}}, ValueError, r"^options\['min_step'\]: expected a finite", id="min-step"
    ),
    pytest.param(
        {"options": {"min_step": 2.0, "max_step": 1.0}},
        ValueError,
        r"^options\['min_step'\]: 2.0 exceeds",
        id="min>max",
    ),
    pytest.param({"y0": torch.ones(2, dtype=torch.int64)}, TypeError, r"^y0: expected a floating point", id="int"),
    pytest.param({"events": 3}, TypeError, r"^events: expected a callable or a sequence", id="events"),
    pytest.param({"dense_output": "yes"}, TypeError, r"^dense_output: expected True or False", id="dense"),
    pytest.param(
        {"gradient": ode_adjoint.Adjoint(rtol=1e-3), "adjoint_rtol": 1e-4},
        ValueError,
        r"^adjoint_rtol: the engine object carries its own settings",
        id="engine-and-keyword",
    ),
    pytest.param(
        {"gradient": "backprop", "adjoint_method": "rk4"}, ValueError, r"^adjoint_method: only the adjoint", id="adj-kw"
    ),
]


@pytest.mark.parametrize(("overrides", "error", "message"), BAD_INPUTS)
def test_bad_input_gives_a_clear_error_at_once(overrides: dict[str, Any], error: type[Exception], message: str) -> None:
    arguments: dict[str, Any] = {"y0": torch.ones(2, dtype=DTYPE), "adjoint_params": (), **overrides}
    y0 = arguments.pop("y0")
    start = time.perf_counter()
    with pytest.raises(error, match=message):
        ode_adjoint.solve(_decay, y0, [0.0, 1.0], **arguments)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_half_precision_states_are_right_or_warned(dtype: torch.dtype, gradient: str) -> None:
    """bfloat16 used to return success with y(1) = 1.0 for dy/dt = y (exact
    e), and float16 100,000 rejected steps: the state's increments vanished
    in its own resolution. The solver now computes in float32, f in the
    state's dtype, and warns when rtol asks for more than the dtype holds."""
    rate = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    y0 = torch.ones(3, dtype=dtype, requires_grad=True)
    with pytest.warns(UserWarning, match=rf"rtol=1e-07 is below what {dtype} resolves"):
        solution = ode_adjoint.solve(lambda t, y: rate * y, y0, [0.0, 1.0], gradient=gradient, adjoint_params=(rate,))
    assert solution.ys.dtype == dtype
    eps = torch.finfo(dtype).eps
    torch.testing.assert_close(solution.ys[-1].float(), torch.full((3,), math.e), rtol=2 * eps, atol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an rtol the dtype resolves: no warning
        solution = ode_adjoint.solve(
            lambda t, y: rate * y, y0, [0.0, 1.0], rtol=2 * eps, atol=1e-3, gradient=gradient, adjoint_params=(rate,)
        )
    torch.testing.assert_close(solution.ys[-1].float(), torch.full((3,), math.e), rtol=0.02, atol=0)
    solution.ys[-1].sum().backward()
    # d/drate of 3 e^rate at rate = 1; d/dy0 = e each.
    assert rate.grad is not None and y0.grad is not None
    assert rate.grad.dtype == dtype and y0.grad.dtype == dtype
    assert abs(float(rate.grad) - 3 * math.e) < 0.05 * 3 * math.e
    torch.testing.assert_close(y0.grad.float(), torch.full((3,), math.e), rtol=0.05, atol=0)


def test_half_precision_refuses_implicit_methods() -> None:
    with pytest.raises(TypeError, match=r"method: 'radau5' is implicit.*bfloat16"):
        ode_adjoint.odeint(_decay, torch.ones(2, dtype=torch.bfloat16), [0.0, 1.0], method="radau5", rtol=1e-2)


def test_min_step_is_torchdiffeqs_a_floor_where_steps_are_accepted() -> None:
    """options['min_step']: steps never shrink below it and are accepted there
    whatever their error (torchdiffeq's rule), each counted in stats.n_forced."""
    decay = lambda t, y: -3.0 * y + torch.sin(5 * t)  # noqa: E731
    y0, t = torch.ones(2, dtype=DTYPE), torch.linspace(0.0, 8.0, 5, dtype=DTYPE)
    free = ode_adjoint.solve(decay, y0, t, rtol=1e-9, atol=1e-12)
    floored = ode_adjoint.solve(decay, y0, t, rtol=1e-9, atol=1e-12, options={"min_step": 0.5})
    assert floored.status is Status.SUCCESS
    assert floored.stats.n_forced > 0 and free.stats.n_forced == 0
    assert floored.stats.nfev < free.stats.nfev / 4
    # Stable steps of 0.5 keep the solution near the true one, not within rtol.
    torch.testing.assert_close(floored.ys, free.ys, rtol=0.0, atol=0.05)


def test_steps_forced_at_min_step_that_blow_up_end_the_solve() -> None:
    """A floor an explicit method is unstable at: the state goes non-finite and
    the solve says so rather than accepting it."""
    stiff = lambda t, y: -1000.0 * (y - torch.cos(t))  # noqa: E731
    solution = ode_adjoint.solve(
        stiff, torch.zeros(1, dtype=DTYPE), [0.0, 1.0], options={"min_step": 0.01}, on_failure="return"
    )
    assert solution.status is Status.NON_FINITE
    assert solution.stats.n_forced > 0


def test_implicit_statistics_keep_njev_and_nlu(van_der_pol: tuple[torch.Tensor, torch.Tensor]) -> None:
    y0, theta = van_der_pol
    solution = ode_adjoint.solve(forced_van_der_pol(theta), y0, [0.0, 1.0], method="radau5", rtol=1e-8, atol=1e-8)
    assert solution.stats.njev > 0 and solution.stats.nlu > 0
    solution.ys.sum().backward()  # backprop through Newton: no backward statistics
    assert solution.backward_stats is None
    adjoint = ode_adjoint.solve(
        forced_van_der_pol(theta), y0, [0.0, 1.0], method="radau5", gradient="adjoint", adjoint_params=(theta,)
    )
    adjoint.ys.sum().backward()
    assert adjoint.backward_stats is not None
    assert adjoint.backward_stats.njev > 0 and adjoint.backward_stats.nlu > 0


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_zero_dimensional_states(gradient: str) -> None:
    """A tuple holding a 0-d tensor, and a 0-d y0 with a custom norm, used to
    crash in the state's reshape."""
    rate = torch.tensor(0.5, dtype=DTYPE, requires_grad=True)
    scalar = torch.tensor(1.0, dtype=DTYPE)
    ys = ode_adjoint.odeint(
        lambda t, y: (-rate * y[0], rate * y[1]),
        (scalar, torch.ones(2, dtype=DTYPE)),
        [0.0, 1.0],
        gradient=gradient,
        adjoint_params=(rate,),
    )
    assert ys[0].shape == (2,) and ys[1].shape == (2, 2)
    torch.testing.assert_close(ys[0][-1], torch.tensor(math.exp(-0.5), dtype=DTYPE))
    ys[0][-1].backward()
    assert rate.grad is not None
    torch.testing.assert_close(rate.grad, torch.tensor(-math.exp(-0.5), dtype=DTYPE), rtol=1e-5, atol=0)
    seen = []

    def norm(scaled: torch.Tensor) -> float:
        seen.append(scaled.shape)
        return float(scaled.abs())

    solution = ode_adjoint.solve(
        lambda t, y: -rate * y, scalar, [0.0, 1.0], options={"norm": norm}, gradient=gradient, adjoint_params=(rate,)
    )
    assert solution.ys.shape == (2,) and set(seen) == {torch.Size([])}


@pytest.mark.parametrize("method", ["euler", "rk4", "explicit_adams", "dopri5"])
def test_a_0d_float32_state_steps_in_float32_with_float64_times(method: str) -> None:
    """func sees the state's dtype whatever its shape and the times' dtype
    (torchdiffeq's fixed steps turn a 0-d float32 state into float64, by
    PyTorch's promotion of 0-d tensors; docs/guide/adjoint.md says so)."""
    seen: set[tuple[torch.dtype, torch.dtype]] = set()

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.add((t.dtype, y.dtype))
        return -y

    options = {"step_size": 0.1}  # fixed steps for dopri5 too: the same steps in both dtypes
    ys = ode_adjoint.odeint(
        field, torch.tensor(1.0), torch.tensor([0.0, 1.0], dtype=torch.float64), method=method, options=options
    )
    assert seen == {(torch.float32, torch.float32)}
    assert ys.dtype == torch.float32 and ys.shape == (2,)
    # The same steps as a float64 solve, to float32's rounding (grown by order 11 in explicit_adams).
    reference = ode_adjoint.odeint(
        lambda t, y: -y, torch.tensor(1.0, dtype=torch.float64), [0.0, 1.0], method=method, options=options
    )
    torch.testing.assert_close(ys.double(), reference, rtol=1e-5, atol=0)


def test_adjoint_of_a_field_that_depends_on_neither_state_nor_parameters() -> None:
    """odeint_adjoint used to crash: "element 0 of tensors does not require grad"."""
    y0 = torch.ones(2, dtype=DTYPE, requires_grad=True)
    ys = ode_adjoint.odeint_adjoint(lambda t, y: torch.cos(t).expand(2), y0, [0.0, 1.0], adjoint_params=())
    ys[-1].sum().backward()
    torch.testing.assert_close(y0.grad, torch.ones(2, dtype=DTYPE))


def test_jump_in_float32_sees_the_left_limit() -> None:
    """f sees time in float32: the float64 neighbour of a jump used to round
    back onto it, so the step saw the wrong side (tsit5 took 423 evaluations
    instead of about 230 in issue 13's case)."""
    sides: list[float] = []

    def switch(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        sides.append(float(t))
        return torch.full_like(y, 1.0 if float(t) < 0.3 else -1.0)

    y0 = torch.zeros(1)  # float32
    solution = ode_adjoint.solve(
        switch, y0, [0.0, 1.0], method="tsit5", rtol=1e-6, atol=1e-8, options={"jump_t": [0.3]}
    )
    # float32(0.3) is above 0.3: f's right-hand side. The step onto the
    # jump evaluated f just below it, at the largest float32 under 0.3.
    below = float(torch.nextafter(torch.tensor(0.3, dtype=torch.float32), torch.tensor(0.0)))
    assert below < 0.3 < float(torch.tensor(0.3, dtype=torch.float32))
    assert below in sides
    assert all(value <= below or value > 0.3 for value in sides)
    assert solution.stats.nfev < 100  # piecewise constant: a few steps on each side (63; the old loop took 417)
    torch.testing.assert_close(solution.ys[-1], torch.tensor([0.3 - 0.7]), rtol=0, atol=1e-6)


def test_radau5_fixed_steps_under_the_adjoint() -> None:
    """The backward Newton solve used to fail (its Jacobian was zero: the
    augmented field was detached); f = a x, a = -1, h = 0.1, float64."""
    a = torch.tensor(-1.0, dtype=DTYPE, requires_grad=True)
    x0 = torch.tensor([1.0], dtype=DTYPE, requires_grad=True)
    ys = ode_adjoint.odeint(
        lambda t, x: a * x, x0, [0.0, 1.0], method="radau5", options={"step_size": 0.1}, gradient="adjoint",
        adjoint_params=(a,),
    )  # fmt: skip
    ys[-1].sum().backward()
    # Radau IIA of order 5 at h = 0.1: the discrete and exact gradients agree closely.
    torch.testing.assert_close(a.grad, torch.tensor(math.exp(-1.0), dtype=DTYPE), rtol=1e-6, atol=0)
    torch.testing.assert_close(x0.grad, torch.tensor([math.exp(-1.0)], dtype=DTYPE), rtol=1e-6, atol=0)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_infinite_f_at_the_start_is_a_status(gradient: str) -> None:
    """select_initial_step used to divide by zero when f(t0, y0) was infinite."""
    solution = ode_adjoint.solve(
        lambda t, y: y * math.inf, torch.ones(2, dtype=DTYPE), [0.0, 1.0], gradient=gradient, adjoint_params=(),
        on_failure="return",
    )  # fmt: skip
    assert solution.status is Status.NON_FINITE
    assert solution.message == "f(t0, y0) is not finite at t=0.0"


def test_checkpoint_finds_the_tensors_a_closure_uses(van_der_pol: tuple[torch.Tensor, torch.Tensor]) -> None:
    """The checkpointing engine used to require adjoint_params for a plain
    function; its gradient is backprop's, and like backprop it finds them."""
    y0, theta = van_der_pol
    field = forced_van_der_pol(theta)
    gradients = {}
    for gradient in ("backprop", "checkpoint"):
        ys = ode_adjoint.odeint(field, y0, [0.0, 0.4, 1.0], gradient=gradient, rtol=1e-9, atol=1e-9)
        gradients[gradient] = torch.autograd.grad(ys.square().sum(), (y0, theta))
    for got, expected in zip(gradients["checkpoint"], gradients["backprop"]):
        assert relative_difference(got, expected) < 1e-12
    with pytest.raises(ValueError, match=r"adjoint_params: func is a function"):
        ode_adjoint.odeint(field, y0, [0.0, 1.0], gradient="adjoint")


def test_tensors_used_by_follows_intermediate_tensors_to_their_leaves() -> None:
    leaf = torch.tensor([2.0], dtype=DTYPE, requires_grad=True)
    scaled = leaf * 3  # not a leaf: the graph leads through it to `leaf`
    unused = torch.tensor([1.0], requires_grad=True)
    from ode_adjoint._engines import tensors_used_by

    found = tensors_used_by(lambda t, y: -scaled * y, 0.0, torch.ones(1, dtype=DTYPE))
    assert len(found) == 1 and found[0] is leaf
    assert unused.grad is None


def test_engines_and_odeint_do_not_import_each_other() -> None:
    """``_engines`` and ``_odeint`` used to import each other."""
    import ast

    source = (Path(ode_adjoint.__file__).parent / "_engines.py").read_text()
    imported = {node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.module}
    assert "_odeint" not in imported and "ode_adjoint._odeint" not in imported


# --- engines as objects ------------------------------------------------------------------


@pytest.mark.parametrize("name", GRADIENTS)
def test_engine_objects_equal_their_names(name: str) -> None:
    y0, theta = van_der_pol_inputs()
    results = []
    for gradient in (name, ENGINES[name]):
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta), y0, [0.0, 0.5, 1.0], gradient=gradient, adjoint_params=(theta,)
        )
        results.append((ys.detach(), *torch.autograd.grad(ys.square().sum(), (y0, theta))))
    for got, expected in zip(*results):
        assert torch.equal(got, expected)


def test_adjoint_object_carries_the_backward_solve_settings(van_der_pol: tuple[torch.Tensor, torch.Tensor]) -> None:
    y0, theta = van_der_pol
    work = {}
    for label, gradient, keywords in (
        ("object", ode_adjoint.Adjoint(rtol=1e-4, atol=1e-4, method="bosh3", norm="seminorm"), {}),
        (
            "keywords",
            "adjoint",
            {
                "adjoint_rtol": 1e-4,
                "adjoint_atol": 1e-4,
                "adjoint_method": "bosh3",
                "adjoint_options": {"norm": "seminorm"},
            },
        ),
        ("default", ode_adjoint.Adjoint(), {}),
    ):
        solution = ode_adjoint.solve(
            forced_van_der_pol(theta), y0, [0.0, 1.0], gradient=gradient, adjoint_params=(theta,), **keywords
        )
        solution.ys.sum().backward()
        assert solution.backward_stats is not None
        work[label] = solution.backward_stats.nfev
    assert work["object"] == work["keywords"] != work["default"]


def test_checkpoint_budget_object_and_option_agree(van_der_pol: tuple[torch.Tensor, torch.Tensor]) -> None:
    y0, theta = van_der_pol
    counts = []
    for gradient, options in ((ode_adjoint.Checkpoint(budget=2), {}), ("checkpoint", {"checkpoints": 2})):
        solution = ode_adjoint.solve(
            forced_van_der_pol(theta), y0, [0.0, 1.0], method="rk4", options={"step_size": 0.05, **options},
            gradient=gradient,
        )  # fmt: skip
        solution.ys.sum().backward()
        assert solution.backward_stats is not None
        counts.append(solution.backward_stats.nfev)
    assert counts[0] == counts[1] > 4 * 20  # recomputation on the revolve schedule
    with pytest.raises(ValueError, match=r"budget: expected a positive int"):
        ode_adjoint.Checkpoint(budget=0)


# --- events with gradients ----------------------------------------------------------------

GRAVITY = 9.81


def _ball(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.stack((y[1], torch.full_like(y[1], -GRAVITY)))


def _floor(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return y[0]


_floor.terminal = True  # type: ignore[attr-defined]
_floor.direction = -1  # type: ignore[attr-defined]


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_bouncing_ball_impact_time_and_velocity_derivatives(gradient: str) -> None:
    """From height h0 at speed v0 the ball lands at T = (v0 + s) / g, s =
    sqrt(v0^2 + 2 g h0), with dT/dh0 = 1/s and dT/dv0 = (1 + v0/s)/g; its
    speed there is v0 - g T. Every engine differentiates the event time
    through the implicit function theorem."""
    h0 = torch.tensor(2.0, dtype=DTYPE, requires_grad=True)
    v0 = torch.tensor(1.0, dtype=DTYPE, requires_grad=True)
    solution = ode_adjoint.solve(
        _ball, torch.stack((h0, v0)), [0.0, 5.0], events=_floor, gradient=gradient, adjoint_params=(),
        rtol=1e-10, atol=1e-10,
    )  # fmt: skip
    assert solution.status is Status.EVENT and solution.success
    s = math.sqrt(1.0 + 2 * GRAVITY * 2.0)
    impact = (1.0 + s) / GRAVITY
    (time_of_impact,) = solution.t_events[0]
    assert solution.t_final == pytest.approx(impact, rel=1e-12)
    dT = torch.autograd.grad(time_of_impact, (h0, v0), retain_graph=True)
    assert float(dT[0]) == pytest.approx(1 / s, rel=1e-9)
    assert float(dT[1]) == pytest.approx((1 + 1 / s) / GRAVITY, rel=1e-9)
    speed = solution.y_final[1]
    assert float(speed.detach()) == pytest.approx(1.0 - GRAVITY * impact, rel=1e-9)
    d_speed = torch.autograd.grad(speed, (h0, v0))
    assert float(d_speed[0]) == pytest.approx(-GRAVITY / s, rel=1e-9)
    assert float(d_speed[1]) == pytest.approx(1 - (1 + 1 / s), rel=1e-9, abs=1e-12)
    torch.testing.assert_close(solution.y_events[0][0], solution.y_final)


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_gradcheck_event_time_and_state(gradient: str) -> None:
    """A nonlinear field and an event that depends on time and state: the
    event time and the state there against finite differences."""

    def crossing(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[0] - 0.2 - 0.1 * t

    crossing.terminal = True  # type: ignore[attr-defined]

    def event_time_and_state(y0: torch.Tensor, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        solution = ode_adjoint.solve(
            forced_van_der_pol(theta), y0, [0.0, 3.0], events=crossing, gradient=gradient, adjoint_params=(theta,),
            rtol=1e-11, atol=1e-11,
        )  # fmt: skip
        assert solution.status is Status.EVENT
        return solution.t_events[0], solution.y_final

    y0, theta = van_der_pol_inputs()
    assert torch.autograd.gradcheck(event_time_and_state, (y0, theta), atol=1e-6, rtol=1e-5)


def test_non_terminal_events_are_all_differentiable() -> None:
    """Every occurrence's time carries its gradient; the solve goes on."""
    rate = torch.tensor(2.0, dtype=DTYPE, requires_grad=True)

    def rotate(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack((-rate * y[1], rate * y[0]))

    def axis(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[1]

    solution = ode_adjoint.solve(rotate, torch.tensor([1.0, 0.0], dtype=DTYPE), [0.0, 4.0], events=[axis])
    times = solution.t_events[0]  # zeros of sin(rate t) after 0: k pi / rate
    assert solution.status is Status.SUCCESS and len(times) == 2
    torch.testing.assert_close(times, torch.tensor([math.pi / 2, math.pi], dtype=DTYPE), rtol=1e-6, atol=0)
    (d_first,) = torch.autograd.grad(times[0], rate, retain_graph=True)
    assert float(d_first) == pytest.approx(-math.pi / 4, rel=1e-5)  # d/drate (pi / rate)
    (d_second,) = torch.autograd.grad(times[1], rate)
    assert float(d_second) == pytest.approx(-math.pi / 2, rel=1e-5)


# --- dense output -----------------------------------------------------------------


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_dense_output_is_differentiable(gradient: str) -> None:
    """sol.dense(t) carries the engine's gradient, as an output at t would."""
    times = [0.0, 0.3, 0.7, 1.0]
    gradients = {}
    for label, dense in (("dense", True), ("outputs", False)):
        y0, theta = van_der_pol_inputs()
        if dense:
            solution = ode_adjoint.solve(
                forced_van_der_pol(theta), y0, [0.0, 1.0], dense_output=True, gradient=gradient,
                adjoint_params=(theta,), rtol=1e-10, atol=1e-10,
            )  # fmt: skip
            assert solution.dense is not None
            values = solution.dense(times[1:3])
            single = solution.dense(0.7)
            torch.testing.assert_close(single, values[1])
        else:
            values = ode_adjoint.odeint(forced_van_der_pol(theta), y0, times, rtol=1e-10, atol=1e-10)[1:3]
        gradients[label] = torch.autograd.grad(values.square().sum(), (y0, theta))
    for got, expected in zip(gradients["dense"], gradients["outputs"]):
        assert relative_difference(got, expected) < 1e-7


# --- progress ---------------------------------------------------------------------


def test_progress_meter_reaches_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("tqdm")
    ode_adjoint.odeint(_decay, torch.ones(2, dtype=DTYPE), [0.0, 2.0], progress=True)
    assert "t=2" in capsys.readouterr().err
