"""linear_solver="krylov": matrix-free Newton, GMRES on Jacobian-vector products, against the direct solves."""

from __future__ import annotations

import math
from types import ModuleType

import numpy as np
import ode_core
import pytest
import scipy.sparse
from ode_core._krylov import gmres

N = 80


def reaction_diffusion(t: float, u: np.ndarray) -> np.ndarray:
    laplacian = np.empty_like(u)
    laplacian[1:-1] = u[:-2] - 2 * u[1:-1] + u[2:]
    laplacian[0], laplacian[-1] = u[1] - 2 * u[0], u[-2] - 2 * u[-1]
    return 0.1 * (N + 1) ** 2 * laplacian - u**3


U0 = np.sin(np.pi * np.arange(1, N + 1) / (N + 1))


def test_gmres_solves_a_linear_system() -> None:
    from array_api_compat import array_namespace

    rng = np.random.default_rng(0)
    matrix = np.eye(50) + 0.3 * rng.standard_normal((50, 50)) / np.sqrt(50)
    rhs = rng.standard_normal(50)
    solution, products, converged = gmres(array_namespace(rhs), lambda v: matrix @ v, rhs, tolerance=1e-10)
    assert converged and products <= 60
    np.testing.assert_allclose(matrix @ solution, rhs, atol=1e-9)
    complex_rhs = rhs + 1j * rng.standard_normal(50)
    shifted = matrix + 0.5j * np.eye(50)
    solution, _, converged = gmres(array_namespace(rhs), lambda v: shifted @ v, complex_rhs, tolerance=1e-10)
    assert converged
    np.testing.assert_allclose(shifted @ solution, complex_rhs, atol=1e-9)


@pytest.mark.parametrize("method", ["radau5", "bdf", "kvaerno5", "trbdf2"])
def test_krylov_takes_the_direct_solves_steps(method: str) -> None:
    options = {"step_size": 0.01} if method == "trbdf2" else {}
    direct = ode_core.solve(reaction_diffusion, U0, [0.0, 0.5, 1.0], method=method, rtol=1e-6, atol=1e-9, **options)
    krylov = ode_core.solve(
        reaction_diffusion, U0, [0.0, 0.5, 1.0], method=method, rtol=1e-6, atol=1e-9, linear_solver="krylov", **options
    )
    assert krylov.success and krylov.stats.nlu == 0
    assert krylov.stats.n_steps == direct.stats.n_steps
    np.testing.assert_allclose(krylov.ys, direct.ys, rtol=0, atol=1e-9)


def test_products_from_jvp_or_jac_cost_no_evaluations() -> None:
    def jvp(t: float, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        laplacian = np.empty_like(v)
        laplacian[1:-1] = v[:-2] - 2 * v[1:-1] + v[2:]
        laplacian[0], laplacian[-1] = v[1] - 2 * v[0], v[-2] - 2 * v[-1]
        return 0.1 * (N + 1) ** 2 * laplacian - 3 * u**2 * v

    options = {"method": "bdf", "rtol": 1e-6, "atol": 1e-9}
    differences = ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], linear_solver="krylov", **options)
    exact = ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], linear_solver="krylov", jvp=jvp, **options)
    direct = ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], **options)
    assert exact.stats.nfev < differences.stats.nfev
    assert exact.stats.nfev == direct.stats.nfev - direct.stats.nfev_jacobian  # only the Newton iterations' f
    np.testing.assert_allclose(exact.ys, direct.ys, rtol=0, atol=1e-9)


def test_krylov_is_checked() -> None:
    with pytest.raises(ValueError, match="linear_solver: expected 'direct' or 'krylov', got 'lu'"):
        ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], method="radau5", linear_solver="lu")
    with pytest.raises(ValueError, match="linear_solver: 'krylov' serves the diagonally implicit methods"):
        ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], method="gl4", step_size=0.1, linear_solver="krylov")
    with pytest.raises(ValueError, match="linear_solver: 'krylov' serves"):
        ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], linear_solver="krylov")  # dopri5
    with pytest.raises(ValueError, match="jvp: Jacobian-vector products serve linear_solver='krylov' only"):
        ode_core.solve(reaction_diffusion, U0, [0.0, 1.0], method="bdf", jvp=lambda t, y, v: v)
    with pytest.raises(TypeError, match="linear_solver: 'krylov' takes real states"):
        ode_core.solve(lambda t, y: -y, np.ones(2, dtype=complex), [0.0, 1.0], method="bdf", linear_solver="krylov")


@pytest.mark.slow
def test_a_100k_state_torch_problem_no_dense_jacobian_could_hold(torch: ModuleType) -> None:
    """100,000 states (a dense Jacobian: 80 GB): krylov bdf on torch against the sparse direct solve on NumPy."""
    n = 100_000
    rates = np.linspace(1.0, 100.0, n)

    def decay(t: float, u):  # type: ignore[no-untyped-def]
        lib = torch if isinstance(u, torch.Tensor) else np
        inner = u[:-2] - 2 * u[1:-1] + u[2:]
        coupling = lib.concatenate([u[1:2] - u[:1], inner, u[-2:-1] - u[-1:]])
        return -rates_of(u) * (u - math.cos(t)) + 0.1 * coupling

    torch_rates = torch.tensor(rates)

    def rates_of(u):  # type: ignore[no-untyped-def]
        return torch_rates if isinstance(u, torch.Tensor) else rates

    pattern = scipy.sparse.diags([1.0] * 3, [-1, 0, 1], shape=(n, n))
    with torch.no_grad():
        krylov = ode_core.solve(
            decay,
            torch.zeros(n, dtype=torch.float64),
            [0.0, 1.0],
            method="bdf",
            rtol=1e-6,
            atol=1e-9,
            linear_solver="krylov",
        )
    sparse = ode_core.solve(decay, np.zeros(n), [0.0, 1.0], method="bdf", rtol=1e-6, atol=1e-9, jac_sparsity=pattern)
    assert krylov.success and krylov.stats.nlu == 0 and sparse.success
    np.testing.assert_allclose(krylov.ys[-1].numpy(), sparse.ys[-1], rtol=0, atol=1e-7)
