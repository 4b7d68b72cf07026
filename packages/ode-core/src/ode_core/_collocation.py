"""Fixed steps of fully implicit Runge-Kutta methods (Gauss-Legendre, Radau IIA): coupled stages by simplified Newton.

The ``s`` stages of a fully implicit tableau are coupled: the stage
increments ``Z_i = Y_i - y`` solve one system of ``s n`` equations

    G(Z) = Z - h (A kron I) F(Z) = 0,    F_i(Z) = f(t + c_i h, y + Z_i).

Simplified Newton iterates ``Z <- Z - M^{-1} G(Z)`` with ``M = I - h (A
kron J)``, one ``s n x s n`` matrix per step size and Jacobian, inverted once
and reused by every iteration (as ``nlu`` counts; Hairer & Wanner, *Solving
ODEs II*, IV.8). Where the tableau has the structure RADAU5 exploits (three
stages, one real eigenvalue of ``A^{-1}`` and a complex pair),
:class:`~ode_core._radau.RadauIIA` splits the system instead; this stepper
serves every other fully implicit tableau, for fixed steps: none of them
carries an error estimate.

The step's result needs no further evaluation of ``f``: with ``A``
invertible, ``K = A^{-1} Z / h`` are the stage derivatives and ``y1 = y +
b^T A^{-1} Z`` (for a stiffly accurate tableau, ``y + Z_s``). Using ``K``
rather than ``F(Z)`` keeps the Newton error from being amplified in stiff
components (Hairer & Wanner, op. cit., IV.8, (8.2b)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._arrays import is_finite
from ._dense import hermite_coefficients
from ._differences import GroupedDifferences
from ._implicit_rk import NewtonStepper, RightHandSide
from ._linalg import Factors, factorise, is_sparse
from ._tableau import ButcherTableau

__all__ = ["FullyImplicitRungeKutta"]

# RADAU5 stops at 7 and shrinks the step; a fixed step cannot shrink, so
# Newton gets more iterations before the solve fails (each costs s
# evaluations). At 7, radau3 failed a 0.35 step of a small neural ODE at
# rtol 1e-7 that converged in 9.
MAX_NEWTON_ITERATIONS = 20


class FullyImplicitRungeKutta(NewtonStepper):
    """Fixed steps of one fully implicit tableau within one solve.

    Parameters
    ----------
    tableau : ButcherTableau
        Implicit, not diagonally implicit, with an invertible ``a`` and no
        error estimate (fixed steps only).
    xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations, fixed_step
        As for :class:`~ode_core._implicit_rk.NewtonStepper`.

    Raises
    ------
    ValueError
        A tableau this stepper cannot take, naming why.
    """

    def __init__(
        self,
        tableau: ButcherTableau,
        xp: Any,
        dtype: Any,
        device: Any,
        n: int,
        jac: Callable[[float, Any], Any] | GroupedDifferences | None,
        atol: Any,
        rtol: Any,
        norm: Callable[[Any], float],
        max_newton_iterations: int = MAX_NEWTON_ITERATIONS,
        fixed_step: bool = True,
    ) -> None:
        if tableau.explicit or tableau.diagonally_implicit:
            raise ValueError(f"method: {tableau.name!r} is not fully implicit; its stages need no coupled solve")
        if tableau.adaptive:
            raise ValueError(f"method: {tableau.name!r} has an error estimate, which this fixed-step stepper ignores")
        a = np.array([[float(v) for v in row] for row in tableau.a])
        if abs(np.linalg.det(a)) < 1e-12:
            raise ValueError(f"method: {tableau.name!r}: its matrix a is singular")
        super().__init__(xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations, fixed_step=True)
        self.tableau = tableau
        self.n_stages = s = tableau.n_stages
        self.error_order = tableau.controller_order
        self.fsal = False
        self.nodes = [float(ci) for ci in tableau.c]
        self.end_nodes = [i for i, ci in enumerate(tableau.c) if ci == 1]
        self.a = [[float(v) for v in row] for row in a]
        inverse = np.linalg.inv(a)

        def array(values: np.ndarray) -> Any:
            return xp.asarray(values, dtype=dtype, device=device)

        self.matrix = array(a)
        self.matrix_inverse = array(inverse)
        # y1 = y + d^T Z with d = A^{-T} b.
        self.solution_weights = array(np.array([float(v) for v in tableau.b]) @ inverse)
        self.identity_sn = xp.eye(s * n, dtype=dtype, device=device)
        self.iteration_factors: Factors | None = None
        self.factored_h = math.nan

    def _forget_iteration_matrices(self) -> None:
        self.factored_h = math.nan

    def _ensure_iteration_matrix(self, h: float) -> bool:
        """Factorise ``I - h (A kron J)`` unless already done for this ``h`` (see ``_same_step``)."""
        if self._same_step(h, self.factored_h):
            return True
        xp, s = self.xp, self.n_stages
        # The coupled (s n) system is assembled dense (these are fixed-step methods of few stages).
        jacobian = self.jacobian.toarray() if is_sparse(self.jacobian) else self.jacobian
        rows = [xp.concat([(h * self.a[i][j]) * jacobian for j in range(s)], axis=1) for i in range(s)]
        self.nlu += 1
        factors = factorise(xp, self.identity_sn - xp.concat(rows, axis=0))
        if factors is None:
            return False
        self.iteration_factors, self.factored_h = factors, h
        return True

    def _attempt(
        self,
        fun: RightHandSide,
        t: float,
        y: Any,
        f0: Any,
        h: float,
        t_end_eval: float | None,
        full_newton: bool = False,
    ) -> tuple[Any, Any, int, bool, float]:
        xp, n, s = self.xp, self.n, self.n_stages
        if not self._ensure_iteration_matrix(h):
            return None, None, 0, False, math.inf
        times = [t + node * h for node in self.nodes]
        if t_end_eval is not None:
            for i in self.end_nodes:
                times[i] = t_end_eval
        scale = self.atol + self.rtol * xp.abs(y)
        # Start from the explicit Euler guess Z_i = c_i h f0: cheap, and exact for constant f.
        increments = xp.stack([(node * h) * f0 for node in self.nodes])
        evaluations = 0
        previous_norm = math.nan
        rate = math.nan
        converged = False
        iterations = self.max_newton_iterations
        iteration = 0
        for iteration in range(iterations):
            values = xp.stack([fun(times[i], y + increments[i]) for i in range(s)])
            evaluations += s
            if not is_finite(xp, values):
                return None, None, evaluations, False, rate
            residual = increments - h * (self.matrix @ values)
            solved = self.iteration_factors.solve(xp.reshape(residual, (s * n,)))  # type: ignore[union-attr]
            delta = -xp.reshape(solved, (s, n))
            delta_norm = self._norm_of_stages(delta, scale)
            verdict, rate = self._verdict(iteration, iterations, delta_norm, previous_norm, rate)
            if verdict == "failed":
                return None, None, evaluations, False, rate
            increments = increments + delta
            if verdict == "converged":
                converged = True
                break
            previous_norm = delta_norm
        if not converged:
            return None, None, evaluations, False, rate
        stages = (self.matrix_inverse @ increments) / h
        y1 = y + self.solution_weights @ increments
        slowest = rate if iteration > 1 and rate == rate else 0.0
        return y1, stages, evaluations, True, slowest

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """Not available: the tableau has no error estimate (fixed steps only)."""
        raise RuntimeError(f"error_ratio: method {self.tableau.name!r} has no error estimate")

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """Cubic Hermite coefficients through ``y, y1`` with slopes ``f0, f1``."""
        return hermite_coefficients(self.xp, y, y1, f0, f1, h)
