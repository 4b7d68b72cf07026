"""Fixed steps of fully implicit tableaux (gl4, gl6, radau3, radau5_fixed): the coupled Newton solve."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import ode_core
import pytest
from ode_core import TABLEAUX, Status
from ode_core._collocation import FullyImplicitRungeKutta

FULLY_IMPLICIT = ["radau3", "radau5_fixed", "gl4", "gl6"]


def _decay(t: float, y: np.ndarray) -> np.ndarray:
    return -y


@pytest.mark.parametrize("method", FULLY_IMPLICIT)
def test_converges_at_the_stated_order(method: str) -> None:
    errors = []
    for n in (4, 8, 16):
        solution = ode_core.solve(
            _decay, np.ones(1), np.linspace(0.0, 1.0, n + 1), method=method, rtol=1e-13, atol=1e-15
        )
        errors.append(abs(float(solution.ys[-1, 0]) - np.exp(-1.0)))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(rates, TABLEAUX[method].order, atol=0.1)


@pytest.mark.parametrize("method", FULLY_IMPLICIT)
def test_one_jacobian_and_one_inverse_for_equal_steps(method: str) -> None:
    """The iteration matrix depends on h and J only: equal steps reuse its inverse."""
    solution = ode_core.solve(_decay, np.ones(3), np.linspace(0.0, 1.0, 11), method=method)
    assert solution.status is Status.SUCCESS
    assert (solution.stats.njev, solution.stats.nlu) == (1, 1)


def test_gauss_conserves_a_quadratic_invariant() -> None:
    """Gauss methods are symplectic: the harmonic oscillator's energy is kept to Newton's tolerance."""
    solution = ode_core.solve(
        lambda t, y: np.array([y[1], -y[0]]),
        np.array([1.0, 0.0]),
        np.linspace(0.0, 100.0, 201),
        method="gl4",
        rtol=1e-12,
        atol=1e-14,
    )
    energy = (solution.ys**2).sum(axis=1)
    assert np.max(np.abs(energy - 1.0)) < 1e-9


def test_radau3_damps_a_stiff_mode_that_gauss_keeps() -> None:
    """L-stable against A-stable: y' = -1e6 (y - cos t) with h = 0.1, far outside the stiff scale."""
    t = np.linspace(0.0, 1.0, 11)
    radau = ode_core.solve(lambda t, y: -1e6 * (y - np.cos(t)), np.array([1.5]), t, method="radau3")
    gauss = ode_core.solve(lambda t, y: -1e6 * (y - np.cos(t)), np.array([1.5]), t, method="gl4")
    assert abs(float(radau.ys[-1, 0]) - np.cos(1.0)) < 1e-5  # the initial layer is gone
    assert abs(float(gauss.ys[-1, 0]) - np.cos(1.0)) > 0.1  # R(-inf) = 1: the layer never decays


def test_on_torch(torch: ModuleType) -> None:
    y0 = torch.ones(2, dtype=torch.float64)
    solution = ode_core.solve(lambda t, y: -y, y0, torch.linspace(0.0, 1.0, 9, dtype=torch.float64), method="gl6")
    assert isinstance(solution.ys, torch.Tensor)
    torch.testing.assert_close(solution.ys[-1], torch.full((2,), np.exp(-1.0), dtype=torch.float64), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("kvaerno5", "is not fully implicit"),
        ("rk4", "is not fully implicit"),
        ("radau5", "has an error estimate"),
    ],
)
def test_refuses_what_it_cannot_step(method: str, message: str) -> None:
    def norm(v: np.ndarray) -> float:
        return float(np.sqrt(np.mean(v**2)))

    with pytest.raises(ValueError, match=message):
        FullyImplicitRungeKutta(TABLEAUX[method], np, np.float64, "cpu", 2, None, 1e-6, 1e-6, norm)


def test_refuses_a_singular_matrix() -> None:
    singular = ode_core.ButcherTableau(
        name="singular", order=1, c=("1/2", "1/2"), a=(("1/4", "1/4"), ("1/4", "1/4")), b=("1/2", "1/2")
    )
    with pytest.raises(ValueError, match="its matrix a is singular"):
        ode_core.solve(_decay, np.ones(1), [0.0, 1.0], method=singular)


def test_a_newton_failure_ends_the_fixed_steps_with_a_status() -> None:
    """A step far too large for a blow-up: no fixed step can converge, and the solve says so."""
    solution = ode_core.solve(lambda t, y: y**2, np.array([1.0]), [0.0, 0.9], method="gl4", step_size=0.9)
    assert solution.status is Status.NONLINEAR_SOLVE_FAILED
    assert "Newton's iteration did not converge in the fixed step" in solution.message
