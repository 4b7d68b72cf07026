"""bdf: the variable-order NDF of scipy's BDF and MATLAB's ode15s, held step for step to scipy's BDF."""

from __future__ import annotations

import math
from fractions import Fraction
from types import ModuleType

import numpy as np
import ode_core
import pytest
import scipy.sparse
from _stiff_problems import robertson, robertson_jacobian, van_der_pol, van_der_pol_jacobian
from ode_core import Status
from scipy.integrate import solve_ivp


def test_the_coefficients_are_the_published_ones() -> None:
    method = ode_core.VARIABLE_ORDER["bdf"]
    # Shampine & Reichelt (1997), Table 1; scipy's bdf.py has the same.
    assert method.kappa == (0, Fraction(-37, 200), Fraction(-1, 9), Fraction(-823, 10000), Fraction(-83, 2000), 0)
    assert method.gamma[:4] == (0, 1, Fraction(3, 2), Fraction(11, 6))
    # alpha_q = (1 - kappa_q) gamma_q; the error constant kappa_q gamma_q + 1 / (q + 1)
    assert method.alpha[2] == (1 + Fraction(1, 9)) * Fraction(3, 2)
    assert method.error_constants[2] == Fraction(-1, 9) * Fraction(3, 2) + Fraction(1, 3)
    assert method.implicit and method.adaptive and not method.explicit


@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-9])
def test_robertson_steps_as_scipys_bdf(rtol: float) -> None:
    y0 = np.array([1.0, 0.0, 0.0])
    options = {"rtol": rtol, "atol": 1e-4 * rtol, "jac": robertson_jacobian}
    ours = ode_core.solve(robertson, y0, [0.0, 1e5], method="bdf", **options)
    theirs = solve_ivp(robertson, (0.0, 1e5), y0, method="BDF", **options)
    assert ours.success
    accepted = len(theirs.t) - 1
    assert abs(ours.stats.n_accepted - accepted) <= max(1, accepted // 50)
    assert abs(ours.stats.njev - theirs.njev) <= 1 and abs(ours.stats.nlu - theirs.nlu) <= max(2, theirs.nlu // 20)
    np.testing.assert_allclose(ours.ys[-1], theirs.y[:, -1], rtol=10 * rtol, atol=1e-4 * rtol)


def test_the_error_follows_the_tolerance_as_scipys() -> None:
    y0, exact = np.array([1.0, 2.0]), np.exp(-5.0) * np.array([1.0, 2.0])
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        ours = ode_core.solve(lambda t, y: -y, y0, [0.0, 5.0], method="bdf", rtol=rtol, atol=1e-12)
        theirs = solve_ivp(lambda t, y: -y, (0.0, 5.0), y0, method="BDF", rtol=rtol, atol=1e-12)
        errors.append(np.max(np.abs(ours.ys[-1] / exact - 1)))
        assert errors[-1] <= 2 * np.max(np.abs(theirs.y[:, -1] / exact - 1))
    assert errors[2] < errors[0] / 10  # (not monotonic in between: the order changes, as scipy's)


def test_van_der_pol_mu_1000_as_scipy() -> None:
    y0 = np.array([2.0, 0.0])
    options = {"rtol": 1e-6, "atol": 1e-9, "jac": van_der_pol_jacobian}
    ours = ode_core.solve(van_der_pol, y0, [0.0, 2000.0], method="bdf", **options)
    theirs = solve_ivp(van_der_pol, (0.0, 2000.0), y0, method="BDF", **options)
    assert ours.success
    accepted = len(theirs.t) - 1
    assert abs(ours.stats.n_accepted - accepted) <= accepted // 20
    np.testing.assert_allclose(ours.ys[-1], theirs.y[:, -1], rtol=1e-3, atol=1e-6)


def test_dense_output_and_outputs_between_steps() -> None:
    y0 = np.array([1.0, 0.0])

    def oscillator(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], -y[0]])

    t = np.linspace(0.0, 6.0, 13)
    solution = ode_core.solve(oscillator, y0, t, method="bdf", rtol=1e-8, atol=1e-10)
    exact = np.stack([np.cos(t), -np.sin(t)], axis=1)
    np.testing.assert_allclose(solution.ys, exact, rtol=0, atol=1e-5)
    between = np.linspace(0.05, 5.95, 40)
    np.testing.assert_allclose(solution.dense(between), np.stack([np.cos(between), -np.sin(between)], 1), atol=1e-5)
    ends = solution.dense.t_steps
    # the interpolant passes through each step's start and end
    np.testing.assert_allclose(solution.dense(ends[1:-1]), solution.dense(np.nextafter(ends[1:-1], 0)), atol=1e-12)


def test_backwards_events_and_refusals() -> None:
    solution = ode_core.solve(
        lambda t, y: -y, np.array([math.exp(-2.0)]), [2.0, 0.0], method="bdf", rtol=1e-8, atol=1e-12
    )
    np.testing.assert_allclose(solution.ys[-1], [1.0], rtol=1e-6)

    def half(t: float, y: np.ndarray) -> float:
        return float(y[0] - 0.5)

    half.terminal = True  # type: ignore[attr-defined]
    stopped = ode_core.solve(lambda t, y: -y, np.array([1.0]), [0.0, 5.0], method="bdf", events=half, rtol=1e-8)
    assert stopped.status is Status.EVENT
    np.testing.assert_allclose(stopped.t_events[0], [math.log(2.0)], rtol=1e-6)
    with pytest.raises(ValueError, match="step_size: 'bdf' chooses its own steps"):
        ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, 1.0], method="bdf", step_size=0.1)
    with pytest.raises(ValueError, match="controller: 'bdf' chooses its own steps and orders"):
        ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, 1.0], method="bdf", controller=ode_core.PIController())


def test_sparse_differences_complex_and_torch_states(torch: ModuleType) -> None:
    n = 30
    matrix = scipy.sparse.diags([1.0, -2.0, 1.0], [-1, 0, 1], shape=(n, n), format="csc") * (n + 1) ** 2
    y0 = np.sin(np.pi * np.arange(1, n + 1) / (n + 1))
    dense = ode_core.solve(lambda t, y: matrix @ y, y0, [0.0, 0.1], method="bdf")
    grouped = ode_core.solve(lambda t, y: matrix @ y, y0, [0.0, 0.1], method="bdf", jac_sparsity=matrix)
    assert grouped.stats.n_steps == dense.stats.n_steps and grouped.stats.nfev < dense.stats.nfev
    np.testing.assert_allclose(grouped.ys, dense.ys, rtol=1e-9, atol=1e-12)

    rate = np.array([1.0 + 2.0j, 0.5 - 1.0j])
    spiral = ode_core.solve(lambda t, y: -rate * y, np.ones(2, dtype=complex), [0.0, 1.0], method="bdf", rtol=1e-8)
    np.testing.assert_allclose(spiral.ys[-1], np.exp(-rate), rtol=1e-6)

    on_torch = ode_core.solve(
        robertson_torch(torch),
        torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64),
        [0.0, 100.0],
        method="bdf",
        rtol=1e-6,
        atol=1e-10,
    )
    on_numpy = ode_core.solve(robertson, np.array([1.0, 0.0, 0.0]), [0.0, 100.0], method="bdf", rtol=1e-6, atol=1e-10)
    assert on_torch.stats.n_steps == on_numpy.stats.n_steps
    np.testing.assert_allclose(on_torch.ys.numpy(), on_numpy.ys, rtol=1e-9, atol=1e-14)


def robertson_torch(torch: ModuleType):  # type: ignore[no-untyped-def]
    def f(t: float, y):  # type: ignore[no-untyped-def]
        return torch.stack(
            [
                -0.04 * y[0] + 1e4 * y[1] * y[2],
                0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                3e7 * y[1] ** 2,
            ]
        )

    return f
