"""The one loop, ``integrate``, and what ``solve`` hands it: settings, steppers, hooks, half precision."""

from __future__ import annotations

import dataclasses
import itertools
import math
import sys
import warnings

import numpy as np
import ode_core
import pytest
from array_api_compat import array_namespace
from ode_core import Settings, Status
from ode_core.validation import check_settings, is_finite

torch = pytest.importorskip("torch")


def _decay(t: float, y: np.ndarray) -> np.ndarray:
    return -y


def _settings(method: str = "dopri5", **keywords: object) -> Settings:
    y0 = np.ones(2)
    return check_settings(method, 1e-8, 1e-10, xp=array_namespace(y0), y0=y0, **keywords)  # type: ignore[arg-type]


def test_solve_is_integrate_over_checked_settings() -> None:
    y0 = np.array([1.0, 2.0])
    times = [0.0, 0.5, 1.0]
    direct = ode_core.integrate(_decay, y0, times, _settings())
    through_solve = ode_core.solve(_decay, y0, times, rtol=1e-8, atol=1e-10, dense_output=False)
    np.testing.assert_array_equal(direct.ys, through_solve.ys)
    assert direct.stats == through_solve.stats
    assert direct.message == through_solve.message


def test_one_settings_serve_many_solves_and_first_step_continues_one() -> None:
    settings = _settings()
    first = ode_core.integrate(_decay, np.ones(2), [0.0, 1.0], settings)
    assert first.step_proposal > 0
    continued = ode_core.integrate(_decay, first.y_final, [1.0, 2.0], settings, first_step=first.step_proposal)
    fresh = ode_core.integrate(_decay, first.y_final, [1.0, 2.0], settings)
    assert continued.stats.nfev < fresh.stats.nfev  # no initial-step heuristic, and no tiny first steps
    np.testing.assert_allclose(continued.y_final, np.exp(-2.0) * np.ones(2), rtol=1e-7)


def test_on_step_records_steps_that_replay_exactly() -> None:
    """The hook sees each accepted step's start; the solve's own stepper redoes it to the bit."""
    records: list[ode_core.AcceptedStep] = []
    y0 = np.array([1.0, 0.5])

    def field(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], -np.sin(y[0])])

    solution = ode_core.solve(field, y0, [0.0, 3.0], on_step=records.append, jump_t=[1.0])
    assert len(records) == solution.stats.n_accepted
    assert records[0].t == 0.0 and records[-1].t_next == 3.0
    for before, after in itertools.pairwise(records):
        assert before.t_next == after.t
    jump = next(record for record in records if record.t_next == 1.0)
    assert jump.t_end_eval is not None and jump.t_end_eval < 1.0
    after_jump = next(record for record in records if record.t == 1.0)
    assert after_jump.t_start_eval is not None and after_jump.t_start_eval > 1.0
    settings = _settings(jump_t=[1.0])
    xp = array_namespace(y0)
    for before, after in itertools.pairwise(records):
        stepper = ode_core.make_stepper(settings.method, xp, before.y, field, settings)
        f0 = field(before.t if before.t_start_eval is None else before.t_start_eval, before.y)
        y1, _, _ = stepper.step(field, before.t, before.y, f0, before.h, before.t_end_eval)
        np.testing.assert_array_equal(y1, after.y)


def test_steppers_follow_the_protocol() -> None:
    y0 = np.ones(3)
    xp = array_namespace(y0)
    for method in ("dopri5", "dopri8", "kvaerno5", "radau5"):
        settings = dataclasses.replace(_settings(method), method=ode_core.TABLEAUX[method])
        stepper = ode_core.make_stepper(settings.method, xp, y0, _decay, settings)
        assert isinstance(stepper, ode_core.Stepper), method


def test_progress_meter(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    quiet = ode_core.solve(_decay, np.ones(2), [0.0, 2.0])
    shown = ode_core.solve(_decay, np.ones(2), [0.0, 2.0], progress=True)
    assert "t=2: 100%" in capsys.readouterr().err
    np.testing.assert_array_equal(quiet.ys, shown.ys)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # as if tqdm were not installed
    with pytest.warns(UserWarning, match=r"progress: needs tqdm"):
        without = ode_core.solve(_decay, np.ones(2), [0.0, 2.0], progress=True)
    np.testing.assert_array_equal(quiet.ys, without.ys)


def test_progress_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match=r"^progress: expected True or False, got 'yes'"):
        ode_core.solve(_decay, np.ones(2), [0.0, 1.0], progress="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_half_precision_states_are_integrated_in_float32(library: str) -> None:
    """A float16 state used to make 100,000 rejected steps (its increments
    vanished in its own resolution); the solver now computes in float32."""
    if library == "numpy":
        y0, dtype = np.ones(2, dtype=np.float16), np.float16
    else:
        y0, dtype = torch.ones(2, dtype=torch.bfloat16), torch.bfloat16
    seen = []

    def grow(t: float, y: object) -> object:
        seen.append(y.dtype)  # type: ignore[attr-defined]
        return y

    with pytest.warns(UserWarning, match=r"rtol=1e-06 is below what"):
        solution = ode_core.solve(grow, y0, [0.0, 1.0])
    assert solution.success
    assert solution.ys.dtype == dtype and solution.y_final.dtype == dtype
    assert {np.dtype(d) if library == "numpy" else d for d in seen} == {
        np.dtype(dtype) if library == "numpy" else dtype
    }
    final = solution.y_final.astype(np.float64) if library == "numpy" else solution.y_final.double().numpy()
    np.testing.assert_allclose(final, math.e, rtol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ode_core.solve(grow, y0, [0.0, 1.0], rtol=1e-2)


def test_half_precision_with_an_implicit_method_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^method: 'kvaerno5' is implicit"):
        ode_core.solve(_decay, np.ones(2, dtype=np.float16), [0.0, 1.0], method="kvaerno5", rtol=1e-2)


def test_initial_step_survives_an_infinite_slope() -> None:
    """It used to divide by zero; the loop now reports a status instead."""
    h = ode_core.select_initial_step(
        _decay, 0.0, np.ones(2), np.array([np.inf, 1.0]), 1.0, 4, 1e-6, 1e-9, ode_core.rms_norm, np.inf, 1.0
    )
    assert h == 1e-6
    solution = ode_core.solve(lambda t, y: y * np.inf, np.ones(2), [0.0, 1.0])
    assert solution.status is Status.NON_FINITE
    assert solution.message == "f(t0, y0) is not finite at t=0.0"


def test_fixed_steps_on_tensors_check_finiteness_at_the_end() -> None:
    """Off NumPy a fixed step never reads the state; a blow-up ends the
    solution at the last output where it was finite."""
    y0 = torch.ones(1, dtype=torch.float64)
    solution = ode_core.solve(lambda t, y: y * y, y0, [0.0, 0.5, 0.9, 2.0, 5.0], method="rk4", step_size=0.05)
    assert solution.status is Status.NON_FINITE
    assert solution.message == (
        "the state became inf or nan in the fixed steps after t=0.9, the last output time where it was finite"
    )
    assert solution.ts.tolist() == [0.0, 0.5, 0.9]
    assert solution.t_final == 0.9
    torch.testing.assert_close(solution.y_final, solution.ys[-1])
    torch.testing.assert_close(solution.ys[-1], torch.tensor([10.0], dtype=torch.float64), rtol=1e-2, atol=0)
    with np.errstate(over="ignore", invalid="ignore"):
        on_numpy = ode_core.solve(
            lambda t, y: y * y, np.ones(1), [0.0, 0.5, 0.9, 2.0, 5.0], method="rk4", step_size=0.05
        )
    assert on_numpy.status is Status.NON_FINITE and 0.9 < on_numpy.t_final < 1.2  # the last finite step


def test_is_finite_is_not_fooled_by_an_overflowing_sum() -> None:
    big = torch.tensor([3e38, 3e38], dtype=torch.float32)
    assert is_finite(array_namespace(big), big)
    assert not is_finite(array_namespace(big), torch.tensor([1.0, math.nan]))
    assert not is_finite(array_namespace(big), torch.tensor([math.inf, -math.inf]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NumPy is checked element by element: no overflow warning
        assert is_finite(np, np.array([1e308, 1e308]))
    assert not is_finite(np, np.array([np.nan]))


def test_register_stepper_chooses_the_stepper_of_a_library(monkeypatch: pytest.MonkeyPatch) -> None:
    from ode_core import _stepper

    monkeypatch.setattr(_stepper, "_PROVIDERS", dict(_stepper._PROVIDERS))
    monkeypatch.setattr(_stepper, "_BY_NAMESPACE", {})
    asked = []

    def decline(tableau: object, y0: object, fun: object) -> None:
        asked.append(tableau)

    y0 = torch.tensor([1.0, 2.0], dtype=torch.float64)
    ode_core.register_stepper("torch", decline)
    declined = ode_core.solve(lambda t, y: -y, y0, [0.0, 1.0])
    assert asked  # consulted, declined: ode-core's own stepper ran
    ode_core.register_stepper("torch", None)
    plain = ode_core.solve(lambda t, y: -y, y0, [0.0, 1.0])
    torch.testing.assert_close(declined.ys, plain.ys, rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"^provider: expected a callable or None"):
        ode_core.register_stepper("torch", "fast")  # type: ignore[arg-type]


def test_impulses_jump_the_state_and_restart_the_control() -> None:
    """y' = -y from 1, and y jumps by +1 at t = 1: y(2) = (e^-1 + 1) e^-1.
    The output at the impulse holds the state before it."""
    kicks = {1.0: lambda y: y + 1.0}
    solution = ode_core.integrate(_decay, np.ones(1), [0.0, 1.0, 2.0], _settings(), impulses=kicks)
    assert solution.success
    np.testing.assert_allclose(solution.ys[:, 0], [1.0, np.exp(-1.0), (np.exp(-1.0) + 1.0) * np.exp(-1.0)], rtol=1e-7)
    steps: list[ode_core.AcceptedStep] = []
    ode_core.integrate(_decay, np.ones(1), [0.0, 2.0], _settings(), impulses=kicks, on_step=steps.append)
    assert any(step.t_next == 1.0 for step in steps)  # it landed on the impulse
    after = next(step for step in steps if step.t == 1.0)
    np.testing.assert_allclose(after.y, np.exp(-1.0) + 1.0, rtol=1e-7)
    # The control restarted from the size the step had before it was cut to
    # land, not from the cut step's: the step after the jump is no smaller.
    landing = next(step for step in steps if step.t_next == 1.0)
    assert abs(after.h) >= abs(landing.h)


def test_events_look_afresh_after_an_impulse() -> None:
    """A jump across zero is no crossing; a later one is."""

    def below_half(t: float, y: np.ndarray) -> float:
        return float(y[0] - 0.5)

    kicks = {0.2: lambda y: y + 1.0}  # from about 0.82 to 1.82: g stays positive
    solution = ode_core.solve(_decay, np.ones(1), [0.0, 3.0], events=below_half, dense_output=False)
    with_kick = ode_core.integrate(
        _decay, np.ones(1), [0.0, 3.0], _settings(), impulses=kicks, events=below_half, shape=(1,)
    )
    (plain,) = solution.t_events
    (kicked,) = with_kick.t_events
    np.testing.assert_allclose(plain, [np.log(2.0)], rtol=1e-5)  # solve's default rtol 1e-6
    np.testing.assert_allclose(kicked, [0.2 + np.log((np.exp(-0.2) + 1.0) / 0.5)], rtol=1e-7)
