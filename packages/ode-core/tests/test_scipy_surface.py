"""scipy's solve_ivp conventions that ode_core.solve keeps: conversions of inputs and outputs, ``args``,
``vectorized``, complex and empty states, spans of zero length, constant Jacobians, and scipy's warnings."""

from __future__ import annotations

import math
import warnings

import numpy as np
import ode_core
import pytest
from ode_core import Status


def decay(t: float, y: np.ndarray) -> np.ndarray:
    return -y


def test_an_integer_state_becomes_float64() -> None:
    solution = ode_core.solve(decay, np.array([1, 2]), [0.0, 1.0])
    assert solution.ys.dtype == np.float64
    np.testing.assert_allclose(solution.ys[-1], [math.exp(-1.0), 2 * math.exp(-1.0)], rtol=1e-5)
    from_list = ode_core.solve(decay, [1, 2], [0.0, 1.0])
    np.testing.assert_array_equal(from_list.ys, solution.ys)


@pytest.mark.parametrize("kind", [list, tuple])
def test_f_may_return_a_sequence(kind: type) -> None:
    def cannon(t: float, y: np.ndarray) -> object:
        return kind([y[1], -9.81])

    solution = ode_core.solve(cannon, [0.0, 1.0], [0.0, 0.1])
    np.testing.assert_allclose(solution.ys[-1], [0.1 - 0.5 * 9.81 * 0.01, 1.0 - 0.981], rtol=1e-10)


def test_args_reach_f_jac_and_the_events() -> None:
    seen = {"f": 0, "jac": 0, "event": 0}

    def f(t: float, y: np.ndarray, rate: float, offset: float) -> np.ndarray:
        seen["f"] += 1
        return -rate * (y - offset)

    def jac(t: float, y: np.ndarray, rate: float, offset: float) -> np.ndarray:
        seen["jac"] += 1
        return -rate * np.eye(1)

    def crossing(t: float, y: np.ndarray, rate: float, offset: float) -> float:
        seen["event"] += 1
        return float(y[0] - offset - 0.5)

    crossing.terminal = True  # type: ignore[attr-defined]
    solution = ode_core.solve(f, [2.0], [0.0, 10.0], method="radau5", jac=jac, events=crossing, args=(2.0, 1.0))
    assert all(count > 0 for count in seen.values())
    assert solution.status is Status.EVENT
    # y = 1 + exp(-2 t) crosses 1.5 at t = ln(2) / 2
    np.testing.assert_allclose(solution.t_events[0], [math.log(2.0) / 2], rtol=1e-6)


def test_args_that_cannot_be_unpacked_name_args() -> None:
    with pytest.raises(TypeError, match=r"^args: expected a tuple, got int; Supplied 'args' cannot be unpacked"):
        ode_core.solve(lambda t, y, a: a * y, [1.0], [0.0, 0.1], args=-1)
    solution = ode_core.solve(lambda t, y, a: a * y, [1.0], [0.0, 0.1], args=(-1,))
    np.testing.assert_allclose(solution.ys[-1], [math.exp(-0.1)], rtol=1e-6)


def test_a_vectorized_f_gets_columns() -> None:
    shapes = set()

    def f(t: float, y: np.ndarray) -> np.ndarray:
        shapes.add(y.shape)
        return np.vstack((y[1], -y[0]))

    solution = ode_core.solve(f, [1.0, 0.0], [0.0, 1.0], vectorized=True, rtol=1e-8, atol=1e-10)
    assert shapes == {(2, 1)}
    np.testing.assert_allclose(solution.ys[-1], [math.cos(1.0), -math.sin(1.0)], rtol=1e-6)
    with pytest.raises(TypeError, match="vectorized: expected True or False"):
        ode_core.solve(f, [1.0, 0.0], [0.0, 1.0], vectorized="yes")


@pytest.mark.parametrize("method", ["bosh3", "dopri5", "dopri8", "tsit5", "radau5", "kvaerno5"])
def test_complex_states(method: str) -> None:
    y0 = np.array([0.5 + 1.0j, 1.0j])
    rate = np.array([1.0, 1.0 - 2.0j])
    solution = ode_core.solve(lambda t, y: -rate * y, y0, [0.0, 0.5, 2.0], method=method, rtol=1e-8, atol=1e-10)
    assert solution.success and solution.ys.dtype == np.complex128
    exact = y0 * np.exp(-rate * np.array([[0.0], [0.5], [2.0]]))
    np.testing.assert_allclose(solution.ys, exact, rtol=1e-5, atol=1e-8)
    dense = ode_core.solve(lambda t, y: -rate * y, y0, [0.0, 2.0], method=method, rtol=1e-8, atol=1e-10).dense
    np.testing.assert_allclose(dense(1.0), y0 * np.exp(-rate), rtol=1e-5, atol=1e-8)


def test_complex_torch_state() -> None:
    torch = pytest.importorskip("torch")
    y0 = torch.tensor([0.5 + 1.0j], dtype=torch.complex128)
    solution = ode_core.solve(lambda t, y: -1j * y, y0, [0.0, 1.0], rtol=1e-8, atol=1e-10)
    assert solution.success
    torch.testing.assert_close(solution.ys[-1], y0 * np.exp(-1j), rtol=1e-6, atol=0)


def test_an_empty_state_is_solved_at_once() -> None:
    calls = []

    def f(t: float, y: np.ndarray) -> np.ndarray:
        calls.append(t)
        return np.zeros(0)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for t in ([0.0, 10.0], [0.0, math.inf]):
            solution = ode_core.solve(f, np.zeros(0), t)
            assert solution.success and solution.ys.shape[1:] == (0,)
            assert solution.dense(5.0).shape == (0,) and solution.dense([1.0, 2.0, 3.0]).shape == (3, 0)
    assert calls == []


@pytest.mark.parametrize("method", ["dopri5", "radau5"])
def test_a_span_of_zero_length_returns_the_initial_state(method: str) -> None:
    solution = ode_core.solve(lambda t, y: 2 * y, [2.0, 3.0], [4.0, 4.0], method=method)
    assert solution.success and solution.stats.n_steps == 0
    np.testing.assert_array_equal(solution.ts, [4.0, 4.0])
    np.testing.assert_array_equal(solution.ys, [[2.0, 3.0], [2.0, 3.0]])
    # scipy's ConstantDenseOutput: the initial state at every time
    np.testing.assert_array_equal(solution.dense(4.0), [2.0, 3.0])
    np.testing.assert_array_equal(solution.dense([4.0, 5.0, 6.0]), [[2.0, 3.0]] * 3)


def test_a_constant_jacobian() -> None:
    matrix = np.array([[-1.0, -5.0], [1.0, 1.0]])
    given = ode_core.solve(lambda t, y: matrix @ y, [0.0, 2.0], [0.0, 10.0], method="radau5", jac=matrix)
    from_callable = ode_core.solve(
        lambda t, y: matrix @ y, [0.0, 2.0], [0.0, 10.0], method="radau5", jac=lambda t, y: matrix
    )
    np.testing.assert_array_equal(given.ys, from_callable.ys)
    assert given.stats.nfev == from_callable.stats.nfev


def test_an_rtol_below_100_epsilons_is_raised_with_a_warning() -> None:
    with pytest.warns(UserWarning, match=r"rtol: 1e-20 is below 100 float64 epsilons.*At least one element of `rtol`"):
        low = ode_core.solve(decay, [1.0], [0.0, 1.0], rtol=1e-20, atol=1e-20)
    floor = ode_core.solve(decay, [1.0], [0.0, 1.0], rtol=100 * np.finfo(np.float64).eps, atol=1e-20)
    assert low.stats.nfev == floor.stats.nfev
    with pytest.warns(UserWarning, match="rtol"):
        ode_core.solve(decay, [1.0, 1.0], [0.0, 1.0], rtol=np.array([1e-6, 1e-18]))


def test_a_terminal_event_ends_with_scipys_message() -> None:
    def crossing(t: float, y: np.ndarray) -> float:
        return float(y[0] - 0.5)

    crossing.terminal = True  # type: ignore[attr-defined]
    solution = ode_core.solve(decay, [1.0], [0.0, 5.0], events=crossing)
    assert solution.status is Status.EVENT
    assert solution.message == "A termination event occurred."


def test_the_per_sample_mode_refuses_complex_and_empty_states() -> None:
    with pytest.raises(ValueError, match=r"y0: the per-sample mode \(batch_dims=1\) takes non-empty real states"):
        ode_core.solve(decay, np.ones((2, 1), dtype=complex), [0.0, 1.0], batch_dims=1)
    with pytest.raises(ValueError, match="y0: the per-sample mode"):
        ode_core.solve(decay, np.ones((2, 0)), [0.0, 1.0], batch_dims=1)


@pytest.mark.parametrize("method", ["radau5", "bdf", "kvaerno5"])
def test_a_vectorized_f_gives_the_finite_differences_in_one_call(method: str) -> None:
    calls = {"columns": 0}

    def rational(t: float, y: np.ndarray) -> np.ndarray:
        if y.shape[-1] > 1:
            calls["columns"] += 1
        return np.stack((y[1] / t, y[1] * (y[0] + 2 * y[1] - 1) / (t * (y[0] - 1))))

    def single(t: float, y: np.ndarray) -> np.ndarray:
        return rational(t, y[:, None])[:, 0]

    options = {"method": method, "rtol": 1e-6, "atol": 1e-9}
    columns = ode_core.solve(rational, [1 / 3, 2 / 9], [5.0, 9.0], vectorized=True, **options)
    plain = ode_core.solve(single, [1 / 3, 2 / 9], [5.0, 9.0], **options)
    assert calls["columns"] == columns.stats.njev > 0
    # the same differences (the same Jacobians, the same steps), each Jacobian one call instead of n = 2
    np.testing.assert_array_equal(columns.ys, plain.ys)
    assert columns.stats.nfev == plain.stats.nfev - columns.stats.njev
