"""Diagonally implicit Runge--Kutta steps with a simplified Newton iteration.

Stage ``i`` of a diagonally implicit method (``a`` lower triangular) solves

    Y_i = psi_i + h gamma_i f(t + c_i h, Y_i),    psi_i = y + h sum_{j<i} a_ij k_j,

with ``gamma_i = a_ii``, by simplified Newton on ``G(Y) = Y - psi_i - h gamma_i
f(Y)`` using the iteration matrix ``M = I - h gamma_i J``. ``J`` approximates
``df/dy``: from the user's ``jac`` or by finite differences, and is kept across
steps until Newton converges slowly or fails (Hairer & Wanner, *Solving ODEs
II*, IV.8). The stage derivative is then ``k_i = (Y_i - psi_i) / (h gamma_i)``,
which, unlike ``f(Y_i)``, does not amplify the Newton error in stiff
components.

``M`` is LU-factorised once (:mod:`ode_core._linalg`: LAPACK, sparse LU for
a scipy.sparse ``J``, torch's own) and the factors reused by every Newton
iteration of every stage with the same ``h gamma`` (ESDIRK methods share one
``gamma``), each linear solve two triangular solves; ``nlu`` counts the
factorisations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ._dense import hermite_coefficients
from ._differences import GroupedDifferences
from ._krylov import JacobianPoint, KrylovSolver, difference_jvp
from ._linalg import Factors, SparseShift, factorise, is_sparse, shifted
from ._stepper import StepperBase
from ._tableau import ButcherTableau

__all__ = ["DiagonallyImplicitRungeKutta", "NewtonStepper"]

RightHandSide = Callable[[float, Any], Any]

# Iterations of the full-Newton fallback of fixed steps: quadratic convergence
# needs few once close, this leaves room to get close from a poor guess.
FULL_NEWTON_ITERATIONS = 50

# A step whose proposed size grows by less than this factor keeps its size, so
# the iteration matrix need not be inverted again (scipy's Radau does likewise).
HOLD_STEP_BELOW_GROWTH = 1.2


def _vector(xp: Any, values: Any, dtype: Any, device: Any) -> Any:
    return xp.asarray([float(v) for v in values], dtype=dtype, device=device)


class NewtonStepper(StepperBase):
    """What every implicit stepper of one solve shares: the Jacobian, kept
    across steps; the inverted iteration matrices; Newton's tolerances; and
    the step loop that retries a failed Newton iteration with a fresh
    Jacobian.

    Subclasses implement ``_attempt(fun, t, y, f0, h, t_end_eval,
    full_newton=False) -> (y1, stages, evaluations, converged,
    slowest_rate)``.

    Parameters
    ----------
    xp, dtype, device, n
        Namespace, dtype, device and size of the flat state.
    jac : callable or None
        ``jac(t, y) -> (n, n)`` on the flat state; ``None`` for finite
        differences.
    atol, rtol
        Tolerances; Newton's convergence is measured in the same scaled norm
        as the local error.
    norm : callable
        Error norm of a scaled flat vector.
    max_newton_iterations : int
        Iterations per stage (or per step, for coupled stages) before the
        step is retried.
    fixed_step : bool
        The step cannot be shrunk (see ``full_newton_fallback``).
    """

    #: Whether a fixed step whose simplified Newton fails even with a fresh
    #: Jacobian tries full Newton (a Jacobian at every iterate) before giving up.
    full_newton_fallback = False

    def __init__(
        self,
        xp: Any,
        dtype: Any,
        device: Any,
        n: int,
        jac: Callable[[float, Any], Any] | GroupedDifferences | None,
        atol: Any,
        rtol: Any,
        norm: Callable[[Any], float],
        max_newton_iterations: int,
        fixed_step: bool,
    ) -> None:
        self.xp = xp
        self.dtype = dtype
        self.device = device
        self.n = n
        # Differences grouped by a sparsity pattern come in the place of a jac (make_stepper's).
        self.differences: GroupedDifferences | None = None
        self.jac: Callable[[float, Any], Any] | None = None
        if isinstance(jac, GroupedDifferences):
            self.differences = jac
        else:
            self.jac = jac
        self.atol = atol
        self.rtol = rtol
        self.norm = norm
        self.max_newton_iterations = max_newton_iterations
        self.fixed_step = fixed_step
        eps = float(xp.finfo(dtype).eps)
        # scipy's Radau and Hairer's codes: Newton stops at a fraction of the
        # tolerance, never below what round-off allows.
        rtol_scalar = rtol if isinstance(rtol, float) else float(xp.min(rtol))
        self.newton_tolerance = max(10.0 * eps / rtol_scalar, min(0.03, rtol_scalar**0.5))
        # A correction this small, in tolerance units, is round-off in y.
        self.roundoff_norm = 10.0 * eps / rtol_scalar
        self.eps = eps
        self._identity: Any = None  # made at the first dense iteration matrix (a sparse J needs none)
        # Matrix-free Newton (use_krylov): J as products at a point, systems by GMRES.
        self.krylov = False
        self.user_jvp: Callable[[float, Any, Any], Any] | None = None
        self.differentiable_solve: Callable[..., Any] | None = None
        # A vectorized f on (n, k) columns (scipy's vectorized=True): the differences in one call.
        self.columns: Callable[[float, Any], Any] | None = None
        self.product_evaluations = [0]  # f's evaluations in finite-difference products
        self._sparse_shift: SparseShift | None = None
        self.has_continuous_extension = False
        self.extra_evaluations = 0
        # Carried state.
        self.jacobian: Any = None
        self.jacobian_is_current = False
        self.recompute_jacobian = False
        self.njev = 0
        self.nlu = 0
        self.nfev_jacobian = 0

    # -- Jacobian and iteration matrices --------------------------------------

    def _forget_iteration_matrices(self) -> None:
        """The Jacobian changed: matrices built on the old one are stale."""

    @staticmethod
    def _same_step(h: float, factored: float) -> bool:
        """Whether an iteration matrix built for step ``factored`` serves ``h``: within 1e-10.

        Steps on a grid of ``t`` differ in their last bits (``t_{i+1} - t_i``
        of ``linspace``), and simplified Newton needs only an approximate
        matrix; a forgotten matrix (``nan``) serves nothing.
        """
        return abs(h - factored) <= 1e-10 * abs(h)

    def use_krylov(
        self, jvp: Callable[[float, Any, Any], Any] | None, differentiable: Callable[..., Any] | None = None
    ) -> None:
        """Solve the Newton systems by GMRES on products ``J v`` (see :mod:`ode_core._krylov`): from
        ``jvp(t, y, v)`` on flat arrays, else from ``jac``, else by finite differences.

        Parameters
        ----------
        jvp : callable or None
        differentiable : callable, optional
            How the array library differentiates a solve (see :class:`~ode_core._krylov.KrylovSolver`).
        """
        self.krylov = True
        self.user_jvp = jvp
        self.differentiable_solve = differentiable

    def _jacobian_point(self, fun: RightHandSide, t: float, y: Any, f0: Any) -> tuple[JacobianPoint, int]:
        """The matrix-free Jacobian at ``(t, y)`` and the evaluations it cost (``f(t, y)`` for differences)."""
        if self.user_jvp is not None:
            jvp = self.user_jvp
            return JacobianPoint(lambda v: jvp(t, y, v), t, y), 0
        if self.jac is not None:
            matrix = self.jac(t, y)
            return JacobianPoint(lambda v: matrix @ v, t, y), 0
        spent = 0
        if f0 is None:
            f0, spent = fun(t, y), 1
            self.nfev_jacobian += 1
        products = difference_jvp(self.xp, fun, t, y, f0, self.eps, self.product_evaluations)
        return JacobianPoint(products, t, y), spent

    def _evaluate_jacobian(self, fun: RightHandSide, t: float, y: Any, f0: Any) -> int:
        """Refresh ``J`` at ``(t, y)``; returns the evaluations of ``f`` spent."""
        xp = self.xp
        if self.krylov:
            self.njev += 1
            self.jacobian_is_current = True
            self.recompute_jacobian = False
            self._forget_iteration_matrices()
            self.jacobian, spent = self._jacobian_point(fun, t, y, f0)
            return spent
        if self.jac is not None and getattr(self.jac, "constant", False):
            # A constant Jacobian is taken once and never re-evaluated (not counted in njev, as scipy).
            if self.jacobian is None:
                self.jacobian = self.jac(t, y)
                self._forget_iteration_matrices()
            self.jacobian_is_current = True
            self.recompute_jacobian = False
            return 0
        self.njev += 1
        self.jacobian_is_current = True
        self.recompute_jacobian = False
        self._forget_iteration_matrices()
        if self.jac is not None:
            self.jacobian = self.jac(t, y)
            return 0
        if self.differences is not None:  # jac_sparsity: differences grouped by it, sparse
            self.jacobian = self.differences.estimate(t, y, f0)
            self.nfev_jacobian += self.differences.evaluations
            return self.differences.evaluations
        # Forward differences, one column per component, with Hairer's step
        # sqrt(eps * max(1e-5, |y_j|)) (RADAU5): relative to the component, so
        # tiny components (Robertson's y2 ~ 1e-7) are resolved as well as
        # large ones, but bounded below where round-off in f would dominate.
        if self.columns is not None:
            return self._vectorized_differences(t, y, f0)
        columns = []
        # A complex state takes real steps (as scipy's num_jac): f is holomorphic where the Newton
        # iteration on complex values makes sense, so a real step gives its derivative.
        scalar = complex if xp.isdtype(y.dtype, "complex floating") else float
        for j in range(self.n):
            y_j = scalar(y[j])
            step = math.sqrt(self.eps * max(1e-5, abs(y_j)))
            perturbed = xp.asarray(y, copy=True)
            perturbed[j] = y_j + step
            step = (scalar(perturbed[j]) - y_j).real  # the step actually representable
            columns.append((fun(t, perturbed) - f0) / step)
        self.jacobian = xp.stack(columns, axis=1)
        self.nfev_jacobian += self.n
        return self.n

    def _vectorized_differences(self, t: float, y: Any, f0: Any) -> int:
        """The same forward differences as the column loop, all columns in one call of a vectorized ``f``
        (scipy's ``vectorized=True``), counted as one evaluation."""
        xp = self.xp
        magnitudes = xp.abs(y)  # real, for a complex state too (its steps are real, as the loop's)
        steps = xp.sqrt(self.eps * xp.maximum(magnitudes, xp.asarray(1e-5, dtype=magnitudes.dtype)))
        perturbed = y[:, None] + xp.astype(xp.eye(self.n, dtype=steps.dtype, device=self.device) * steps, y.dtype)
        taken = xp.linalg.diagonal(perturbed) - y  # the steps actually representable
        if xp.isdtype(taken.dtype, "complex floating"):
            taken = xp.real(taken)
        assert self.columns is not None
        self.jacobian = (self.columns(t, perturbed) - f0[:, None]) / taken[None, :]
        self.nfev_jacobian += 1
        return 1

    def _fresh_jacobian(self, fun: RightHandSide, t: float, y: Any) -> int:
        """``J`` at the step's start. ``f0`` there may be the previous step's
        Newton-derived slope rather than ``f(t, y)``, and differences need the
        true value, so it is evaluated afresh (with a user ``jac`` it is not
        needed)."""
        if self.jac is not None or self.user_jvp is not None:
            return self._evaluate_jacobian(fun, t, y, None)
        self.nfev_jacobian += 1  # f(t, y) for the differences
        return 1 + self._evaluate_jacobian(fun, t, y, fun(t, y))

    @property
    def identity(self) -> Any:
        """The dense ``n x n`` identity, made once (for a 2048-state system, 32 MB and 0.07 s)."""
        if self._identity is None:
            self._identity = self.xp.eye(self.n, dtype=self.dtype, device=self.device)
        return self._identity

    def _factorise(self, a: Any, b: float) -> Factors | None:
        """The LU factors of ``a I + b J``, or ``None`` when it is singular or not finite (matrix-free:
        a GMRES solver on its products)."""
        jacobian = self.jacobian
        if self.krylov:
            return KrylovSolver(self.xp, a, b, jacobian, self.differentiable_solve)
        if is_sparse(jacobian):
            # The pattern joined with the diagonal, once per Jacobian; each shift fills its values.
            if self._sparse_shift is None or self._sparse_shift.jacobian is not jacobian:
                self._sparse_shift = SparseShift(jacobian)
            matrix = self._sparse_shift.matrix(a, b)
        else:
            matrix = shifted(self.xp, self.identity, a, b, jacobian)
        factors = factorise(self.xp, matrix)
        self.nlu += 1
        return factors

    def adjust_step(self, h: float, h_next: float) -> float:
        """Keep ``h`` when the controller would grow it only a little."""
        if self.recompute_jacobian:
            return h_next
        ratio = h_next / h
        return h if 1.0 <= ratio < HOLD_STEP_BELOW_GROWTH else h_next

    def _cannot_converge(self, rate: float, remaining: int, delta_norm: float) -> bool:
        """Whether a simplified Newton iteration converging at ``rate`` cannot
        reach the tolerance in the ``remaining`` iterations (Hairer & Wanner,
        IV.8, (8.13))."""
        return rate >= 1.0 or rate**remaining / (1.0 - rate) * delta_norm > self.newton_tolerance

    def _has_converged(self, iteration: int, rate: float, delta_norm: float) -> bool:
        """Whether the error left after this correction is below the tolerance."""
        return delta_norm == 0.0 or (iteration > 0 and rate / (1.0 - rate) * delta_norm < self.newton_tolerance)

    def _norm_of_stages(self, increments: Any, scale: Any) -> float:
        """RMS over the stages (rows of ``increments``) of each stage's scaled error norm (for the
        default norm, the RMS norm of the whole ``s n`` vector)."""
        stages = increments.shape[0]
        return math.sqrt(sum(self.norm(increments[i] / scale) ** 2 for i in range(stages)) / stages)

    def _verdict(
        self, iteration: int, iterations: int, delta_norm: float, previous_norm: float, rate: float
    ) -> tuple[str, float]:
        """Simplified Newton's verdict on the correction of ``iteration`` (of ``iterations``), whose
        scaled norm is ``delta_norm``: ``("failed", rate)`` (not finite, or too slow to converge in
        the iterations left), ``("converged", rate)`` (apply it and stop: below round-off, or the
        error left below the tolerance) or ``("continue", rate)`` (apply it and iterate), with the
        convergence rate so far. The coupled-stage steppers share it."""
        if not math.isfinite(delta_norm):
            return "failed", rate
        if delta_norm <= self.roundoff_norm:
            # Already at round-off (an exact guess, a linear f): the ratio of
            # two round-off corrections is no convergence rate.
            return "converged", 0.0
        if iteration > 0:
            rate = delta_norm / previous_norm if previous_norm > 0 else 0.0
            if self._cannot_converge(rate, iterations - 1 - iteration, delta_norm):
                return "failed", rate
        return ("converged" if self._has_converged(iteration, rate, delta_norm) else "continue"), rate

    # -- the step -------------------------------------------------------------

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
        raise NotImplementedError

    def step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One step; returns ``(y1, stages, evaluations)`` with ``y1 = None``
        when Newton failed even with a fresh Jacobian (retry with a smaller
        step). The evaluations include the finite-difference products of a
        matrix-free Newton."""
        before = self.product_evaluations[0]
        y1, stages, evaluations = self._newton_step(fun, t, y, f0, h, t_end_eval)
        return y1, stages, evaluations + self.product_evaluations[0] - before

    def _newton_step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None
    ) -> tuple[Any, Any, int]:
        evaluations = 0
        if self.jacobian is None or (self.recompute_jacobian and not self.jacobian_is_current):
            evaluations += self._fresh_jacobian(fun, t, y)
        while True:
            y1, stages, spent, converged, slowest_rate = self._attempt(fun, t, y, f0, h, t_end_eval)
            evaluations += spent
            if converged:
                # Slow convergence (more than two iterations at a rate above
                # 1e-3, scipy's rule for Radau): a fresh Jacobian next step.
                self.recompute_jacobian = slowest_rate > 1e-3
                self.jacobian_is_current = False
                return y1, stages, evaluations
            if self.jacobian_is_current:
                self.jacobian_is_current = False
                self.recompute_jacobian = True
                if self.fixed_step and self.full_newton_fallback:
                    y1, stages, spent, converged, _ = self._attempt(fun, t, y, f0, h, t_end_eval, full_newton=True)
                    evaluations += spent
                    self.jacobian_is_current = False
                    if converged:
                        return y1, stages, evaluations
                return None, None, evaluations
            evaluations += self._fresh_jacobian(fun, t, y)


class DiagonallyImplicitRungeKutta(NewtonStepper):
    """Steps of one diagonally implicit tableau within one solve.

    Unlike the explicit stepper this object carries state from step to step
    (the Jacobian, the inverted iteration matrix, the last Newton rate), so one
    is made per solve.

    Parameters
    ----------
    tableau : ButcherTableau
        With ``a`` lower triangular (``a[i][j] == 0`` for ``j > i``).
    xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations
        As for :class:`NewtonStepper`.
    fixed_step : bool
        The step cannot be shrunk: when simplified Newton fails even with a
        fresh Jacobian, fall back on full Newton (a Jacobian at every
        iterate, up to ``FULL_NEWTON_ITERATIONS``) before giving up.
    """

    full_newton_fallback = True

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
        max_newton_iterations: int = 10,
        fixed_step: bool = False,
    ) -> None:
        s = tableau.n_stages
        if any(tableau.a[i][j] != 0 for i in range(s) for j in range(i + 1, s)):
            raise ValueError(f"method: {tableau.name!r} is not diagonally implicit (a must be lower triangular)")
        super().__init__(xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations, fixed_step)
        self.tableau = tableau
        self.n_stages = s
        self.nodes = [float(ci) for ci in tableau.c]
        self.diagonal = [float(tableau.a[i][i]) for i in range(s)]
        self.end_nodes = [i for i, ci in enumerate(tableau.c) if ci == 1]
        self.stage_rows = [_vector(xp, tableau.a[i][:i], dtype, device) for i in range(s)]
        self.weights = _vector(xp, tableau.b, dtype, device)
        errors = tableau.error_weights
        self.error_weights = None if errors is None else _vector(xp, errors, dtype, device)
        self.error_order = tableau.controller_order
        # First stage explicit (c = 0, a row zero): it is f0, known.
        self.explicit_first_stage = tableau.c[0] == 0 and self.diagonal[0] == 0
        # Stiffly accurate with an explicit first stage: y1 is the last stage,
        # whose derivative starts the next step.
        self.fsal = self.explicit_first_stage and s > 1 and tableau.c[-1] == 1 and tableau.a[-1] == tableau.b
        self.iteration_factors: Factors | None = None
        self.factored_h_gamma = math.nan

    def _forget_iteration_matrices(self) -> None:
        self.factored_h_gamma = math.nan

    def _ensure_iteration_matrix(self, h_gamma: float) -> bool:
        """Factorise ``I - h gamma J`` unless already done for this ``h gamma``."""
        if self._same_step(h_gamma, self.factored_h_gamma):
            return True
        factors = self._factorise(1.0, -h_gamma)
        if factors is None:
            return False
        self.iteration_factors = factors
        self.factored_h_gamma = h_gamma
        return True

    # -- the step -------------------------------------------------------------

    def _solve_stage(
        self,
        fun: RightHandSide,
        time: float,
        psi: Any,
        guess: Any,
        h_gamma: float,
        scale: Any,
        full_newton: bool = False,
    ) -> tuple[Any, int, bool, float]:
        """Simplified (or, with ``full_newton``, full) Newton for
        ``Y = psi + h gamma f(time, Y)``.

        Returns ``(Y, evaluations, converged, rate)``.
        """
        stage_value = guess
        previous_norm = math.nan
        rate = math.nan
        evaluations = 0
        iterations = FULL_NEWTON_ITERATIONS if full_newton else self.max_newton_iterations
        for iteration in range(iterations):
            value = fun(time, stage_value)
            evaluations += 1
            if full_newton:
                evaluations += self._evaluate_jacobian(fun, time, stage_value, value)
                if not self._ensure_iteration_matrix(h_gamma):
                    return stage_value, evaluations, False, rate
            residual = stage_value - psi - h_gamma * value
            delta = -self.iteration_factors.solve(residual)  # type: ignore[union-attr]
            delta_norm = self.norm(delta / scale)
            if not math.isfinite(delta_norm):
                return stage_value, evaluations, False, rate
            if delta_norm <= self.roundoff_norm:
                # Already at round-off (an exact predictor, a linear f): the
                # ratio of two round-off corrections is no convergence rate.
                return stage_value + delta, evaluations, True, 0.0
            if iteration > 0:
                rate = delta_norm / previous_norm if previous_norm > 0 else 0.0
                remaining = iterations - 1 - iteration
                if full_newton:
                    # Far from the root full Newton may stall before it
                    # converges quadratically: only a blow-up ends it early.
                    if rate >= 2.0:
                        return stage_value, evaluations, False, rate
                    rate = min(rate, 0.5)
                elif self._cannot_converge(rate, remaining, delta_norm):
                    return stage_value, evaluations, False, rate
            stage_value = stage_value + delta
            if self._has_converged(iteration, rate, delta_norm):
                return stage_value, evaluations, True, rate
            previous_norm = delta_norm
        return stage_value, evaluations, False, rate

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
        xp = self.xp
        s = self.n_stages
        stages = xp.empty((s, self.n), dtype=self.dtype, device=self.device)
        scale = self.atol + self.rtol * xp.abs(y)
        times = [t + node * h for node in self.nodes]
        if t_end_eval is not None:
            for i in self.end_nodes:
                times[i] = t_end_eval
        evaluations = 0
        slowest_rate = 0.0
        start = 0
        if self.explicit_first_stage:
            stages[0] = f0
            start = 1
        stage_value = y
        for i in range(start, s):
            psi = y + h * (self.stage_rows[i] @ stages[:i]) if i > 0 else y
            gamma = self.diagonal[i]
            if gamma == 0.0:
                stages[i] = fun(times[i], psi)
                evaluations += 1
                continue
            h_gamma = h * gamma
            if not self._ensure_iteration_matrix(h_gamma):
                return None, None, evaluations, False, math.inf
            # Predictor: the previous stage's value (y for the first). Explicit
            # extrapolation along a slope is poor in stiff directions, where
            # the slope is large but the stage value barely moves.
            stage_value, spent, converged, rate = self._solve_stage(
                fun, times[i], psi, stage_value, h_gamma, scale, full_newton
            )
            evaluations += spent
            if not converged:
                return None, None, evaluations, False, rate
            if spent > 2 and rate == rate:
                slowest_rate = max(slowest_rate, rate)
            stages[i] = (stage_value - psi) / h_gamma
        y1 = stage_value if self.fsal else y + h * (self.weights @ stages)
        return y1, stages, evaluations, True, slowest_rate

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """Norm of the embedded local error over ``atol + rtol * max(|y|, |y1|)``
        (in the stepper's own norm when ``norm`` is None)."""
        xp = self.xp
        scale = atol + rtol * xp.maximum(xp.abs(y), xp.abs(y1))
        return (norm or self.norm)((h * (self.error_weights @ stages)) / scale)

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """Cubic Hermite coefficients through ``y, y1`` with slopes ``f0, f1``."""
        slope0 = stages[0] if self.explicit_first_stage else f0
        return hermite_coefficients(self.xp, y, y1, slope0, f1, h)
