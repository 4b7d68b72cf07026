"""auto: dopri5 while the problem is not stiff, bdf while it is, by the documented detection rules."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import ode_core
import pytest
from _stiff_problems import robertson, van_der_pol
from ode_core._auto import AutoStepper
from ode_core._loop import make_stepper


def oscillator(t: float, y: np.ndarray) -> np.ndarray:
    return np.array([y[1], -y[0]])


def switches(f, y0, t, **options):  # type: ignore[no-untyped-def]
    """The solution and the switches its stepper made, ``[(time, method), ...]``."""
    seen: list[AutoStepper] = []
    original = make_stepper

    def recording(*arguments, **keywords):  # type: ignore[no-untyped-def]
        stepper = original(*arguments, **keywords)
        if isinstance(stepper, AutoStepper):
            seen.append(stepper)
        return stepper

    import ode_core._loop as loop

    loop.make_stepper, saved = recording, loop.make_stepper
    try:
        solution = ode_core.solve(f, y0, t, method="auto", **options)
    finally:
        loop.make_stepper = saved
    return solution, seen[0].switches


def test_a_non_stiff_problem_is_dopri5_step_for_step() -> None:
    auto, found = switches(oscillator, np.array([1.0, 0.0]), np.linspace(0.0, 20.0, 9), rtol=1e-8, atol=1e-10)
    dopri5 = ode_core.solve(oscillator, np.array([1.0, 0.0]), np.linspace(0.0, 20.0, 9), rtol=1e-8, atol=1e-10)
    assert found == []
    assert auto.stats == dopri5.stats
    np.testing.assert_array_equal(auto.ys, dopri5.ys)


def test_robertson_switches_to_bdf_early_and_solves_as_it() -> None:
    y0 = np.array([1.0, 0.0, 0.0])
    auto, found = switches(robertson, y0, [0.0, 1e5], rtol=1e-6, atol=1e-10)
    bdf = ode_core.solve(robertson, y0, [0.0, 1e5], method="bdf", rtol=1e-6, atol=1e-10)
    assert auto.success and found[0][1] == "bdf" and found[0][0] < 1.0
    assert auto.stats.n_steps < 1.5 * bdf.stats.n_steps
    np.testing.assert_allclose(auto.ys[-1], bdf.ys[-1], rtol=1e-4, atol=1e-10)


def test_a_problem_that_stiffens_switches_where_dopri5_turns_stability_bound() -> None:
    """y' = -lam(t) (y - cos t), lam = 10^(t): dopri5's stable steps stay below 3.3 / lam, which
    falls below its accuracy-bound step somewhere in [0, 6]; auto must switch there, not at once."""

    def stiffening(t: float, y: np.ndarray) -> np.ndarray:
        return -(10.0**t) * (y - math.cos(t))

    auto, found = switches(stiffening, np.array([0.0]), [0.0, 6.0], rtol=1e-6, atol=1e-9)
    assert auto.success and [method for _, method in found] == ["bdf"]
    assert 0.5 < found[0][0] < 4.0
    reference = ode_core.solve(stiffening, np.array([0.0]), [0.0, 6.0], method="radau5", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(auto.ys[-1], reference.ys[-1], rtol=1e-5)
    assert auto.stats.n_steps < 1000
    dopri5 = ode_core.solve(stiffening, np.array([0.0]), [0.0, 6.0], rtol=1e-6, atol=1e-9, max_steps=3000)
    assert dopri5.status is ode_core.Status.MAX_STEPS_REACHED


@pytest.mark.slow
def test_van_der_pol_switches_both_ways() -> None:
    """mu = 1000: stiff along the slow branches, not in the fast jumps between them."""
    y0 = np.array([2.0, 0.0])
    auto, found = switches(van_der_pol, y0, [0.0, 3000.0], rtol=1e-6, atol=1e-9)
    assert auto.success
    methods = [method for _, method in found]
    assert "bdf" in methods and "dopri5" in methods
    reference = ode_core.solve(van_der_pol, y0, [0.0, 3000.0], method="radau5", rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(auto.ys[-1], reference.ys[-1], rtol=1e-3, atol=1e-5)


def test_dense_output_events_and_refusals_across_a_switch() -> None:
    y0 = np.array([1.0, 0.0, 0.0])

    def third_component(t: float, y: np.ndarray) -> float:
        return float(y[2] - 0.5)

    auto, found = switches(robertson, y0, [0.0, 1e3], rtol=1e-6, atol=1e-10, events=third_component)
    assert found and auto.t_events[0].shape == (1,)
    bdf = ode_core.solve(robertson, y0, [0.0, 1e3], method="bdf", rtol=1e-6, atol=1e-10, events=third_component)
    np.testing.assert_allclose(auto.t_events[0], bdf.t_events[0], rtol=1e-3)
    times = np.geomspace(1e-3, 1e3, 7)
    np.testing.assert_allclose(auto.dense(times), bdf.dense(times), rtol=1e-3, atol=1e-9)
    with pytest.raises(ValueError, match="step_size: 'auto' chooses its own steps"):
        ode_core.solve(robertson, y0, [0.0, 1.0], method="auto", step_size=0.1)


def test_torch_states(torch: ModuleType) -> None:
    def robertson_torch(t: float, y):  # type: ignore[no-untyped-def]
        return torch.stack(
            [
                -0.04 * y[0] + 1e4 * y[1] * y[2],
                0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                3e7 * y[1] ** 2,
            ]
        )

    y0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    on_torch = ode_core.solve(robertson_torch, y0, [0.0, 100.0], method="auto", rtol=1e-6, atol=1e-10)
    on_numpy = ode_core.solve(robertson, y0.numpy(), [0.0, 100.0], method="auto", rtol=1e-6, atol=1e-10)
    assert on_torch.success and on_torch.stats.n_steps == on_numpy.stats.n_steps
    np.testing.assert_allclose(on_torch.ys.numpy(), on_numpy.ys, rtol=1e-8, atol=1e-14)
