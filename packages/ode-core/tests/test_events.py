"""Events through ``solve``: terminal and recorded zero crossings, NumPy and torch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import ode_core
import pytest
from ode_core import Status

GRAVITY = 9.81
HEIGHT = 10.0
IMPACT_TIME = math.sqrt(2.0 * HEIGHT / GRAVITY)


def falling_body(t: float, y: Any) -> Any:
    if isinstance(y, np.ndarray):
        return np.array([y[1], -GRAVITY])
    import torch

    return torch.stack((y[1], torch.full_like(y[1], -GRAVITY)))


def oscillator(t: float, y: Any) -> Any:
    if isinstance(y, np.ndarray):
        return np.stack((y[1], -y[0]))
    import torch

    return torch.stack((y[1], -y[0]))


def height(t: float, y: Any) -> Any:
    return y[0]


height.terminal = True  # type: ignore[attr-defined]
height.direction = -1  # type: ignore[attr-defined]


def position(t: float, y: Any) -> Any:
    return y[0]


def _arrays(library: str, values: list[float]) -> Any:
    if library == "numpy":
        return np.array(values)
    torch = pytest.importorskip("torch")
    return torch.tensor(values, dtype=torch.float64)


def _numpy(value: Any) -> np.ndarray:
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


LIBRARIES = ["numpy", "torch"]


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dopri8", "dopri87", "bosh3", "kvaerno5", "radau5"])
def test_falling_body_stops_at_ground_impact(library: str, method: str) -> None:
    t = np.linspace(0.0, 3.0, 7)
    sol = ode_core.solve(
        falling_body, _arrays(library, [HEIGHT, 0.0]), t, method=method, rtol=1e-10, atol=1e-12, events=height
    )
    assert sol.status is Status.EVENT
    assert sol.success
    assert abs(sol.t_final - IMPACT_TIME) < 1e-7
    assert len(sol.t_events) == 1
    assert _numpy(sol.t_events[0]).shape == (1,)
    assert abs(float(sol.t_events[0][0]) - IMPACT_TIME) < 1e-7
    np.testing.assert_allclose(_numpy(sol.y_events[0])[0], [0.0, -GRAVITY * IMPACT_TIME], atol=1e-7)
    np.testing.assert_allclose(_numpy(sol.y_final), _numpy(sol.y_events[0])[0])
    # Outputs after the impact are not reported; those before are.
    assert _numpy(sol.ts).tolist() == [time for time in t if time <= IMPACT_TIME]
    assert sol.dense is not None
    assert sol.dense.t_max == pytest.approx(IMPACT_TIME, abs=1e-12)


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dopri8", "dopri87", "kvaerno5", "radau5"])
def test_oscillator_zero_crossings_are_recorded(library: str, method: str) -> None:
    sol = ode_core.solve(
        oscillator, _arrays(library, [1.0, 0.0]), [0.0, 20.0], method=method, rtol=1e-10, atol=1e-12, events=[position]
    )
    assert sol.status is Status.SUCCESS
    crossings = _numpy(sol.t_events[0])
    expected = (np.arange(6) + 0.5) * math.pi  # zeros of cos t in [0, 20]
    np.testing.assert_allclose(crossings, expected, atol=1e-7)
    np.testing.assert_allclose(_numpy(sol.y_events[0])[:, 0], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.abs(_numpy(sol.y_events[0])[:, 1]), 1.0, atol=1e-7)


def test_direction_and_terminal_count() -> None:
    def rising(t: float, y: np.ndarray) -> float:
        return float(y[0])

    rising.direction = 1  # type: ignore[attr-defined]
    rising.terminal = 2  # type: ignore[attr-defined]
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, 20.0], rtol=1e-10, atol=1e-12, events=[rising])
    # cos t rises through zero at 3 pi / 2 and 7 pi / 2: stop at the second.
    assert sol.status is Status.EVENT
    np.testing.assert_allclose(sol.t_events[0], [1.5 * math.pi, 3.5 * math.pi], atol=1e-7)
    assert sol.t_final == pytest.approx(3.5 * math.pi, abs=1e-7)


def test_several_event_functions_are_kept_apart() -> None:
    def velocity(t: float, y: np.ndarray) -> float:
        return float(y[1])

    sol = ode_core.solve(
        oscillator, np.array([1.0, 0.0]), [0.0, 7.0], rtol=1e-10, atol=1e-12, events=[position, velocity]
    )
    np.testing.assert_allclose(sol.t_events[0], [0.5 * math.pi, 1.5 * math.pi], atol=1e-7)
    # sin t vanishes at pi and 2 pi; the zero at t0 is no event.
    np.testing.assert_allclose(sol.t_events[1], [math.pi, 2 * math.pi], atol=1e-7)


def test_events_cost_no_evaluations_of_f() -> None:
    without = ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, 20.0], rtol=1e-8)
    with_events = ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, 20.0], rtol=1e-8, events=[position])
    assert with_events.stats.nfev == without.stats.nfev
    assert without.t_events is None


def test_backwards_integration_finds_events() -> None:
    sol = ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, -5.0], rtol=1e-10, atol=1e-12, events=position)
    np.testing.assert_allclose(sol.t_events[0], [-0.5 * math.pi, -1.5 * math.pi], atol=1e-7)


@pytest.mark.parametrize(
    ("events", "error", "message"),
    [
        (3, TypeError, "events: expected a callable or a sequence"),
        ([position, "g"], TypeError, r"events\[1\]: expected a callable"),
        ([lambda t, y: y], ValueError, r"events\[0\]: returned shape \(2,\), expected a scalar"),
        ([lambda t, y: math.nan], ValueError, r"events\[0\]"),
    ],
)
def test_bad_event_functions_are_named(events: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ode_core.solve(oscillator, np.array([1.0, 0.0]), [0.0, 1.0], events=events)
