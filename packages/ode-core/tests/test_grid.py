"""A single output time, fixed steps on the grid of ``t``, and other libraries' method names."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import numpy as np
import ode_core
import pytest
from ode_core import ALIASES, METHODS, Status
from ode_core.validation import check_method

EXPLICIT_FIXED = [name for name in METHODS if not check_method(name).adaptive and check_method(name).explicit]
IMPLICIT_FIXED = [name for name in METHODS if not check_method(name).adaptive and check_method(name).implicit]


class Counted:
    """``dy/dt = -y`` that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.calls += 1
        return -y


# --- a single output time --------------------------------------------------------------


@pytest.mark.parametrize("method", ["dopri5", "rk4", "euler", "radau5", "kvaerno5", "trapezoid"])
def test_a_single_time_returns_the_initial_state_and_takes_no_step(method: str) -> None:
    y0 = np.array([[1.0, -2.0], [3.0, 0.5]])
    f = Counted()
    solution = ode_core.solve(f, y0, [0.25], method=method)
    assert solution.status is Status.SUCCESS and solution.success
    assert "single output time" in solution.message
    np.testing.assert_array_equal(solution.ys, y0[None])
    np.testing.assert_array_equal(solution.ts, [0.25])
    assert solution.t_final == 0.25
    np.testing.assert_array_equal(solution.y_final, y0)
    assert (solution.stats.n_steps, solution.stats.n_accepted, solution.stats.njev) == (0, 0, 0)
    assert solution.stats.nfev == f.calls == 1  # solve's check of f's output, nothing more


def test_a_single_time_through_integrate_evaluates_nothing() -> None:
    f = Counted()
    settings = ode_core.validation.check_settings("dopri5", 1e-6, 1e-9, xp=np, y0=np.ones(3))
    solution = ode_core.integrate(f, np.ones(3), [2.0], settings)
    assert f.calls == 0 and solution.stats.nfev == 0
    np.testing.assert_array_equal(solution.ys, np.ones((1, 3)))


def test_a_single_time_with_events_and_dense_output() -> None:
    def crossing(t: float, y: np.ndarray) -> float:
        return float(y[0]) - 0.5

    solution = ode_core.solve(Counted(), np.ones(2), [1.0], events=[crossing, crossing], dense_output=True)
    assert solution.status is Status.SUCCESS
    assert solution.t_events is not None and solution.y_events is not None
    assert [e.shape for e in solution.t_events] == [(0,), (0,)]
    assert [e.shape for e in solution.y_events] == [(0, 2), (0, 2)]
    assert solution.dense is not None


def test_a_single_time_on_torch(torch: ModuleType) -> None:
    y0 = torch.tensor([1.0, 2.0], dtype=torch.float32)
    solution = ode_core.solve(lambda t, y: -y, y0, [0.0])
    assert solution.ys.dtype == torch.float32 and torch.equal(solution.ys, y0[None])


def test_no_output_time_is_refused() -> None:
    with pytest.raises(ValueError, match="t: expected at least one output time"):
        ode_core.solve(Counted(), np.ones(1), [])


# --- fixed steps on the grid of t ------------------------------------------------------


def test_euler_on_the_grid_of_t_is_the_closed_form() -> None:
    """y' = -y by Euler with steps h_i = t_{i+1} - t_i: y_n = prod (1 - h_i)."""
    t = np.array([0.0, 0.1, 0.15, 0.4, 0.45, 1.0])
    solution = ode_core.solve(Counted(), np.ones(1), t, method="euler")
    expected = np.concatenate(([1.0], np.cumprod(1.0 - np.diff(t))))
    np.testing.assert_allclose(solution.ys[:, 0], expected, rtol=1e-15)
    assert solution.stats.n_steps == solution.stats.n_accepted == len(t) - 1
    assert solution.stats.n_rejected == 0


def test_trapezoid_on_the_grid_of_t_is_the_closed_form() -> None:
    """The trapezoidal rule on y' = -y: y_{i+1} = y_i (1 - h/2) / (1 + h/2)."""
    t = np.linspace(0.0, 2.0, 9)
    solution = ode_core.solve(Counted(), np.ones(1), t, method="trapezoid", rtol=1e-12, atol=1e-14)
    h = t[1] - t[0]
    np.testing.assert_allclose(solution.ys[:, 0], ((1 - h / 2) / (1 + h / 2)) ** np.arange(9), rtol=1e-10)
    assert solution.stats.n_accepted == 8


@pytest.mark.parametrize("method", EXPLICIT_FIXED + IMPLICIT_FIXED)
def test_each_step_is_one_interval_of_the_grid(method: str) -> None:
    t = [0.0, 0.3, 0.35, 1.0]
    steps: list[tuple[float, float]] = []
    ode_core.solve(Counted(), np.ones(2), t, method=method, on_step=lambda s: steps.append((s.t, s.t_next)))
    assert steps == [(0.0, 0.3), (0.3, 0.35), (0.35, 1.0)]


def test_step_t_and_jump_t_add_points_to_the_grid() -> None:
    steps: list[tuple[float, float]] = []
    solution = ode_core.solve(
        Counted(),
        np.ones(1),
        [0.0, 1.0],
        method="rk4",
        step_t=[0.25, 0.75],
        jump_t=[0.5],
        on_step=lambda s: steps.append((s.t, s.t_next)),
    )
    assert [end for _, end in steps] == [0.25, 0.5, 0.75, 1.0]
    np.testing.assert_allclose(solution.ys[-1, 0], np.exp(-1.0), rtol=1e-4)


def test_a_reversed_grid() -> None:
    t = np.array([1.0, 0.5, 0.0])
    solution = ode_core.solve(Counted(), np.ones(1), t, method="euler")
    np.testing.assert_allclose(solution.ys[:, 0], [1.0, 1.5, 2.25], rtol=1e-15)  # y_{i+1} = y_i (1 + 0.5)


def test_a_step_size_still_means_fixed_steps_of_that_size() -> None:
    steps: list[float] = []
    ode_core.solve(
        Counted(), np.ones(1), [0.0, 0.3], method="euler", step_size=0.1, on_step=lambda s: steps.append(s.h)
    )
    np.testing.assert_allclose(steps, [0.1, 0.1, 0.1])


def test_the_settings_say_which_mode() -> None:
    y0 = np.ones(1)

    def settings(method: str, step_size: float | None = None) -> ode_core.Settings:
        return ode_core.validation.check_settings(method, 1e-6, 1e-9, xp=np, y0=y0, step_size=step_size)

    assert settings("dopri5").adaptive and not settings("dopri5").gridded
    assert settings("rk4").gridded and not settings("rk4").adaptive
    assert not settings("rk4", 0.1).gridded and not settings("dopri5", 0.1).adaptive


# --- other libraries' names ------------------------------------------------------------


@pytest.mark.parametrize(("alias", "own"), sorted(ALIASES.items()))
def test_an_alias_is_its_method(alias: str, own: str) -> None:
    assert own in METHODS and alias not in METHODS
    assert ode_core.validation.check_method(alias) is check_method(own)
    y0 = np.array([1.0, 0.5])
    options = {} if check_method(own).adaptive else {"step_size": 0.05}
    by_alias = ode_core.solve(Counted(), y0, [0.0, 0.5, 1.0], method=alias, **options)
    by_name = ode_core.solve(Counted(), y0, [0.0, 0.5, 1.0], method=own, **options)
    np.testing.assert_array_equal(by_alias.ys, by_name.ys)
    assert by_alias.stats == by_name.stats


def test_an_unknown_name_lists_the_aliases_too() -> None:
    with pytest.raises(
        ValueError, match=r"valid names are euler, .*and the aliases .*implicit_euler \(backward_euler\)"
    ):
        ode_core.solve(Counted(), np.ones(1), [0.0, 1.0], method="implicit_eulr")


def test_heun3_converges_at_third_order() -> None:
    """Halving the step divides the global error by about 2**3 (y' = -y, y(1) = e^-1)."""
    errors = []
    for n in (10, 20, 40):
        solution = ode_core.solve(Counted(), np.ones(1), np.linspace(0.0, 1.0, n + 1), method="heun3")
        errors.append(abs(float(solution.ys[-1, 0]) - np.exp(-1.0)))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(rates, 3.0, atol=0.1)


# --- an infinite end time --------------------------------------------------------------


def _half(t: float, y: np.ndarray) -> float:
    return float(y[0]) - 0.5


_half.terminal = True  # type: ignore[attr-defined]


@pytest.mark.parametrize(("end", "rate"), [(np.inf, 1.0), (-np.inf, -1.0)])
def test_an_infinite_end_runs_until_the_terminal_event(end: float, rate: float) -> None:
    """y' = -rate y from y(0) = 1 reaches 1/2 at t = ln 2 / rate (forward, or backward in time)."""
    solution = ode_core.solve(lambda t, y: -rate * y, np.ones(1), [0.0, end], events=_half, rtol=1e-10, atol=1e-12)
    assert solution.status is Status.EVENT
    assert solution.t_events is not None
    np.testing.assert_allclose(solution.t_events[0], [np.log(2.0) / rate], rtol=1e-8)
    np.testing.assert_allclose(solution.y_final, [0.5], rtol=1e-8)
    np.testing.assert_array_equal(solution.ts, [0.0])  # the infinite output time is never reached


def test_an_infinite_end_with_fixed_steps_needs_a_step_size() -> None:
    solution = ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, np.inf], events=_half, method="rk4", step_size=0.01)
    assert solution.status is Status.EVENT and solution.t_events is not None
    np.testing.assert_allclose(solution.t_events[0], [np.log(2.0)], rtol=1e-6)
    with pytest.raises(ValueError, match=r"t: ends at inf, and method 'rk4' without a step size steps on the grid"):
        ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, np.inf], events=_half, method="rk4")


def test_an_infinite_end_without_an_event_stops_at_max_steps() -> None:
    solution = ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, np.inf], max_steps=50)
    assert solution.status is Status.MAX_STEPS_REACHED and "max_steps=50" in solution.message


@pytest.mark.parametrize("t", [[0.0, np.inf, 3.0], [np.inf, 1.0], [0.0, np.nan]])
def test_only_the_last_time_may_be_infinite(t: list[float]) -> None:
    with pytest.raises(ValueError, match="t: contains inf or nan"):
        ode_core.solve(lambda t, y: -y, np.ones(1), t)


# --- the step observer -----------------------------------------------------------------


class Recorder:
    """A StepObserver that keeps what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []

    def attempt(self, t: float, y: np.ndarray, h: float) -> None:
        self.calls.append(("attempt", t, h))

    def accept(self, t: float, y: np.ndarray, h: float) -> None:
        self.calls.append(("accept", t, h))

    def reject(self, t: float, y: np.ndarray, h: float) -> None:
        self.calls.append(("reject", t, h))


def test_the_observer_hears_every_attempt_acceptance_and_rejection() -> None:
    """A stiff decay with a large first step: dopri5 rejects steps, and each attempt ends in one verdict."""
    settings = ode_core.validation.check_settings("dopri5", 1e-6, 1e-9, xp=np, y0=np.ones(1), first_step=0.5)
    recorder = Recorder()
    solution = ode_core.integrate(lambda t, y: -50.0 * y, np.ones(1), [0.0, 1.0], settings, observer=recorder)
    kinds = [kind for kind, _, _ in recorder.calls]
    assert kinds.count("attempt") == solution.stats.n_steps
    assert kinds.count("accept") == solution.stats.n_accepted
    assert kinds.count("reject") == solution.stats.n_rejected > 0
    for (kind, t, h), (verdict, t_verdict, h_verdict) in zip(recorder.calls[::2], recorder.calls[1::2]):
        assert kind == "attempt" and verdict in ("accept", "reject") and (t, h) == (t_verdict, h_verdict)
    assert recorder.calls[0] == ("attempt", 0.0, 0.5) and recorder.calls[1][0] == "reject"


def test_the_observer_of_fixed_steps() -> None:
    settings = ode_core.validation.check_settings("rk4", 1e-6, 1e-9, xp=np, y0=np.ones(1), step_size=0.1)
    recorder = Recorder()
    ode_core.integrate(lambda t, y: -y, np.ones(1), [0.0, 1.0], settings, observer=recorder)
    assert [kind for kind, _, _ in recorder.calls] == ["attempt", "accept"] * 10
    np.testing.assert_allclose([t for kind, t, _ in recorder.calls if kind == "accept"], np.arange(10) / 10)


# --- one-sided fixed steps (torchdiffeq's perturb) -------------------------------------


class Times:
    """``dy/dt = -y`` that keeps the times it is evaluated at."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.times.append(t)
        return -y


@pytest.mark.parametrize("method", ["euler", "rk4", "heun3", "backward_euler", "trapezoid", "sdirk2", "gl4", "radau3"])
@pytest.mark.parametrize("reverse", [False, True])
def test_one_sided_steps_never_evaluate_f_on_a_step_boundary(method: str, reverse: bool) -> None:
    boundaries = [0.0, 0.25, 0.5, 0.75, 1.0]
    t = [1.0, 0.0] if reverse else [0.0, 1.0]
    f = Times()
    settings = ode_core.validation.check_settings(
        method, 1e-8, 1e-10, xp=np, y0=np.ones(1), step_size=0.25, one_sided_steps=True
    )
    solution = ode_core.integrate(f, np.ones(1), t, settings)
    assert solution.status is Status.SUCCESS
    assert not set(f.times) & set(boundaries)
    assert min(f.times) > 0.0 and max(f.times) < 1.0  # every evaluation inside [0, 1]
    plain = ode_core.integrate(Times(), np.ones(1), t, dataclasses.replace(settings, one_sided_steps=False))
    np.testing.assert_allclose(solution.ys, plain.ys, rtol=1e-12)  # f is continuous: the same solution


def test_one_sided_steps_see_each_side_of_a_jump_at_every_boundary() -> None:
    """f = 1 on [0, 1/2), 3 after: every step of 1/4 integrates its own side exactly."""

    def step_function(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([1.0 if t < 0.5 else 3.0])

    settings = ode_core.validation.check_settings(
        "heun", 1e-8, 1e-10, xp=np, y0=np.zeros(1), step_size=0.25, one_sided_steps=True
    )
    solution = ode_core.integrate(step_function, np.zeros(1), [0.0, 1.0], settings)
    np.testing.assert_allclose(solution.ys[-1], [0.5 + 1.5], rtol=1e-14)
    exact_times = dataclasses.replace(settings, one_sided_steps=False)
    assert float(ode_core.integrate(step_function, np.zeros(1), [0.0, 1.0], exact_times).ys[-1, 0]) != 2.0


def test_one_sided_steps_do_not_touch_adaptive_steps() -> None:
    settings = ode_core.validation.check_settings("dopri5", 1e-8, 1e-10, xp=np, y0=np.ones(1), one_sided_steps=True)
    assert not settings.one_sided_steps


@pytest.mark.parametrize("given_f0", [False, True])
def test_one_sided_steps_count_every_evaluation_and_spend_none_at_the_ends(given_f0: bool) -> None:
    """rk4 in 4 one-sided steps: f just inside 0, then 3 stages a step and f just inside each next start."""
    f = Times()
    settings = ode_core.validation.check_settings(
        "rk4", 1e-8, 1e-10, xp=np, y0=np.ones(1), step_size=0.25, one_sided_steps=True
    )
    f0 = f(0.0, np.ones(1)) if given_f0 else None
    solution = ode_core.integrate(f, np.ones(1), [0.0, 1.0], settings, f0=f0)
    assert solution.stats.nfev == len(f.times) == 1 + 4 * 3 + 3 + int(given_f0)


def test_fixed_steps_end_on_the_output_times_of_their_grid() -> None:
    """0.05 added up drifts off 0.4 and 0.7 by an ulp; the steps end on those
    outputs, so they are step ends (Euler's (1 - h)^k), not interpolated."""
    times = np.linspace(0.0, 1.0, 11)
    solution = ode_core.solve(lambda t, y: -y, np.ones(1), times, method="euler", step_size=0.05)
    assert set(times.tolist()) <= set(solution.dense.t_steps)
    np.testing.assert_allclose(solution.ys[:, 0], 0.95 ** np.arange(0, 21, 2), rtol=1e-14)
    assert solution.stats.n_steps == 20
