"""The Newton matrices' factorisations (dense LU, sparse LU, torch's LU) and sparse Jacobians: given as
scipy.sparse matrices or estimated by differences grouped by ``jac_sparsity``."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import ode_core
import pytest
import scipy.sparse
from ode_core._differences import GroupedDifferences, group_columns
from ode_core._linalg import factorise, shifted

IMPLICIT = ["radau5", "kvaerno5", "sdirk2", "trbdf2"]


def brusselator(n: int):  # type: ignore[no-untyped-def]
    """A 1-D Brusselator of 2n states, u and v interleaved (Hairer & Wanner II, IV.1), its Jacobian's pattern
    pentadiagonal (each u couples to its v and the neighbouring u)."""
    alpha = 0.02 * (n + 1) ** 2
    x = np.arange(1, n + 1) / (n + 1)
    y0 = np.empty(2 * n)
    y0[0::2] = 1.0 + np.sin(2 * np.pi * x)
    y0[1::2] = 3.0

    def f(t: float, y: np.ndarray) -> np.ndarray:
        u, v = y[0::2], y[1::2]
        u_left = np.concatenate(([1.0], u[:-1]))
        u_right = np.concatenate((u[1:], [1.0]))
        v_left = np.concatenate(([3.0], v[:-1]))
        v_right = np.concatenate((v[1:], [3.0]))
        out = np.empty_like(y)
        out[0::2] = 1.0 + u * u * v - 4.0 * u + alpha * (u_left - 2 * u + u_right)
        out[1::2] = 3.0 * u - u * u * v + alpha * (v_left - 2 * v + v_right)
        return out

    pattern = scipy.sparse.diags([1.0] * 5, [-2, -1, 0, 1, 2], shape=(2 * n, 2 * n))
    return f, y0, pattern


def test_columns_in_one_group_share_no_row() -> None:
    pattern = scipy.sparse.diags([1.0] * 3, [-1, 0, 1], shape=(30, 30)).tocsc()
    groups = group_columns(pattern)
    assert groups.max() + 1 == 3  # a tridiagonal pattern: three groups, whatever n
    dense = pattern.toarray() != 0
    for g in range(3):
        rows_per_column = dense[:, groups == g].sum(axis=1)
        assert rows_per_column.max() <= 1


def test_grouped_differences_match_dense_differences() -> None:
    f, y0, pattern = brusselator(10)
    estimate = GroupedDifferences(f, pattern, float(np.finfo(np.float64).eps))
    assert estimate.evaluations == 5  # five groups for a pentadiagonal pattern
    f0, eps = f(0.0, y0), np.finfo(np.float64).eps
    sparse = estimate.estimate(0.0, y0, f0).toarray()
    dense = np.empty((y0.size, y0.size))
    for j in range(y0.size):
        step = np.sqrt(eps * max(1e-5, abs(y0[j])))
        perturbed = y0.copy()
        perturbed[j] += step
        dense[:, j] = (f(0.0, perturbed) - f0) / (perturbed[j] - y0[j])
    np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", IMPLICIT)
def test_jac_sparsity_gives_the_dense_differences_solve_for_fewer_evaluations(method: str) -> None:
    f, y0, pattern = brusselator(20)
    options = {"method": method, "rtol": 1e-6, "atol": 1e-9}
    dense = ode_core.solve(f, y0, [0.0, 2.0], **options)
    grouped = ode_core.solve(f, y0, [0.0, 2.0], jac_sparsity=pattern, **options)
    assert grouped.success and dense.success
    assert grouped.stats.n_steps == dense.stats.n_steps and grouped.stats.njev == dense.stats.njev
    assert grouped.stats.nfev < dense.stats.nfev
    # the one difference: a group's evaluation instead of a column's
    assert dense.stats.nfev - grouped.stats.nfev == dense.stats.njev * (y0.size - 5)
    np.testing.assert_allclose(grouped.ys, dense.ys, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", IMPLICIT)
def test_a_sparse_jacobian_solves_as_its_dense_twin(method: str) -> None:
    f, y0, pattern = brusselator(15)
    differences = GroupedDifferences(f, pattern, float(np.finfo(np.float64).eps))

    def sparse_jac(t: float, y: np.ndarray) -> scipy.sparse.csc_matrix:
        return differences.estimate(t, y, f(t, y))

    def dense_jac(t: float, y: np.ndarray) -> np.ndarray:
        return differences.estimate(t, y, f(t, y)).toarray()

    options = {"method": method, "rtol": 1e-6, "atol": 1e-9}
    sparse = ode_core.solve(f, y0, [0.0, 2.0], jac=sparse_jac, **options)
    dense = ode_core.solve(f, y0, [0.0, 2.0], jac=dense_jac, **options)
    assert sparse.stats.n_steps == dense.stats.n_steps and sparse.stats.nlu == dense.stats.nlu
    np.testing.assert_allclose(sparse.ys, dense.ys, rtol=1e-9, atol=1e-12)


def test_a_constant_sparse_jacobian_and_a_complex_state() -> None:
    n = 6
    matrix = scipy.sparse.diags([-np.arange(1.0, n + 1)], [0], format="csc")
    y0 = np.full(n, 1.0 + 1.0j)
    solution = ode_core.solve(lambda t, y: matrix @ y, y0, [0.0, 1.0], method="radau5", jac=matrix, rtol=1e-8)
    np.testing.assert_allclose(solution.ys[-1], y0 * np.exp(-np.arange(1.0, n + 1)), rtol=1e-6)


def test_jac_sparsity_is_checked() -> None:
    f, y0, _ = brusselator(3)
    with pytest.raises(ValueError, match=r"jac_sparsity: expected shape \(6, 6\), got \(5, 5\)"):
        ode_core.solve(f, y0, [0.0, 1.0], method="radau5", jac_sparsity=np.ones((5, 5)))
    with pytest.warns(UserWarning, match="jac_sparsity: method 'dopri5' is explicit"):
        ode_core.solve(f, y0, [0.0, 1.0], jac_sparsity=np.ones((6, 6)))


def test_jac_sparsity_refuses_torch_states(torch: ModuleType) -> None:
    with pytest.raises(TypeError, match="jac_sparsity: grouped differences take NumPy states"):
        ode_core.solve(
            lambda t, y: -y, torch.ones(2, dtype=torch.float64), [0.0, 1.0], method="radau5", jac_sparsity=np.eye(2)
        )


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_singular_or_non_finite_matrices_factorise_to_none(kind: str) -> None:
    xp = ode_core.validation.check_state(np.ones(1))[0]
    singular = np.array([[1.0, 2.0], [2.0, 4.0]])
    infinite = np.array([[1.0, np.inf], [0.0, 1.0]])
    if kind == "sparse":
        singular, infinite = scipy.sparse.csc_matrix(singular), scipy.sparse.csc_matrix(infinite)
    assert factorise(xp, singular) is None
    assert factorise(xp, infinite) is None
    regular = np.array([[4.0, 1.0], [2.0, 3.0]])
    factors = factorise(xp, scipy.sparse.csc_matrix(regular) if kind == "sparse" else regular)
    assert factors is not None
    np.testing.assert_allclose(regular @ factors.solve(np.array([1.0, 2.0])), [1.0, 2.0], rtol=1e-14)


def test_torch_lu_solves_on_the_tensors_device(torch: ModuleType) -> None:
    from array_api_compat import array_namespace

    matrix = torch.tensor([[4.0, 1.0], [2.0, 3.0]], dtype=torch.float64)
    xp = array_namespace(matrix)
    factors = factorise(xp, shifted(xp, torch.eye(2, dtype=torch.float64), 1.0, -1.0, -matrix + torch.eye(2)))
    assert factors is not None
    torch.testing.assert_close(
        matrix @ factors.solve(torch.tensor([1.0, 2.0], dtype=torch.float64)),
        torch.tensor([1.0, 2.0], dtype=torch.float64),
    )
    assert factorise(xp, torch.zeros((2, 2), dtype=torch.float64)) is None


def test_without_scipy_numpy_states_solve_with_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """scipy is optional for ode-core: without it a dense NumPy matrix is solved by numpy.linalg.solve."""
    import sys

    monkeypatch.setitem(sys.modules, "scipy.linalg", None)  # import scipy.linalg raises ImportError
    xp = ode_core.validation.check_state(np.ones(1))[0]
    regular = np.array([[4.0, 1.0], [2.0, 3.0]])
    factors = factorise(xp, regular)
    assert factors is not None and type(factors).__name__ == "_Solve"
    np.testing.assert_allclose(regular @ factors.solve(np.array([1.0, 2.0])), [1.0, 2.0], rtol=1e-14)
    solution = ode_core.solve(lambda t, y: -50.0 * y, np.ones(2), [0.0, 1.0], method="radau5")
    np.testing.assert_allclose(solution.ys[-1], np.exp(-50.0), rtol=1e-3, atol=1e-12)


@pytest.mark.parametrize("shift", [(2.0, -0.5), (1.0 + 2.0j, -1.0)])
def test_a_sparse_shift_is_scipys_arithmetic(shift: tuple[complex, float]) -> None:
    from ode_core._linalg import SparseShift

    jacobian = scipy.sparse.random(40, 40, density=0.1, format="csc", random_state=3)  # diagonal partly empty
    a, b = shift
    expected = (a * scipy.sparse.identity(40) + b * jacobian).toarray()
    np.testing.assert_array_equal(SparseShift(jacobian).matrix(a, b).toarray(), expected)


def test_nfev_jacobian_counts_the_differences() -> None:
    f, y0, pattern = brusselator(10)
    dense = ode_core.solve(f, y0, [0.0, 1.0], method="radau5")
    grouped = ode_core.solve(f, y0, [0.0, 1.0], method="radau5", jac_sparsity=pattern)
    given = ode_core.solve(f, y0, [0.0, 1.0], method="radau5", jac=lambda t, y: grouped_jacobian(f, pattern, t, y))
    # each Jacobian: f(t, y) and one evaluation per column (dense) or per group (5)
    assert dense.stats.nfev_jacobian == dense.stats.njev * (1 + y0.size)
    assert grouped.stats.nfev_jacobian == grouped.stats.njev * (1 + 5)
    assert given.stats.nfev_jacobian == 0
    assert dense.stats.nfev - dense.stats.nfev_jacobian == grouped.stats.nfev - grouped.stats.nfev_jacobian


def grouped_jacobian(f, pattern, t, y):  # type: ignore[no-untyped-def]
    return GroupedDifferences(f, pattern, float(np.finfo(np.float64).eps)).estimate(t, y, f(t, y))
