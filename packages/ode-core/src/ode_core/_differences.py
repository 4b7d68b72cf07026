"""Finite-difference Jacobians grouped by a known sparsity (Curtis, Powell & Reid, 1974).

Columns of ``J`` that share no row can be perturbed together: one evaluation
of ``f`` then gives all of them. A banded or a discretised-PDE Jacobian of
size ``n`` needs a few evaluations instead of ``n`` (scipy's medazko problem,
n = 400: 4). The columns are grouped greedily in order, as scipy's
``group_columns`` does; each column's step is the dense differences' own,
``sqrt(eps max(1e-5, |y_j|))`` (RADAU5's), so the two agree where the
sparsity is right.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["GroupedDifferences", "check_sparsity", "group_columns"]


def group_columns(sparsity: Any) -> np.ndarray:
    """Greedy groups of structurally orthogonal columns.

    Parameters
    ----------
    sparsity : scipy.sparse matrix, shape (m, n)
        Nonzeros where ``J`` may be nonzero.

    Returns
    -------
    ndarray of int, shape (n,)
        The group of each column; columns of one group share no row.
    """
    csc = sparsity.tocsc()
    m, n = csc.shape
    groups = np.empty(n, dtype=np.intp)
    used: list[np.ndarray] = []  # per group, the rows its columns occupy
    for j in range(n):
        rows = csc.indices[csc.indptr[j] : csc.indptr[j + 1]]
        for g, occupied in enumerate(used):
            if not occupied[rows].any():
                occupied[rows] = True
                groups[j] = g
                break
        else:
            occupied = np.zeros(m, dtype=bool)
            occupied[rows] = True
            used.append(occupied)
            groups[j] = len(used) - 1
    return groups


class GroupedDifferences:
    """``J(t, y)`` as a scipy.sparse CSC matrix from forward differences of ``fun`` grouped by ``sparsity``.

    The implicit steppers call :meth:`estimate` where they would difference
    densely; :attr:`evaluations` is what one estimate costs in evaluations of
    ``fun`` (one per group; ``f(t, y)`` is the caller's), which they count in
    ``nfev``.

    Parameters
    ----------
    fun : callable
        The loop's flat ``f(t, y)`` on NumPy arrays.
    sparsity : scipy.sparse matrix, shape (n, n)
    eps : float
        The state dtype's machine epsilon.
    """

    def __init__(self, fun: Callable[[float, Any], Any], sparsity: Any, eps: float) -> None:
        import scipy.sparse

        pattern = scipy.sparse.csc_matrix(sparsity, dtype=bool)
        pattern.eliminate_zeros()
        pattern.sort_indices()
        self.fun = fun
        self.eps = eps
        self.shape = pattern.shape
        self.indices, self.indptr = pattern.indices, pattern.indptr
        self.groups = group_columns(pattern)
        n_groups = int(self.groups.max()) + 1 if self.groups.size else 0
        columns_of_nonzeros = np.repeat(np.arange(self.shape[1]), np.diff(self.indptr))
        # Per group: its columns, and its nonzeros (their positions in the CSC data, rows and columns).
        self.group_columns = [np.flatnonzero(self.groups == g) for g in range(n_groups)]
        self.group_nonzeros = [np.flatnonzero(self.groups[columns_of_nonzeros] == g) for g in range(n_groups)]
        self.columns_of_nonzeros = columns_of_nonzeros
        self.evaluations = n_groups

    def estimate(self, t: float, y: Any, f0: Any) -> Any:
        """``J(t, y)``, with ``f0 = f(t, y)``.

        Parameters
        ----------
        t : float
        y, f0 : ndarray, shape (n,)

        Returns
        -------
        scipy.sparse.csc_matrix, shape (n, n)
        """
        import scipy.sparse

        steps = np.sqrt(self.eps * np.maximum(1e-5, np.abs(y)))
        # The steps actually representable.
        steps = (y + steps) - y
        data = np.empty(self.indices.shape[0], dtype=np.result_type(f0, y))
        for columns, nonzeros in zip(self.group_columns, self.group_nonzeros):
            perturbed = np.array(y, copy=True)
            perturbed[columns] += steps[columns]
            difference = self.fun(t, perturbed) - f0
            data[nonzeros] = difference[self.indices[nonzeros]] / steps[self.columns_of_nonzeros[nonzeros]]
        return scipy.sparse.csc_matrix((data, self.indices, self.indptr), shape=self.shape)


def check_sparsity(sparsity: Any, n: int, name: str = "jac_sparsity") -> Any:
    """``sparsity`` as a scipy.sparse CSC matrix of shape (n, n).

    Parameters
    ----------
    sparsity : array_like or scipy.sparse matrix
    n : int
    name : str

    Returns
    -------
    scipy.sparse.csc_matrix
    """
    import scipy.sparse

    try:
        pattern = scipy.sparse.csc_matrix(sparsity)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{name}: expected an (n, n) array or scipy.sparse matrix, got {type(sparsity).__name__}"
        ) from exc
    if pattern.shape != (n, n):
        raise ValueError(f"{name}: expected shape {(n, n)}, got {pattern.shape}")
    return pattern
