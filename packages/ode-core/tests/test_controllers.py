"""Step-size controllers in isolation."""

from __future__ import annotations

import math

import pytest
from ode_core import IController, PIController, PIDController


def test_i_controller_accepts_and_grows_like_scipy() -> None:
    controller = IController()
    state = controller.init(error_order=4)  # dopri5: exponent -1/5
    accepted, h_next, state = controller.adapt(0.1, 0.5, state)
    assert accepted
    assert h_next == pytest.approx(0.1 * 0.9 * 0.5 ** (-1 / 5))


def test_rejection_shrinks_and_forbids_growth_on_the_next_step() -> None:
    controller = IController()
    state = controller.init(error_order=4)
    accepted, h_retry, state = controller.adapt(0.1, 4.0, state)
    assert not accepted
    assert h_retry == pytest.approx(0.1 * 0.9 * 4.0 ** (-1 / 5))
    assert state.last_rejected
    accepted, h_next, state = controller.adapt(h_retry, 1e-6, state)
    assert accepted
    assert h_next == pytest.approx(h_retry)  # capped at 1 after a rejection
    accepted, h_after, state = controller.adapt(h_next, 1e-6, state)
    assert h_after == pytest.approx(10 * h_next)  # max_factor again


@pytest.mark.parametrize("ratio", [math.inf, math.nan])
def test_non_finite_error_rejects_with_the_smallest_factor(ratio: float) -> None:
    controller = IController(min_factor=0.25)
    accepted, h_retry, _ = controller.adapt(-0.2, ratio, controller.init(3))
    assert not accepted
    assert h_retry == pytest.approx(-0.05)  # sign of the direction kept


def test_huge_error_is_clipped_to_min_factor() -> None:
    controller = IController()
    _, h_retry, _ = controller.adapt(1.0, 1e30, controller.init(4))
    assert h_retry == pytest.approx(0.2)


def test_zero_error_grows_by_max_factor() -> None:
    controller = PIController(max_factor=5.0)
    accepted, h_next, state = controller.adapt(0.1, 0.0, controller.init(4))
    assert accepted
    assert h_next == pytest.approx(0.5)
    assert state.previous_ratio == 1.0


def test_pi_controller_uses_the_previous_error() -> None:
    controller = PIController()
    state = controller.init(error_order=4)
    _, _, state = controller.adapt(0.1, 0.5, state)
    accepted, h_next, state = controller.adapt(0.1, 0.8, state)
    k = 5
    expected = 0.1 * 0.9 * 0.8 ** (-0.7 / k) * 0.5 ** (0.4 / k)
    assert accepted
    assert h_next == pytest.approx(expected)


def test_pid_controller_uses_two_previous_errors() -> None:
    controller = PIDController(0.5, 0.25, 0.125)
    state = controller.init(error_order=2)
    for ratio in (0.9, 0.6):
        _, _, state = controller.adapt(1.0, ratio, state)
    _, h_next, _ = controller.adapt(1.0, 0.3, state)
    k = 3
    assert h_next == pytest.approx(0.9 * 0.3 ** (-0.5 / k) * 0.6 ** (-0.25 / k) * 0.9 ** (-0.125 / k))


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"safety": 0.0}, "safety:"),
        ({"safety": 1.5}, "safety:"),
        ({"min_factor": 2.0}, "min_factor:"),
        ({"max_factor": 0.5}, "max_factor:"),
        ({"beta1": 0.0}, "beta1:"),
        ({"beta2": math.nan}, "beta2: expected a finite number"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict[str, float], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        PIDController(**kwargs)


# --- the predictive controller ------------------------------------------------


def test_predictive_controller_first_step_is_the_integral_rule() -> None:
    from ode_core import PredictiveController

    controller = PredictiveController()
    accepted, h_next, state = controller.adapt(0.1, 0.5, controller.init(3))
    assert accepted
    assert h_next == pytest.approx(0.1 * 0.9 * 0.5**-0.25)
    assert (state.previous_step, state.previous_ratio, state.last_rejected) == (0.1, 0.5, False)


def test_predictive_controller_limits_growth_when_the_error_grows() -> None:
    """r_n > r_{n-1} at equal steps: the factor shrinks by (r_{n-1} / r_n)^(1/k);
    when the error falls, the prediction never adds growth (the min with 1)."""
    from ode_core import PredictiveController

    controller = PredictiveController()
    _, _, state = controller.adapt(0.1, 0.01, controller.init(3))
    _, h_next, _ = controller.adapt(0.1, 0.5, state)
    assert h_next == pytest.approx(0.1 * 0.9 * 0.5**-0.25 * (0.01 / 0.5) ** 0.25)
    _, _, state = controller.adapt(0.1, 0.5, controller.init(3))
    _, h_next, _ = controller.adapt(0.1, 0.01, state)
    assert h_next == pytest.approx(0.1 * min(10.0, 0.9 * 0.01**-0.25))


def test_predictive_controller_rejects_and_then_does_not_grow() -> None:
    from ode_core import PredictiveController

    controller = PredictiveController()
    state = controller.init(3)
    accepted, h_retry, state = controller.adapt(-0.2, 16.0, state)
    assert not accepted
    assert h_retry == pytest.approx(-0.2 * 0.9 * 16.0**-0.25)
    assert state.last_rejected
    accepted, h_next, state = controller.adapt(h_retry, 1e-6, state)
    assert accepted
    assert h_next == h_retry  # no growth right after a rejection
    for ratio in (math.inf, math.nan):
        accepted, h_retry, _ = controller.adapt(0.2, ratio, state)
        assert not accepted
        assert h_retry == pytest.approx(0.2 * 0.2)


def test_predictive_controller_bad_settings_name_the_argument() -> None:
    from ode_core import PredictiveController

    with pytest.raises(ValueError, match="safety"):
        PredictiveController(safety=1.5)
    with pytest.raises(ValueError, match="max_factor"):
        PredictiveController(max_factor=0.5)


def test_radau5_defaults_to_the_predictive_controller_with_radau5s_newton_safety() -> None:
    """RADAU5's (and scipy Radau's) rule: the predictive controller, its safety factor falling with the
    Newton iterations the step took; radau5 then takes scipy Radau's steps to a percent."""
    import numpy as np
    import ode_core
    from scipy.integrate import solve_ivp

    def stiff(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], 1000.0 * (1 - y[0] ** 2) * y[1] - y[0]])

    kwargs = {"method": "radau5", "rtol": 1e-5, "atol": 1e-5}
    default = ode_core.solve(stiff, np.array([2.0, 0.0]), [0.0, 1500.0], **kwargs)
    predictive = ode_core.solve(
        stiff, np.array([2.0, 0.0]), [0.0, 1500.0], controller=ode_core.PredictiveController(), **kwargs
    )
    integral = ode_core.solve(stiff, np.array([2.0, 0.0]), [0.0, 1500.0], controller=ode_core.IController(), **kwargs)
    scipys = solve_ivp(stiff, (0.0, 1500.0), [2.0, 0.0], method="Radau", rtol=1e-5, atol=1e-5)
    assert default.stats != predictive.stats  # the safety moved some steps
    assert default.stats.n_rejected < integral.stats.n_rejected
    assert abs(default.stats.n_accepted - (len(scipys.t) - 1)) <= 0.01 * len(scipys.t)
