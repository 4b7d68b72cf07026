"""The ``solve`` API: results, statuses, options, errors, convergence order."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import ode_core
import pytest
from ode_core import METHODS, Status
from ode_core.validation import check_method
from scipy.integrate import solve_ivp

ADAPTIVE = [name for name in METHODS if check_method(name).adaptive]


def decay(t: float, y: np.ndarray) -> np.ndarray:
    return -y


def oscillator(t: float, y: np.ndarray) -> np.ndarray:
    return np.stack((y[1], -y[0]))


def forced_nonlinear(t: float, y: np.ndarray) -> np.ndarray:
    """Non-autonomous and nonlinear, so every elementary differential shows up."""
    return np.stack((y[1] + 0.5 * np.sin(t) * y[0], -y[0] - 0.3 * y[1] * y[0] ** 2))


def reference(f, y0, t_end, t_eval=None):  # type: ignore[no-untyped-def]
    result = solve_ivp(f, (0.0, t_end), y0, method="DOP853", rtol=1e-13, atol=1e-14, t_eval=t_eval)
    return result.y.T


# --- results -------------------------------------------------------------


def test_exponential_decay_at_output_times() -> None:
    t = np.linspace(0.0, 3.0, 7)
    sol = ode_core.solve(decay, np.array([1.0, -2.0]), t, rtol=1e-10, atol=1e-12)
    assert sol.status is Status.SUCCESS
    assert sol.success
    assert sol.ts.shape == (7,)
    assert sol.ys.shape == (7, 2)
    np.testing.assert_allclose(sol.ts, t)
    np.testing.assert_allclose(sol.ys, np.exp(-t)[:, None] * np.array([1.0, -2.0]), rtol=1e-8)
    assert sol.t_final == 3.0
    np.testing.assert_array_equal(sol.y_final, sol.ys[-1])


@pytest.mark.parametrize("method", METHODS)
def test_every_method_solves_the_oscillator(method: str) -> None:
    t = np.linspace(0.0, 2.0, 5)
    step = {} if check_method(method).adaptive else {"step_size": 1e-3}
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), t, method=method, rtol=1e-7, atol=1e-9, **step)
    assert sol.success, sol.message
    exact = np.stack((np.cos(t), -np.sin(t)), axis=1)
    tolerance = 1e-2 if check_method(method).order == 1 else 1e-4
    np.testing.assert_allclose(sol.ys, exact, atol=tolerance)


def test_batch_dimensions_keep_their_shape() -> None:
    y0 = np.arange(1.0, 7.0).reshape(2, 3)
    seen_shapes = []

    def f(t: float, y: np.ndarray) -> np.ndarray:
        seen_shapes.append(y.shape)
        return -y

    sol = ode_core.solve(f, y0, [0.0, 0.5, 1.0], rtol=1e-9)
    assert sol.ys.shape == (3, 2, 3)
    assert set(seen_shapes) == {(2, 3)}
    np.testing.assert_allclose(sol.ys[-1], y0 * math.exp(-1.0), rtol=1e-7)
    assert sol.dense is not None
    assert sol.dense(0.25).shape == (2, 3)
    assert sol.dense([0.25, 0.75]).shape == (2, 2, 3)


def test_decreasing_times_integrate_backwards() -> None:
    t = [2.0, 1.0, 0.0]
    sol = ode_core.solve(decay, np.array([1.0]), t, rtol=1e-10, atol=1e-12)
    assert sol.success
    np.testing.assert_allclose(sol.ys[:, 0], np.exp([0.0, 1.0, 2.0]), rtol=1e-8)
    assert sol.dense is not None
    assert sol.dense.t_min == 0.0
    assert sol.dense.t_max == 2.0
    np.testing.assert_allclose(sol.dense(0.5), [math.exp(1.5)], rtol=1e-7)


def test_float32_state_keeps_its_dtype_and_float64_time() -> None:
    y0 = np.array([1.0, 0.0], dtype=np.float32)

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.stack((y[1], -y[0]))

    sol = ode_core.solve(f, y0, [0.0, 1.0, 2.0], rtol=1e-5, atol=1e-6)
    assert sol.success
    assert sol.ys.dtype == np.float32
    assert sol.ts.dtype == np.float64
    np.testing.assert_allclose(sol.ys[-1], [math.cos(2.0), -math.sin(2.0)], atol=1e-4)


def test_list_input_becomes_float64() -> None:
    sol = ode_core.solve(lambda t, y: -y, [1.0, 2.0], (0.0, 1.0))
    assert sol.ys.dtype == np.float64


def test_matches_scipy_rk45_step_for_step() -> None:
    """Same tableau, initial step and I-controller constants as scipy's RK45."""
    t_eval = np.linspace(0.0, 10.0, 11)
    ours = ode_core.solve(oscillator, np.array([1.0, 0.0]), t_eval, method="dopri5", rtol=1e-6, atol=1e-8)
    scipy_result = solve_ivp(oscillator, (0.0, 10.0), [1.0, 0.0], rtol=1e-6, atol=1e-8, t_eval=t_eval)
    assert ours.stats.nfev == scipy_result.nfev
    np.testing.assert_allclose(ours.ys, scipy_result.y.T, rtol=1e-10, atol=1e-12)


# --- convergence order with fixed steps ----------------------------------


# torchdiffeq's Adams methods raise their order with the history (test_adams); bdf and auto choose
# their own steps and orders (test_bdf, test_auto).
CHOOSING = ("explicit_adams", "implicit_adams", "bdf", "auto")


@pytest.mark.parametrize("method", [m for m in METHODS if m not in CHOOSING])
def test_observed_convergence_order_matches_the_tableau(method: str) -> None:
    """Halving a fixed step divides the global error by about 2**order."""
    order = check_method(method).order
    t_end = 1.0
    y0 = np.array([1.0, 0.5])
    exact = reference(forced_nonlinear, y0, t_end)[-1]
    # Steps coarse enough that round-off stays far below the error.
    n_coarse = {1: 64, 2: 32, 3: 16, 4: 8, 5: 8, 6: 4, 8: 2}[order]
    errors = []
    # Implicit methods (and an Adams corrector): the iteration stops at a fraction of
    # the tolerance, so it must be far below the discretisation error measured.
    iterated = not check_method(method).explicit or getattr(check_method(method), "corrector", False)
    tolerances = {"rtol": 1e-13, "atol": 1e-15} if iterated else {}
    for n_steps in (n_coarse, 2 * n_coarse, 4 * n_coarse):
        sol = ode_core.solve(forced_nonlinear, y0, [0.0, t_end], method=method, step_size=t_end / n_steps, **tolerances)
        assert sol.stats.n_steps == n_steps
        errors.append(float(np.max(np.abs(sol.ys[-1] - exact))))
    observed = [math.log2(errors[i] / errors[i + 1]) for i in range(2)]
    assert abs(observed[-1] - order) < 0.35, (errors, observed)


# --- dense output ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "bound"), [("dopri5", 1e-7), ("tsit5", 1e-7), ("dopri8", 1e-9), ("dopri87", 1e-9), ("bosh3", 1e-6)]
)
def test_dense_output_accuracy_between_steps(method: str, bound: float) -> None:
    y0 = np.array([1.0, 0.5])
    sol = ode_core.solve(forced_nonlinear, y0, [0.0, 5.0], method=method, rtol=1e-9, atol=1e-11)
    assert sol.dense is not None
    assert sol.dense.n_segments > 5
    query = np.linspace(0.0, 5.0, 97)
    exact = reference(forced_nonlinear, y0, 5.0, t_eval=query)
    np.testing.assert_allclose(sol.dense(query), exact, atol=bound)


def test_dense_output_is_continuous_and_hits_the_outputs() -> None:
    t = np.linspace(0.0, 4.0, 9)
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), t, method="tsit5", rtol=1e-8)
    assert sol.dense is not None
    np.testing.assert_allclose(sol.dense(t), sol.ys, atol=1e-12)
    boundaries = sol.dense.t_steps[1:-1]
    left = sol.dense([b - 1e-12 for b in boundaries])
    right = sol.dense([b + 1e-12 for b in boundaries])
    np.testing.assert_allclose(left, right, atol=1e-10)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3"])
def test_output_times_cost_no_evaluations(method: str) -> None:
    y0 = np.array([1.0, 0.0])
    few = ode_core.solve(oscillator, y0, [0.0, 10.0], method=method, dense_output=False)
    many = ode_core.solve(oscillator, y0, np.linspace(0.0, 10.0, 1001), method=method, dense_output=False)
    assert many.stats.nfev == few.stats.nfev
    assert many.stats.n_steps == few.stats.n_steps
    np.testing.assert_allclose(many.ys[-1], few.ys[-1], rtol=1e-12)


def test_hermite_output_of_fixed_step_rk4_costs_at_most_the_final_slope() -> None:
    y0 = np.array([1.0, 0.0])
    few = ode_core.solve(oscillator, y0, [0.0, 1.0], method="rk4", step_size=0.1, dense_output=False)
    many = ode_core.solve(oscillator, y0, np.linspace(0.0, 1.0, 101), method="rk4", step_size=0.1, dense_output=False)
    assert few.stats.nfev == 4 * 10
    assert many.stats.nfev == few.stats.nfev + 1
    np.testing.assert_allclose(many.ys[::10], np.stack((np.cos(many.ts[::10]), -np.sin(many.ts[::10])), 1), atol=1e-5)


def test_dense_output_rejects_times_outside_the_span() -> None:
    sol = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0])
    assert sol.dense is not None
    with pytest.raises(ValueError, match=r"t: 1\.5 lies outside"):
        sol.dense(1.5)


def test_dense_output_can_be_switched_off() -> None:
    assert ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], dense_output=False).dense is None


# --- statuses ------------------------------------------------------------


def test_max_steps_returns_the_partial_solution() -> None:
    t = np.linspace(0.0, 100.0, 101)
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), t, max_steps=20, rtol=1e-8)
    assert sol.status is Status.MAX_STEPS_REACHED
    assert not sol.success
    assert "max_steps=20" in sol.message
    assert f"t={sol.t_final!r}" in sol.message
    assert sol.stats.n_steps == 20
    assert 1 <= sol.ts.shape[0] < 101
    assert sol.ys.shape == (sol.ts.shape[0], 2)
    assert sol.ts[-1] <= sol.t_final < 100.0
    exact = np.stack((np.cos(sol.ts), -np.sin(sol.ts)), axis=1)
    np.testing.assert_allclose(sol.ys, exact, atol=1e-6)


def test_blow_up_ends_with_a_status_not_a_hang() -> None:
    # y' = y^2, y(0) = 1 has the solution 1/(1-t), which blows up at t=1.
    sol = ode_core.solve(lambda t, y: y * y, np.array([1.0]), [0.0, 2.0])
    assert sol.status in (Status.STEP_SIZE_UNDERFLOW, Status.NON_FINITE, Status.MAX_STEPS_REACHED)
    assert 0.99 < sol.t_final < 1.001
    assert "t=" in sol.message


def test_min_step_underflow() -> None:
    sol = ode_core.solve(lambda t, y: y * y, np.array([1.0]), [0.0, 2.0], min_step=1e-3)
    assert sol.status is Status.STEP_SIZE_UNDERFLOW
    assert "fell below" in sol.message


def test_nan_derivative_is_reported_as_non_finite() -> None:
    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.full_like(y, np.nan) if t > 0.5 else -y

    sol = ode_core.solve(f, np.array([1.0]), [0.0, 0.25, 1.0])
    assert sol.status is Status.NON_FINITE
    assert sol.t_final <= 0.5
    np.testing.assert_allclose(sol.ys[1], [math.exp(-0.25)], rtol=1e-6)


@pytest.mark.parametrize("method", ["dopri5", "cash_karp", "kvaerno5", "radau5"])
@pytest.mark.parametrize("step_size", [None, 0.1])
def test_nan_at_the_start_is_reported_at_once(method: str, step_size: float | None) -> None:
    """f(t0, y0) is read only when the first step fails (a solve that goes
    well pays nothing for the check), so one attempt reveals it."""
    sol = ode_core.solve(lambda t, y: y * np.nan, np.array([1.0]), [0.0, 1.0], method=method, step_size=step_size)
    assert sol.status is Status.NON_FINITE
    assert sol.message == "f(t0, y0) is not finite at t=0.0"
    assert sol.stats.n_steps <= 1
    assert sol.t_final == 0.0


def test_fixed_step_blow_up_is_non_finite() -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
        sol = ode_core.solve(lambda t, y: y * y, np.array([1.0]), [0.0, 5.0], method="euler", step_size=0.1)
    assert sol.status is Status.NON_FINITE
    assert sol.t_final < 5.0
    assert np.all(np.isfinite(sol.y_final))


# --- options -------------------------------------------------------------


def test_step_t_times_are_stepped_onto() -> None:
    must_hit = [0.37, 1.234, 2.5]
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, 3.0], step_t=must_hit)
    assert sol.dense is not None
    for time in must_hit:
        assert time in sol.dense.t_steps


def test_jump_t_restarts_past_a_discontinuity() -> None:
    evaluated_at: list[float] = []

    def ramp(t: float, y: np.ndarray) -> np.ndarray:
        evaluated_at.append(t)
        return np.ones_like(y) if t < 1.0 else -np.ones_like(y)

    with_jump = ode_core.solve(ramp, np.array([0.0]), [0.0, 2.0], jump_t=[1.0], rtol=1e-8, atol=1e-10)
    assert with_jump.success
    np.testing.assert_allclose(with_jump.ys[-1], [0.0], atol=1e-12)
    assert math.nextafter(1.0, math.inf) in evaluated_at
    blind = ode_core.solve(ramp, np.array([0.0]), [0.0, 2.0], rtol=1e-8, atol=1e-10)
    assert with_jump.stats.n_rejected < blind.stats.n_rejected


def test_max_step_bounds_every_step() -> None:
    sol = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], max_step=0.05)
    assert sol.dense is not None
    assert max(np.diff(sol.dense.t_steps)) <= 0.05 + 1e-15


def test_first_step_is_used() -> None:
    sol = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], first_step=1e-4)
    assert sol.dense is not None
    assert sol.dense.t_steps[1] == pytest.approx(1e-4)


def test_fixed_step_grid_lands_on_the_end() -> None:
    sol = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], method="rk4", step_size=0.1)
    assert sol.stats.n_steps == 10
    assert sol.dense is not None
    np.testing.assert_allclose(sol.dense.t_steps, np.linspace(0.0, 1.0, 11), atol=1e-12)
    shortened = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], method="rk4", step_size=0.3)
    assert shortened.stats.n_steps == 4


def test_adaptive_method_with_fixed_steps_does_no_error_control() -> None:
    sol = ode_core.solve(decay, np.array([1.0]), [0.0, 1.0], method="dopri5", step_size=0.25)
    assert sol.stats.n_steps == 4
    assert sol.stats.n_rejected == 0


def test_per_component_tolerances() -> None:
    y0 = np.array([1.0, 1.0])
    kwargs = {"atol": 1e-12, "norm": ode_core.max_norm}
    mixed = ode_core.solve(decay, y0, [0.0, 5.0], rtol=np.array([1e-3, 1e-10]), **kwargs)
    tight = ode_core.solve(decay, y0, [0.0, 5.0], rtol=1e-10, **kwargs)
    loose = ode_core.solve(decay, y0, [0.0, 5.0], rtol=1e-3, **kwargs)
    # Under the max norm the tight component alone drives the step size.
    assert mixed.stats.nfev == tight.stats.nfev
    assert loose.stats.nfev < tight.stats.nfev


def test_custom_norm_is_called_with_the_state_shape() -> None:
    shapes = []

    def seminorm(scaled: np.ndarray) -> float:
        shapes.append(scaled.shape)
        return float(np.sqrt(np.mean(scaled[0] ** 2)))  # ignores the second row

    y0 = np.array([[1.0, 1.0], [1.0, 1.0]])

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.stack((-y[0], -50.0 * np.sin(20 * t) * y[1]))

    with_seminorm = ode_core.solve(f, y0, [0.0, 2.0], norm=seminorm, rtol=1e-8)
    full = ode_core.solve(f, y0, [0.0, 2.0], rtol=1e-8)
    assert set(shapes) == {(2, 2)}
    assert with_seminorm.stats.nfev < full.stats.nfev


def test_max_norm_is_stricter_than_rms() -> None:
    y0 = np.linspace(0.1, 1.0, 10)
    rms = ode_core.solve(oscillator_like := (lambda t, y: -np.arange(1, 11) * y), y0, [0.0, 1.0], rtol=1e-6)
    worst = ode_core.solve(oscillator_like, y0, [0.0, 1.0], rtol=1e-6, norm=ode_core.max_norm)
    assert worst.stats.nfev > rms.stats.nfev


@pytest.mark.parametrize(
    "controller",
    [ode_core.IController(), ode_core.PIController(), ode_core.PIDController(1 / 18, 1 / 9, 1 / 18)],
    ids=["I", "PI", "PID"],
)
def test_controllers_reach_the_tolerance(controller: ode_core.PIDController) -> None:
    y0 = np.array([2.0, 0.0])

    def van_der_pol(t: float, y: np.ndarray) -> np.ndarray:
        return np.stack((y[1], 5.0 * (1 - y[0] ** 2) * y[1] - y[0]))

    t = np.linspace(0.0, 10.0, 11)
    sol = ode_core.solve(van_der_pol, y0, t, rtol=1e-7, atol=1e-9, controller=controller)
    assert sol.success
    np.testing.assert_allclose(sol.ys, reference(van_der_pol, y0, 10.0, t_eval=t), atol=1e-4)


# --- bad input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"method": "rk45"}, ValueError, "method: unknown method 'rk45'; valid names are euler"),
        ({"method": 3}, TypeError, "method:"),
        ({"t": []}, ValueError, "t: expected at least one output time"),
        ({"t": [0.0, 1.0, 1.0]}, ValueError, "t: .* duplicated"),
        ({"t": [0.0, 1.0, 0.5]}, ValueError, "t: .* not monotonic"),
        ({"t": [0.0, math.nan]}, ValueError, "t: contains inf or nan"),
        ({"t": np.zeros((2, 2))}, ValueError, "t: expected a 1-D"),
        ({"y0": np.array([1.0, math.inf])}, ValueError, "y0: contains inf or nan"),
        ({"y0": np.array(["a", "b"])}, TypeError, "y0: expected a floating dtype"),
        ({"y0": "abc"}, TypeError, "y0:"),
        ({"rtol": 0.0}, ValueError, "rtol: expected a finite number > 0"),
        ({"rtol": -1e-3}, ValueError, "rtol:"),
        ({"atol": -1.0}, ValueError, "atol: expected a finite number >= 0"),
        ({"atol": np.ones(3)}, ValueError, r"atol: expected a scalar or an array of shape \(2,\)"),
        ({"step_size": -0.1}, ValueError, "step_size:"),
        ({"step_size": "0.1"}, TypeError, "step_size:"),
        ({"first_step": 0.0}, ValueError, "first_step:"),
        ({"max_step": 0.0}, ValueError, "max_step:"),
        ({"min_step": -1.0}, ValueError, "min_step:"),
        ({"min_step": 2.0, "max_step": 1.0}, ValueError, "min_step: 2.0 exceeds max_step"),
        ({"max_steps": 0}, ValueError, "max_steps: expected a positive int"),
        ({"max_steps": 1.5}, ValueError, "max_steps:"),
        ({"controller": "pid"}, TypeError, "controller:"),
        ({"norm": 1.0}, TypeError, "norm: expected a callable"),
        ({"step_t": [math.inf]}, ValueError, "step_t: contains inf or nan"),
        ({"jump_t": "abc"}, TypeError, "jump_t: expected a 1-D sequence"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict[str, object], error: type[Exception], names: str) -> None:
    arguments: dict[str, object] = {"f": decay, "y0": np.array([1.0, 2.0]), "t": [0.0, 1.0]}
    arguments.update(kwargs)
    with pytest.raises(error, match=names):
        ode_core.solve(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("f", "error", "names"),
    [
        (lambda t, y: np.zeros(3), ValueError, r"f: returned shape \(3,\), expected y0's shape \(2,\)"),
        (lambda t, y: y.astype(np.float32), TypeError, "f: returned dtype float32, expected y0's dtype float64"),
        (3.0, TypeError, "f: expected a callable"),
    ],
    ids=["shape", "dtype", "not-callable"],
)
def test_bad_right_hand_side_names_f(f: object, error: type[Exception], names: str) -> None:
    with pytest.raises(error, match=names):
        ode_core.solve(f, np.array([1.0, 2.0]), [0.0, 1.0])  # type: ignore[arg-type]


def test_importing_ode_core_does_not_import_torch() -> None:
    code = "import sys, ode_core; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_mixed_norm_is_the_largest_rms_of_its_parts() -> None:
    norm = ode_core.MixedNorm([1, 0, 3])
    assert norm(np.array([2.0, 0.0, 0.0, 0.0])) == 2.0  # the flat RMS would be 1
    assert norm(np.array([0.0, 3.0, 4.0, 0.0])) == pytest.approx(math.sqrt(25 / 3))
    with pytest.raises(ValueError, match="scaled_error: expected 4 values, got 2"):
        norm(np.zeros(2))
    with pytest.raises(ValueError, match=r"sizes: expected non-negative integers, got \[1, -1\]"):
        ode_core.MixedNorm([1, -1])


def test_mixed_norm_as_the_norm_of_a_solve() -> None:
    """A small part's error sets the steps rather than drowning in a large part's mean."""

    def field(t: float, y: np.ndarray) -> np.ndarray:
        return np.concatenate(([-5.0 * y[0]], -0.1 * y[1:]))

    y0 = np.ones(101)
    plain = ode_core.solve(field, y0, [0.0, 1.0], rtol=1e-6, atol=1e-9)
    mixed = ode_core.solve(field, y0, [0.0, 1.0], rtol=1e-6, atol=1e-9, norm=ode_core.MixedNorm([1, 100]))
    assert mixed.stats.n_steps > plain.stats.n_steps


def test_accept_at_min_step_floors_the_steps_and_counts_what_it_forced() -> None:
    def field(t: float, y: np.ndarray) -> np.ndarray:
        return -3.0 * y + np.sin(5 * t)

    times = [0.0, 8.0]
    plain = ode_core.validation.check_settings("dopri5", 1e-9, 1e-12, xp=np, y0=np.ones(2), min_step=0.5)
    floored = ode_core.validation.check_settings(
        "dopri5", 1e-9, 1e-12, xp=np, y0=np.ones(2), min_step=0.5, accept_at_min_step=True, dense_output=True
    )
    underflow = ode_core.integrate(field, np.ones(2), times, plain)
    assert underflow.status is Status.STEP_SIZE_UNDERFLOW
    solution = ode_core.integrate(field, np.ones(2), times, floored)
    assert solution.status is Status.SUCCESS
    assert solution.stats.n_forced > 0
    assert solution.stats.n_forced <= solution.stats.n_accepted == solution.stats.n_steps
    assert solution.dense is not None
    assert np.diff(solution.dense.t_steps)[:-1].min() >= 0.5 - 1e-12  # the last one lands on t_end
