"""Matrix-free Newton: the iteration matrices' systems solved by GMRES on Jacobian-vector products.

For a state too large for a Jacobian matrix (torchdiffeq #214: a 196k-state
neural field), ``solve(..., linear_solver="krylov")`` never forms ``J``. The
Newton steppers keep only the point ``(t, y, f(t, y))`` where the Jacobian is
"evaluated", and each system ``(a I + b J) x = r`` is solved by restarted
GMRES (Saad & Schultz 1986) with the products ``J v`` from

* the user's ``jvp(t, y, v)`` (ode-adjoint passes autograd's), or
* ``jac`` when given (``J @ v``), or
* forward differences, ``J v ~ (f(t, y + e v) - f(t, y)) / e`` with
  ``e = sqrt(eps) (1 + ||y||) / ||v||`` (Brown & Saad 1990's choice): one
  evaluation of ``f`` per product, counted in ``nfev``.

GMRES stops at a residual of ``KRYLOV_TOLERANCE`` times the right-hand side's
(the inexact Newton forcing term, Eisenstat & Walker 1996: well below the
simplified Newton's own convergence rate, so the iteration converges as with
a direct solve). Without a preconditioner it suits problems whose stiff part
is moderate (diffusion at the step sizes accuracy asks for) rather than
extremely stiff kinetics; a preconditioner is future work.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["KRYLOV_TOLERANCE", "JacobianPoint", "KrylovSolver", "difference_jvp", "gmres"]

KRYLOV_TOLERANCE = 1e-6
RESTART = 30
MAX_RESTARTS = 10


def _dot(xp: Any, a: Any, b: Any) -> complex:
    """``<a, b>`` (conjugating ``a``), on the host."""
    value = xp.vecdot(xp.reshape(a, (-1,)), xp.reshape(b, (-1,)))
    return complex(value) if xp.isdtype(value.dtype, "complex floating") else float(value)


def _norm(xp: Any, a: Any) -> float:
    return math.sqrt(abs(_dot(xp, a, a)))


def gmres(
    xp: Any,
    matvec: Callable[[Any], Any],
    rhs: Any,
    tolerance: float = KRYLOV_TOLERANCE,
    restart: int = RESTART,
    max_restarts: int = MAX_RESTARTS,
) -> tuple[Any, int, bool]:
    """Restarted GMRES for ``A x = rhs`` from ``x = 0``.

    Parameters
    ----------
    xp : array namespace
    matvec : callable
        ``v -> A v`` on arrays like ``rhs``.
    rhs : array, shape (n,)
    tolerance : float
        Stop at ``||rhs - A x|| <= tolerance ||rhs||``.
    restart, max_restarts : int
        Krylov vectors per cycle, and cycles at most.

    Returns
    -------
    x : array, shape (n,)
    products : int
        Calls of ``matvec``.
    converged : bool
    """
    complex_valued = xp.isdtype(rhs.dtype, "complex floating")
    host = np.complex128 if complex_valued else np.float64
    x = xp.zeros_like(rhs)
    target = tolerance * _norm(xp, rhs)
    residual = rhs
    beta = _norm(xp, residual)
    products = 0
    if beta <= target or beta == 0.0:
        return x, products, True
    for _ in range(max_restarts):
        basis = [residual / beta]
        hessenberg = np.zeros((restart + 1, restart), dtype=host)
        coefficients = np.zeros(0, dtype=host)
        for j in range(restart):
            w = matvec(basis[j])
            products += 1
            for i in range(j + 1):  # modified Gram-Schmidt
                h = _dot(xp, basis[i], w)
                hessenberg[i, j] = h
                w = w - h * basis[i]
            norm_w = _norm(xp, w)
            hessenberg[j + 1, j] = norm_w
            first = np.zeros(j + 2, dtype=host)
            first[0] = beta
            # The small least-squares problem on the host (j + 2 by j + 1).
            coefficients = np.linalg.lstsq(hessenberg[: j + 2, : j + 1], first, rcond=None)[0]
            estimate = float(np.linalg.norm(first - hessenberg[: j + 2, : j + 1] @ coefficients))
            if estimate <= target or norm_w == 0.0:
                break
            basis.append(w / norm_w)
        for c, v in zip(coefficients, basis):
            x = x + (c if complex_valued else float(c.real)) * v
        residual = rhs - matvec(x)
        products += 1
        beta = _norm(xp, residual)
        if beta <= target:
            return x, products, True
    return x, products, False


class KrylovSolver:
    """``(a I + b J)^{-1} r`` by GMRES, with ``J`` the Jacobian at one point, as products only.

    Implements the factorisation protocol (:class:`ode_core._linalg.Factors`)
    for the Newton steppers.

    Parameters
    ----------
    xp : array namespace
    a : float or complex
    b : float
    point : JacobianPoint
        Where ``J`` is taken, with its products ``v -> J v`` (real ``v``: a real state's Jacobian).
    differentiable : callable, optional
        ``differentiable(solve, a, b, t, y, rhs) -> x``: the solve as its array library differentiates
        it, where ``rhs`` carries a gradient (ode-adjoint: the solve's derivative is the linear map
        ``(a I + b J)^{-1}`` with ``J`` held fixed, as a direct solve's factors are; backprop through
        GMRES's own arithmetic would not be, its coefficients being taken on the host).
    """

    def __init__(
        self, xp: Any, a: Any, b: float, point: JacobianPoint, differentiable: Callable[..., Any] | None = None
    ) -> None:
        self.xp, self.a, self.b, self.point = xp, a, b, point
        self.jvp = point.jvp
        self.differentiable = differentiable

    def _apply(self, v: Any) -> Any:
        xp = self.xp
        if xp.isdtype(v.dtype, "complex floating"):
            # J is real: J (p + i q) = J p + i J q.
            product = self.jvp(xp.real(v)) + 1j * self.jvp(xp.imag(v))
        else:
            product = self.jvp(v)
        return self.a * v + self.b * product

    def solve(self, rhs: Any) -> Any:
        """``(a I + b J)^{-1} rhs`` to GMRES's tolerance.

        Parameters
        ----------
        rhs : array, shape (n,)

        Returns
        -------
        array, shape (n,)
        """
        if isinstance(self.a, complex) and not self.xp.isdtype(rhs.dtype, "complex floating"):
            rhs = rhs + 0j
        if self.differentiable is not None and getattr(rhs, "requires_grad", False):
            return self.differentiable(self._solve, self.a, self.b, self.point.t, self.point.y, rhs)
        return self._solve(rhs)

    def _solve(self, rhs: Any) -> Any:
        # An unconverged GMRES returns its best iterate: the Newton iteration judges the correction.
        solution, _, _ = gmres(self.xp, self._apply, rhs)
        return solution


def difference_jvp(
    xp: Any, fun: Callable[[float, Any], Any], t: float, y: Any, f0: Any, eps: float, counter: list[int]
) -> Callable[[Any], Any]:
    """``v -> J v`` at ``(t, y)`` by a forward difference along ``v`` (one evaluation of ``fun`` each)."""
    y_norm = _norm(xp, y)

    def product(v: Any) -> Any:
        v_norm = _norm(xp, v)
        if v_norm == 0.0:
            return xp.zeros_like(v)
        step = math.sqrt(eps) * (1.0 + y_norm) / v_norm
        counter[0] += 1
        return (fun(t, y + step * v) - f0) / step

    return product


class JacobianPoint:
    """Where a matrix-free Newton "evaluated" its Jacobian: ``(t, y)`` and the products ``v -> J v`` there.

    Parameters
    ----------
    jvp : callable
        ``v -> J v``.
    t : float
    y : array, shape (n,)
    """

    def __init__(self, jvp: Callable[[Any], Any], t: float, y: Any) -> None:
        self.jvp, self.t, self.y = jvp, t, y
