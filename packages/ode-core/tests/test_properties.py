"""Property tests: solver invariants over generated problems and inputs."""

from __future__ import annotations

import math

import numpy as np
import ode_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from ode_core.validation import check_method
from scipy.linalg import expm

ADAPTIVE = [name for name in ode_core.METHODS if check_method(name).adaptive]
HIGH_ORDER = ["bosh3", "cash_karp", "dopri5", "tsit5", "dopri8", "dopri87"]
finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    matrix=arrays(np.float64, (3, 3), elements=finite),
    y0=arrays(np.float64, (3,), elements=finite),
    method=st.sampled_from(HIGH_ORDER),
)
def test_linear_systems_match_the_matrix_exponential(matrix: np.ndarray, y0: np.ndarray, method: str) -> None:
    t = np.linspace(0.0, 2.0, 5)
    rtol, atol = 1e-8, 1e-10
    sol = ode_core.solve(lambda time, y: matrix @ y, y0, t, method=method, rtol=rtol, atol=atol)
    assert sol.success, sol.message
    exact = np.stack([expm(matrix * time) @ y0 for time in t])
    # Global error stays within a modest multiple of the local tolerance for
    # these well-conditioned (|entries| <= 1, t <= 2) problems. It is measured
    # against each component's largest size so far: a component passing near
    # zero keeps the error it gathered while it was large (hypothesis found
    # bosh3 at 276 units of its size at t = 1.5, where it crosses zero).
    scale = atol + rtol * np.maximum.accumulate(np.abs(exact), axis=0)
    assert np.max(np.abs(sol.ys - exact) / scale) < 200


@pytest.mark.slow  # thirty forward and backward pendulum solves at rtol 1e-9
@settings(max_examples=30, deadline=None)
@given(
    y0=arrays(np.float64, (2,), elements=st.floats(-2.0, 2.0)),
    t_end=st.floats(0.1, 5.0),
    method=st.sampled_from(ADAPTIVE),
)
def test_integrating_back_returns_to_the_start(y0: np.ndarray, t_end: float, method: str) -> None:
    def pendulum(time: float, y: np.ndarray) -> np.ndarray:
        return np.stack((y[1], -np.sin(y[0])))

    forward = ode_core.solve(pendulum, y0, [0.0, t_end], method=method, rtol=1e-9, atol=1e-11, max_steps=200_000)
    backward = ode_core.solve(
        pendulum, forward.ys[-1], [t_end, 0.0], method=method, rtol=1e-9, atol=1e-11, max_steps=200_000
    )
    assert forward.success
    assert backward.success
    np.testing.assert_allclose(backward.ys[-1], y0, atol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    y0=arrays(np.float64, array_shapes(min_dims=0, max_dims=3, max_side=3), elements=finite),
    n_outputs=st.integers(2, 6),
)
def test_output_shape_follows_y0_and_t(y0: np.ndarray, n_outputs: int) -> None:
    t = np.linspace(0.0, 1.0, n_outputs)
    sol = ode_core.solve(lambda time, y: -y, y0, t)
    assert sol.ys.shape == (n_outputs, *y0.shape)
    np.testing.assert_allclose(sol.ys[-1], y0 * math.exp(-1.0), rtol=1e-5, atol=1e-8)


@settings(max_examples=50, deadline=None)
@given(times=st.lists(st.floats(-10.0, 10.0), min_size=3, max_size=6))
def test_non_monotonic_times_are_rejected(times: list[float]) -> None:
    differences = np.diff(times)
    monotonic = bool(np.all(differences > 0) or np.all(differences < 0))
    zero_span = bool(np.all(differences == 0))  # scipy's t_span=(a, a): the initial state at each time
    if monotonic or zero_span:
        assert ode_core.solve(lambda time, y: -y, np.ones(1), times).success
    else:
        with pytest.raises(ValueError, match=r"^t: "):
            ode_core.solve(lambda time, y: -y, np.ones(1), times)


@settings(max_examples=30, deadline=None)
@given(rtol=st.floats(allow_nan=True, allow_infinity=True).filter(lambda v: not (0 < v < math.inf)))
def test_invalid_rtol_is_rejected(rtol: float) -> None:
    with pytest.raises(ValueError, match=r"^rtol: "):
        ode_core.solve(lambda time, y: -y, np.ones(1), [0.0, 1.0], rtol=rtol)
