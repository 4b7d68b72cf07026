"""The Newton iterations' linear systems: each iteration matrix factorised once, solved many times.

An implicit step solves ``M x = r`` with the same ``M = a I + b J`` at every
Newton iteration and for as long as the step size and Jacobian stay: so ``M``
is LU-factorised once (``Stats.nlu`` counts the factorisations) and every
iteration costs two triangular solves, never an explicit inverse. The
factorisation is chosen by the matrix's kind, as scipy's ``Radau`` and
``BDF`` do:

* a scipy.sparse Jacobian: sparse LU (``scipy.sparse.linalg.splu``), whose
  fill-in follows the sparsity (scipy's medazko problem, n = 400);
* a dense NumPy array: LAPACK's ``getrf``/``getrs`` through
  ``scipy.linalg.lu_factor``/``lu_solve`` (scipy is optional, ``ode-core[scipy]``;
  without it, ``numpy.linalg.solve`` at every call);
* a torch tensor: ``torch.linalg.lu_factor_ex``/``lu_solve`` (on the
  tensor's device);
* any other array API library: its ``linalg.solve`` at every call (the
  standard has no LU), which still forms no inverse.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import numpy as np
from array_api_compat import is_numpy_namespace, is_torch_namespace

__all__ = ["Factors", "SparseShift", "factorise", "is_sparse", "shifted"]


class Factors(Protocol):
    """A factorised matrix ``M``: :meth:`solve` returns ``M^{-1} r``."""

    def solve(self, rhs: Any) -> Any:
        """``M^{-1} rhs`` for ``rhs`` of shape (n,)."""
        ...


def is_sparse(matrix: Any) -> bool:
    """Whether ``matrix`` is a scipy.sparse matrix or array (without importing scipy to ask).

    Parameters
    ----------
    matrix : object

    Returns
    -------
    bool
    """
    return type(matrix).__module__.startswith("scipy.sparse")


class SparseShift:
    """``a I + b J`` for one sparse ``J`` and many ``(a, b)``, each in O(nnz) with one matrix made.

    The pattern of ``J`` joined with the diagonal is built once; each shift
    only fills its values. scipy.sparse's own ``a * eye + b * J`` makes
    several matrices and checks each (on MEDAKZO, 400 states, 42 ms of a
    280 ms ``bdf`` solve, by cProfile).

    Parameters
    ----------
    jacobian : scipy.sparse matrix, shape (n, n)
    """

    def __init__(self, jacobian: Any) -> None:
        import scipy.sparse

        self.jacobian = jacobian
        n = jacobian.shape[0]
        csc = scipy.sparse.csc_matrix(jacobian)
        csc.sum_duplicates()
        union = (abs(csc) + scipy.sparse.identity(n, format="csc")).tocsc()
        union.sort_indices()
        self.indices, self.indptr, self.shape = union.indices, union.indptr, union.shape
        self.values = _on_pattern(csc, self.indices, self.indptr)
        columns = np.repeat(np.arange(n), np.diff(self.indptr))
        self.diagonal = (self.indices == columns).astype(np.float64)

    def matrix(self, a: Any, b: float) -> Any:
        """``a I + b J`` (CSC).

        Parameters
        ----------
        a : float or complex
        b : float

        Returns
        -------
        scipy.sparse.csc_matrix
        """
        import scipy.sparse

        data = b * self.values + a * self.diagonal
        return scipy.sparse.csc_matrix((data, self.indices, self.indptr), shape=self.shape)


def _on_pattern(csc: Any, indices: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """The values of ``csc`` (duplicates summed) at the positions of the sorted CSC pattern ``(indices,
    indptr)``, a superset of its own; zero where it has none."""
    rows = csc.shape[0]
    pattern_keys = np.repeat(np.arange(indptr.size - 1), np.diff(indptr)) * rows + indices
    own_keys = np.repeat(np.arange(csc.indptr.size - 1), np.diff(csc.indptr)) * rows + csc.indices
    out = np.zeros(indices.size, dtype=csc.dtype)
    out[np.searchsorted(pattern_keys, own_keys)] = csc.data
    return out


def shifted(xp: Any, identity: Any, a: Any, b: float, jacobian: Any) -> Any:
    """``a I + b J`` for a dense ``J`` (a sparse one goes through :class:`SparseShift`); ``a`` may be complex.

    Parameters
    ----------
    xp : array namespace
    identity : array, shape (n, n)
        The dense identity of the state's dtype.
    a : float or complex
    b : float
    jacobian : array, shape (n, n)

    Returns
    -------
    array, shape (n, n)
    """
    return a * identity + b * jacobian


def factorise(xp: Any, matrix: Any) -> Factors | None:
    """The LU factorisation of ``matrix``, or ``None`` when it is singular or not finite.

    Parameters
    ----------
    xp : array namespace
        Of the state (and of ``matrix`` when it is dense).
    matrix : array or scipy.sparse matrix, shape (n, n)

    Returns
    -------
    Factors or None
    """
    if is_sparse(matrix):
        return _SparseLU.of(matrix)
    if is_numpy_namespace(xp):
        try:
            return _LapackLU.of(matrix)
        except ImportError:  # scipy is optional (ode-core[scipy]): numpy's solve at every call
            return _Solve.of(xp, matrix)
    if is_torch_namespace(xp):
        return _TorchLU.of(xp, matrix)
    return _Solve.of(xp, matrix)


class _SparseLU:
    __slots__ = ("dtype", "lu")

    def __init__(self, lu: Any, dtype: Any) -> None:
        self.lu, self.dtype = lu, dtype

    @classmethod
    def of(cls, matrix: Any) -> _SparseLU | None:
        import scipy.sparse.linalg

        if not np.all(np.isfinite(matrix.data)):
            return None
        try:
            # A Newton matrix a I + b J has J's pattern and a full diagonal, structurally symmetric for
            # the usual discretised operators: minimum degree on A^T + A orders it with half the fill
            # of SuperLU's default COLAMD (the 2-D Brusselator, 2048 states: L + U 144k against 270k
            # nonzeros, factorisation 4.4 against 7.2 ms, a solve 0.10 against 0.17 ms; MEDAKZO's
            # factorisation 0.07 against 0.60 ms; by hand, splu on I - 0.01 J).
            return cls(scipy.sparse.linalg.splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A"), matrix.dtype)
        except RuntimeError:  # "Factor is exactly singular"
            return None

    def solve(self, rhs: Any) -> Any:
        if rhs.dtype != self.dtype:  # a real right-hand side of a complex system
            rhs = rhs.astype(np.result_type(rhs, self.dtype))
        return self.lu.solve(rhs)


@functools.lru_cache(maxsize=8)
def _lapack(dtype: Any) -> tuple[Any, Any]:
    """LAPACK's ``getrf`` and ``getrs`` for ``dtype`` (looked up once per dtype)."""
    import scipy.linalg

    getrf, getrs = scipy.linalg.get_lapack_funcs(("getrf", "getrs"), dtype=dtype)
    return getrf, getrs


class _LapackLU:
    """LAPACK's ``getrf`` once, ``getrs`` per solve, called directly: ``scipy.linalg.lu_factor`` and
    ``lu_solve``'s own checks and conversions cost more than the factorisation and the triangular solves of
    a small system (16 us against 2 us a solve for 8 states, measured on HIRES by cProfile), and a Newton
    iteration solves at every iteration."""

    __slots__ = ("getrs", "lu", "pivots")

    def __init__(self, getrs: Any, lu: Any, pivots: Any) -> None:
        self.getrs, self.lu, self.pivots = getrs, lu, pivots

    @classmethod
    def of(cls, matrix: Any) -> _LapackLU | None:
        import scipy.linalg  # noqa: F401  (scipy is optional: ImportError sends factorise to numpy's solve)

        if not np.all(np.isfinite(matrix)):
            return None
        getrf, getrs = _lapack(matrix.dtype)
        lu, pivots, info = getrf(matrix)
        if info != 0:  # info > 0: a zero pivot, singular
            return None
        return cls(getrs, lu, pivots)

    def solve(self, rhs: Any) -> Any:
        if rhs.dtype != self.lu.dtype:  # a real right-hand side of a complex system
            rhs = rhs.astype(self.lu.dtype)
        solution, info = self.getrs(self.lu, self.pivots, rhs)
        if info != 0:
            raise ValueError(f"getrs: illegal argument {-info}")
        return solution


class _TorchLU:
    __slots__ = ("linalg", "lu", "pivots")

    def __init__(self, linalg: Any, lu: Any, pivots: Any) -> None:
        self.linalg, self.lu, self.pivots = linalg, lu, pivots

    @classmethod
    def of(cls, xp: Any, matrix: Any) -> _TorchLU | None:
        linalg = xp.linalg
        lu, pivots, info = linalg.lu_factor_ex(matrix)
        # One read per factorisation (not per iteration): a singular or
        # non-finite matrix sends the step back, as a failed Newton does.
        if int(info) != 0 or not bool(xp.all(xp.isfinite(lu))):
            return None
        return cls(linalg, lu, pivots)

    def solve(self, rhs: Any) -> Any:
        if rhs.dtype != self.lu.dtype:
            rhs = rhs.to(self.lu.dtype)
        return self.linalg.lu_solve(self.lu, self.pivots, rhs[:, None])[:, 0]


class _Solve:
    __slots__ = ("matrix", "xp")

    def __init__(self, xp: Any, matrix: Any) -> None:
        self.xp, self.matrix = xp, matrix

    @classmethod
    def of(cls, xp: Any, matrix: Any) -> _Solve | None:
        if not bool(xp.all(xp.isfinite(matrix))):
            return None
        return cls(xp, matrix)

    def solve(self, rhs: Any) -> Any:
        return self.xp.linalg.solve(self.matrix, rhs)
