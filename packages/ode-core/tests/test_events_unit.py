"""``EventTracker`` driven by hand with exact interpolants (no solver involved)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from ode_core._events import EventTracker

PI = math.pi


def exact(t: float) -> np.ndarray:
    """y(t) = [cos t, -sin t], the solution of y0' = y1, y1' = -y0 from [1, 0]."""
    return np.array([math.cos(t), -math.sin(t)])


def event(
    function: Callable[[float, Any], Any], *, terminal: Any = None, direction: Any = None
) -> Callable[[float, Any], Any]:
    """A copy of ``function`` with scipy's event attributes set."""

    def g(t: float, y: Any) -> Any:
        return function(t, y)

    if terminal is not None:
        g.terminal = terminal  # type: ignore[attr-defined]
    if direction is not None:
        g.direction = direction  # type: ignore[attr-defined]
    return g


def cos_event(t: float, y: np.ndarray) -> float:
    return float(y[0])


def drive(
    events: Any,
    grid: Sequence[float],
    solution: Callable[[float], Any] = exact,
    time_tolerance: float | None = None,
) -> tuple[EventTracker, tuple[float, Any] | None, int]:
    """Step a tracker along ``grid``; returns it, the stop point and the steps taken."""
    direction = 1.0 if grid[-1] > grid[0] else -1.0
    y0 = solution(grid[0])
    tracker = EventTracker(events, np, tuple(y0.shape), grid[0], y0, direction, time_tolerance)
    for k in range(1, len(grid)):
        stop = tracker.step(grid[k - 1], grid[k], solution(grid[k]), solution)
        if stop is not None:
            return tracker, stop, k
    return tracker, None, len(grid) - 1


GRID = [float(v) for v in np.linspace(0.0, 10.0, 41)]  # steps of 0.25
COS_ROOTS = [PI / 2, 3 * PI / 2, 5 * PI / 2]  # zeros of cos in (0, 10]


def test_zeros_of_cos_located_to_round_off() -> None:
    tracker, stop, _ = drive(cos_event, GRID)
    assert stop is None
    (times,) = tracker.t_events
    (states,) = tracker.y_events
    assert times.dtype == np.float64
    assert times.shape == (3,)
    assert states.shape == (3, 2)
    np.testing.assert_allclose(times, COS_ROOTS, rtol=0, atol=1e-12)
    np.testing.assert_allclose(states, np.stack([exact(t) for t in times]), rtol=0, atol=1e-15)
    np.testing.assert_allclose(states[:, 0], 0.0, rtol=0, atol=1e-14)


def test_irregular_steps_and_loose_tolerance() -> None:
    rng = np.random.default_rng(0)
    grid = [0.0, *np.cumsum(rng.uniform(0.05, 0.9, size=40)).tolist()]
    tracker, _, _ = drive(cos_event, grid)
    expected = [PI / 2 + k * PI for k in range(20) if PI / 2 + k * PI <= grid[-1]]
    np.testing.assert_allclose(tracker.t_events[0], expected, rtol=0, atol=1e-12)

    loose, _, _ = drive(cos_event, grid, time_tolerance=1e-3)
    np.testing.assert_allclose(loose.t_events[0], expected, rtol=0, atol=1e-3)


def test_g_called_once_per_step_and_few_times_per_root() -> None:
    calls = 0

    def counted(t: float, y: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        return float(y[0]) + 2.0  # never zero

    drive(counted, GRID)
    assert calls == len(GRID)  # once at t0, once per step

    calls = 0

    def counted_cos(t: float, y: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        return float(y[0])

    drive(counted_cos, GRID)
    assert calls - len(GRID) <= 3 * 12  # Brent: a handful of evaluations per root


@pytest.mark.parametrize(
    ("direction", "expected"),
    [(1, [3 * PI / 2]), (-1, [PI / 2, 5 * PI / 2]), (0, COS_ROOTS), (2.5, [3 * PI / 2]), (-0.1, [PI / 2, 5 * PI / 2])],
)
def test_direction_filter(direction: float, expected: list[float]) -> None:
    tracker, _, _ = drive(event(cos_event, direction=direction), GRID)
    np.testing.assert_allclose(tracker.t_events[0], expected, rtol=0, atol=1e-12)


def test_terminal_true_stops_at_first_occurrence() -> None:
    tracker, stop, steps = drive(event(cos_event, terminal=True), GRID)
    assert stop is not None
    t_stop, y_stop = stop
    assert abs(t_stop - PI / 2) < 1e-12
    assert y_stop.shape == (2,)
    np.testing.assert_allclose(y_stop, exact(t_stop), rtol=0, atol=1e-15)
    assert GRID[steps - 1] < t_stop <= GRID[steps]
    assert tracker.t_events[0].tolist() == [t_stop]


def test_terminal_count_two_and_later_occurrences_dropped() -> None:
    late = event(lambda t, y: t - 4.75)  # in the same step (4.5, 4.75] as 3 pi / 2 = 4.712
    tracker, stop, _ = drive([late, event(cos_event, terminal=2)], GRID)
    assert stop is not None
    assert abs(stop[0] - 3 * PI / 2) < 1e-12
    assert tracker.t_events[0].shape == (0,)
    assert tracker.y_events[0].shape == (0, 2)
    np.testing.assert_allclose(tracker.t_events[1], [PI / 2, 3 * PI / 2], rtol=0, atol=1e-12)


def test_direction_filtered_occurrences_do_not_count_towards_terminal() -> None:
    tracker, stop, _ = drive(event(cos_event, terminal=True, direction=1), GRID)
    assert stop is not None
    assert abs(stop[0] - 3 * PI / 2) < 1e-12
    assert len(tracker.t_events[0]) == 1


def test_several_roots_in_one_step_sorted_by_time() -> None:
    grid = [0.0, 1.0, 1.5, 2.0]
    events = [event(lambda t, y: t - 1.4, terminal=True), lambda t, y: t - 1.1, event(lambda t, y: 1.2 - t)]
    tracker, stop, steps = drive(events, grid)
    assert steps == 2
    assert stop is not None
    assert abs(stop[0] - 1.4) < 1e-15
    for times, expected in zip(tracker.t_events, [1.4, 1.1, 1.2]):
        np.testing.assert_allclose(times, [expected], rtol=0, atol=1e-15)

    # The earliest terminal occurrence wins, whatever the order of the functions.
    events = [event(lambda t, y: t - 1.4, terminal=True), event(lambda t, y: t - 1.2, terminal=True)]
    tracker, stop, _ = drive(events, grid)
    assert stop is not None
    assert abs(stop[0] - 1.2) < 1e-15
    assert tracker.t_events[0].shape == (0,)
    np.testing.assert_allclose(tracker.t_events[1], [1.2], rtol=0, atol=1e-15)


def test_same_zero_set_terminal_count_and_even_zeros_in_one_step() -> None:
    # Two functions with the same zeros: with terminal=2 the stop is the second
    # zero, and the other function's occurrence at that same time is recorded too.
    tracker, stop, _ = drive([cos_event, event(cos_event, terminal=2)], [0.0, 2.0, 5.0])
    assert stop is not None
    assert abs(stop[0] - 3 * PI / 2) < 1e-12
    np.testing.assert_allclose(tracker.t_events[0], [PI / 2, 3 * PI / 2], rtol=0, atol=1e-12)
    # An even number of zeros within a single step shows no sign change: missed, as in scipy.
    tracker, _, _ = drive(cos_event, [1.5, 5.0])
    assert tracker.t_events[0].shape == (0,)


def test_event_at_t0_does_not_fire() -> None:
    sin_event = event(lambda t, y: float(y[1]), terminal=True)  # -sin t: zero at t0 = 0
    tracker, stop, _ = drive(sin_event, GRID)
    assert stop is not None
    assert abs(stop[0] - PI) < 1e-12
    assert tracker.t_events[0].tolist() == [stop[0]]


def test_zero_at_t0_then_crossing_in_the_first_step() -> None:
    # g = -sin t is 0 at t0, negative just after it, and crosses at pi inside the first step.
    tracker, _, _ = drive(lambda t, y: float(y[1]), [0.0, 4.0, 5.0])
    np.testing.assert_allclose(tracker.t_events[0], [PI], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("direction", "count"), [(0, 1), (1, 1), (-1, 0)])
def test_zero_exactly_at_a_step_end_counted_once(direction: int, count: int) -> None:
    tracker, stop, _ = drive(event(lambda t, y: t - 0.5, direction=direction), GRID)
    assert stop is None
    assert tracker.t_events[0].tolist() == [0.5] * count
    if count:
        np.testing.assert_array_equal(tracker.y_events[0], exact(0.5)[None, :])


def test_terminal_zero_at_step_end_returns_the_step_end() -> None:
    y_half = exact(0.5)
    y0 = exact(0.0)
    tracker = EventTracker(event(lambda t, y: t - 0.5, terminal=True), np, (2,), 0.0, y0, 1.0)
    assert tracker.step(0.0, 0.25, exact(0.25), exact) is None
    stop = tracker.step(0.25, 0.5, y_half, exact)
    assert stop is not None
    assert stop[0] == 0.5
    assert stop[1] is y_half


def test_touching_zero_at_a_step_end_counted_once() -> None:
    # g = -(t - 0.5)^2 touches 0 from below at the grid point 0.5.
    tracker, _, _ = drive(lambda t, y: -((t - 0.5) ** 2), GRID)
    assert tracker.t_events[0].tolist() == [0.5]


def test_flat_zero_stretch_is_no_event() -> None:
    tracker, _, _ = drive(lambda t, y: 0.0, GRID)
    assert tracker.t_events[0].shape == (0,)


def test_backward_integration() -> None:
    grid = GRID[::-1]
    tracker, _, _ = drive(cos_event, grid)
    np.testing.assert_allclose(tracker.t_events[0], COS_ROOTS[::-1], rtol=0, atol=1e-12)
    # Direction is taken in solver order: going down from t=10, cos is negative
    # before 5 pi / 2 and positive after it, positive before 3 pi / 2, ...
    tracker, _, _ = drive(event(cos_event, direction=-1), grid)
    np.testing.assert_allclose(tracker.t_events[0], [3 * PI / 2], rtol=0, atol=1e-12)
    tracker, stop, _ = drive(event(cos_event, terminal=True, direction=1), grid)
    assert stop is not None
    assert abs(stop[0] - 5 * PI / 2) < 1e-12
    np.testing.assert_allclose(stop[1], exact(stop[0]), rtol=0, atol=1e-15)


@pytest.mark.parametrize("sign", [1, -1])
def test_backward_direction_matches_scipy(sign: int) -> None:
    solve_ivp = pytest.importorskip("scipy.integrate").solve_ivp
    reference = solve_ivp(
        lambda t, y: np.ones(1), (10.0, 0.0), [0.0], events=event(lambda t, y: t - 4.3, direction=sign)
    )
    tracker, _, _ = drive(event(lambda t, y: t - 4.3, direction=sign), GRID[::-1])
    assert len(tracker.t_events[0]) == len(reference.t_events[0])
    np.testing.assert_allclose(tracker.t_events[0], reference.t_events[0], rtol=0, atol=1e-12)


def test_discontinuous_g_located_at_the_jump() -> None:
    tracker, _, _ = drive(lambda t, y: 1.0 if t > 1.234 else -1.0, GRID)
    np.testing.assert_allclose(tracker.t_events[0], [1.234], rtol=0, atol=1e-14)


def test_a_zero_at_the_step_end_after_a_crossing_inside_is_the_crossing() -> None:
    """g crosses zero inside a step, then jumps onto zero and ends the step
    there (torchdiffeq's examples stop at a time this way): the event is the
    crossing, not the step's end."""

    def g(t: float, y: np.ndarray) -> float:
        return 0.0 if t > 2.0 else 1.0 - t

    _, stop, _ = drive(event(g, terminal=True), [0.0, 0.1, 7.0])
    assert stop is not None
    assert abs(stop[0] - 1.0) < 1e-12


def test_a_g_that_jumps_onto_zero_stops_where_it_jumps() -> None:
    def g(t: float, y: np.ndarray) -> float:
        return 0.0 if t > 2.0 else 1.0

    _, stop, _ = drive(event(g, terminal=True), [0.0, 0.5, 7.0])
    assert stop is not None
    assert abs(stop[0] - 2.0) < 1e-12


def test_state_reshaped_for_g_and_outputs() -> None:
    def solution(t: float) -> np.ndarray:
        return exact(t).reshape(2, 1)

    shapes = []

    def g(t: float, y: np.ndarray) -> Any:
        shapes.append(y.shape)
        return y[0]  # shape (1,): a one-element array is accepted

    y0 = solution(0.0)
    tracker = EventTracker(g, np, (2, 1), 0.0, y0.reshape(-1), 1.0)
    for k in range(1, len(GRID)):
        tracker.step(GRID[k - 1], GRID[k], solution(GRID[k]).reshape(-1), lambda t: solution(t).reshape(-1))
    assert set(shapes) == {(2, 1)}
    assert tracker.y_events[0].shape == (3, 2, 1)
    np.testing.assert_allclose(tracker.t_events[0], COS_ROOTS, rtol=0, atol=1e-12)


def test_no_events_and_empty_outputs() -> None:
    tracker, stop, _ = drive([], GRID)
    assert stop is None
    assert tracker.t_events == []
    assert tracker.y_events == []


@pytest.mark.parametrize("dtype_name", ["float64", "float32"])
def test_torch_tensors(device: str, dtype_name: str, torch: ModuleType) -> None:
    from array_api_compat import array_namespace

    dtype = getattr(torch, dtype_name)

    def solution(t: float) -> Any:
        return torch.tensor([math.cos(t), -math.sin(t)], dtype=dtype, device=device)

    def g(t: float, y: Any) -> Any:
        assert isinstance(y, torch.Tensor)
        return y[0]  # 0-d tensor

    g.terminal = 2  # type: ignore[attr-defined]
    y0 = solution(0.0)
    tracker = EventTracker([g, lambda t, y: y[1] + 0.5], array_namespace(y0), (2,), 0.0, y0, 1.0)
    stop = None
    for k in range(1, len(GRID)):
        stop = tracker.step(GRID[k - 1], GRID[k], solution(GRID[k]), solution)
        if stop is not None:
            break
    assert stop is not None
    tolerance = 1e-12 if dtype_name == "float64" else 1e-6
    assert abs(stop[0] - 3 * PI / 2) < tolerance
    assert isinstance(stop[1], torch.Tensor)
    times, states = tracker.t_events, tracker.y_events
    assert all(isinstance(a, torch.Tensor) for a in (*times, *states))
    assert times[0].dtype == torch.float64
    assert times[0].device.type == device
    assert states[0].dtype == dtype
    assert states[0].shape == (2, 2)
    np.testing.assert_allclose(times[0].cpu().numpy(), [PI / 2, 3 * PI / 2], rtol=0, atol=tolerance)
    # -sin t = -0.5 at pi / 6 and 5 pi / 6
    np.testing.assert_allclose(times[1].cpu().numpy(), [PI / 6, 5 * PI / 6], rtol=0, atol=tolerance)


def g_zero(t: float, y: np.ndarray) -> float:
    return float(y[0])


@pytest.mark.parametrize(
    ("events", "error", "match"),
    [
        ([g_zero, 3], TypeError, r"events\[1\]: expected a callable, got int"),
        ("g", TypeError, r"events: expected a callable or a sequence of callables"),
        (
            [g_zero, event(g_zero, terminal=0.5)],
            ValueError,
            r"events\[1\]\.terminal: expected a bool or a positive int",
        ),
        ([event(g_zero, terminal=-1)], ValueError, r"events\[0\]\.terminal: expected a bool or a positive int"),
        ([event(g_zero, terminal=3.5)], ValueError, r"The `terminal` attribute of each event must be a boolean"),
        ([event(g_zero, terminal="yes")], TypeError, r"events\[0\]\.terminal"),
        ([g_zero, event(g_zero, direction="up")], TypeError, r"events\[1\]\.direction: expected a real number"),
        ([event(g_zero, direction=math.nan)], ValueError, r"events\[0\]\.direction: expected a finite number"),
        ([event(g_zero, direction=True)], TypeError, r"events\[0\]\.direction"),
        ([g_zero, lambda t, y: y], ValueError, r"events\[1\]: returned shape \(2,\), expected a scalar"),
        ([lambda t, y: np.zeros((0,))], ValueError, r"events\[0\]: returned shape \(0,\), expected a scalar"),
        ([lambda t, y: math.nan], ValueError, r"events\[0\]: returned nan at t=0.0, expected a finite value"),
        ([lambda t, y: np.float64(np.inf)], ValueError, r"events\[0\]: returned inf"),
        ([lambda t, y: None], TypeError, r"events\[0\]: returned NoneType"),
        ([lambda t, y: True], TypeError, r"events\[0\]: returned a bool"),
        ([lambda t, y: np.array(1j)], TypeError, r"events\[0\]: returned dtype complex128"),
    ],
)
def test_bad_events(events: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        EventTracker(events, np, (2,), 0.0, exact(0.0), 1.0)


@pytest.mark.parametrize(
    ("terminal", "stops_at"), [(False, None), (None, None), (0, None), (True, 1), (1, 1), (3, 3), (np.int64(2), 2)]
)
def test_terminal_attribute_accepted_values(terminal: object, stops_at: int | None) -> None:
    """Every accepted spelling of ``terminal``: no stop, or a stop at that occurrence of a zero of cos."""
    tracker = EventTracker(event(g_zero, terminal=terminal), np, (2,), 0.0, exact(0.0), 1.0)
    grid = np.linspace(0.0, 12.0, 25)  # zeros of cos at pi/2 + k pi: four in [0, 12]
    stop = None
    for t_old, t_new in itertools.pairwise(grid):
        stop = tracker.step(t_old, t_new, exact(t_new), exact)
        if stop is not None:
            break
    if stops_at is None:
        assert stop is None and len(tracker.t_events[0]) == 4
    else:
        assert stop is not None and len(tracker.t_events[0]) == stops_at
        assert stop[0] == pytest.approx(math.pi / 2 + (stops_at - 1) * math.pi, abs=1e-12)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="direction: expected"):
        EventTracker(g_zero, np, (2,), 0.0, exact(0.0), 0.5)
    with pytest.raises(ValueError, match="time_tolerance: expected a finite number >= 0"):
        EventTracker(g_zero, np, (2,), 0.0, exact(0.0), 1.0, time_tolerance=-1.0)


def test_non_finite_g_during_a_step() -> None:
    tracker = EventTracker(lambda t, y: math.inf if t > 2.0 else 1.0, np, (2,), 0.0, exact(0.0), 1.0)
    with pytest.raises(ValueError, match=r"events\[0\]: returned inf at t=3.0"):
        tracker.step(0.0, 3.0, exact(3.0), exact)
