"""Radau IIA (order 5) steps: coupled stages solved by transformed simplified Newton.

The three stages of Radau IIA are coupled, so the stage increments
``Z_i = Y_i - y`` solve one system of ``3 n`` equations,

    Z = h (A kron I) F(Z),    F_i(Z) = f(t + c_i h, y + Z_i).

Simplified Newton with the iteration matrix ``I - h A kron J`` would need a
``3n x 3n`` matrix. Following Hairer & Wanner (*Solving ODEs II*, IV.8), the
equations are multiplied by ``(h A)^{-1}`` and the stages transformed by
``T``, where ``T^{-1} A^{-1} T = diag(mu, [[alpha, beta], [-beta, alpha]])``
(one real eigenvalue and a complex pair). In ``W = T^{-1} Z`` the system
splits into an ``n x n`` real one, ``(mu/h I - J)``, and one for the complex
pair, the ``2n x 2n`` block ``[[alpha/h I - J, beta/h I], [-beta/h I,
alpha/h I - J]]``. For a real state that block is the complex ``n x n``
system ``((alpha - i beta)/h I - J) w = r_1 + i r_2`` (``w = x_1 + i x_2``),
as RADAU5 and scipy solve it: a quarter of the real block's factorisation
work, and sparse with ``J``. A complex state keeps the block. Both matrices
are LU-factorised once per step size and Jacobian and reused by every
iteration (:mod:`ode_core._linalg`), as ``nlu`` counts.

Newton starts from the previous step's collocation polynomial, extrapolated
(or, after a rejection, evaluated inside the rejected step), and its
convergence is judged as in the diagonally implicit stepper. The error
estimate is Hairer's: the embedded difference of the tableau (``gamma0 h f0 +
...``) filtered by ``(I - h gamma0 J)^{-1}`` with ``gamma0 = 1/mu``, which is
the real block's inverse again; after a rejection or on the first step an
estimate above the tolerance is refined once with ``f(t, y + err)`` (op.
cit., (8.20) and the remarks after it), as RADAU5 and scipy's Radau do.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ._arrays import is_finite
from ._controllers import PredictiveController, PredictiveState
from ._differences import GroupedDifferences
from ._implicit_rk import NewtonStepper, RightHandSide
from ._linalg import Factors, factorise, is_sparse
from ._tableau import ButcherTableau

__all__ = ["RadauIIA"]

# Hairer's RADAU5 default: more iterations rarely converge when these did not.
MAX_NEWTON_ITERATIONS = 7


@functools.lru_cache(maxsize=64)
def _starting_basis(nodes: tuple[float, ...], ratio: float, extrapolate: bool) -> np.ndarray:
    """The basis that maps the last converged increments to Newton's first guess, for a step ``ratio``
    times the last: inside it (a retry) or beyond its end (the next step). Steps of one size repeat the
    same ratio, so it is cached (numpy's small-array arithmetic costs more than the step's solves); callers
    only read it."""
    points = np.array(nodes)
    thetas = (1.0 if extrapolate else 0.0) + points * ratio
    basis = _lagrange_on_collocation_nodes(points, thetas)
    if extrapolate:
        basis[:, -1] -= 1.0  # increments from y1 = y0 + Z_3, not from y0
    return basis


def _lagrange_on_collocation_nodes(nodes: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """``L[j, i] = l_i(thetas[j])``: the Lagrange basis through ``0`` and the
    nodes, for the nodes only (the polynomial vanishes at 0, where ``Z = 0``)."""
    points = np.concatenate(([0.0], nodes))
    basis = np.ones((len(thetas), len(nodes)))
    for i, node in enumerate(nodes):
        for point in points:
            if point != node:
                basis[:, i] *= (thetas - point) / (node - point)
    return basis


class NewtonSafetyController:
    """Gustafsson's predictive controller with RADAU5's safety factor, lower the more Newton iterations
    the step took: ``min(0.9, 0.9 (1 + 2 k) / (m + 2 k))`` for ``m`` iterations of at most ``k``
    (Hairer & Wanner's RADAU5, ``FAC``; scipy's ``Radau`` the same with its own ``k``). A step that needed
    many iterations is near where Newton stops converging, and the next is kept smaller.

    Parameters
    ----------
    stepper : RadauIIA
        Whose last step's iterations it reads.
    base : PredictiveController
    """

    def __init__(self, stepper: RadauIIA, base: PredictiveController | None = None) -> None:
        self.stepper = stepper
        self.base = PredictiveController() if base is None else base
        self._controllers: dict[int, PredictiveController] = {}

    def _for(self, iterations: int) -> PredictiveController:
        controller = self._controllers.get(iterations)
        if controller is None:
            limit = self.stepper.max_newton_iterations
            safety = self.base.safety * min(1.0, (1 + 2 * limit) / (iterations + 2 * limit))
            controller = self._controllers[iterations] = dataclasses.replace(self.base, safety=safety)
        return controller

    def init(self, error_order: int) -> PredictiveState:
        """The predictive controller's start.

        Parameters
        ----------
        error_order : int

        Returns
        -------
        PredictiveState
        """
        return self.base.init(error_order)

    def adapt(self, h: float, error_ratio: float, state: PredictiveState) -> tuple[bool, float, PredictiveState]:
        """:meth:`PredictiveController.adapt` with the safety of the step's Newton iterations.

        Parameters
        ----------
        h : float
        error_ratio : float
        state : PredictiveState

        Returns
        -------
        accepted : bool
        h_next : float
        state : PredictiveState
        """
        return self._for(self.stepper.newton_iterations).adapt(h, error_ratio, state)


class RadauIIA(NewtonStepper):
    """Steps of the ``radau5`` tableau within one solve.

    Its default step-size controller is Gustafsson's predictive one with
    RADAU5's Newton-dependent safety (``default_controller``, a
    :class:`NewtonSafetyController`), as in RADAU5 and scipy's ``Radau``: the
    predictive controller rejects far fewer steps than the I controller on
    stiff problems (van der Pol, mu = 1000: 21 against 174 at ``rtol =
    1e-6``, measured before the safety's change), and with the safety radau5
    takes scipy Radau's steps to a percent (``test_controllers.py``).

    Parameters
    ----------
    tableau : ButcherTableau
        A zeroth explicit stage (``c[0] = 0``, zero row and column, zero
        weight) carrying ``f0`` for the error estimate, then three implicit
        stages whose ``3 x 3`` matrix has one real eigenvalue and a complex
        pair, stiffly accurate (``c[-1] = 1``, last row equal to ``b``), and
        an error estimate whose weight on ``f0`` equals ``1 / mu``.
    xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations, fixed_step
        As for :class:`~ode_core._implicit_rk.NewtonStepper`.

    Raises
    ------
    ValueError
        If the tableau does not have that structure.
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
        fixed_step: bool = False,
    ) -> None:
        a = np.array([[float(v) for v in row] for row in tableau.a])
        errors = tableau.error_weights
        structured = (
            tableau.n_stages == 4
            and tableau.c[0] == 0
            and tableau.b[0] == 0
            and not a[0].any()
            and not a[:, 0].any()
            and tableau.c[-1] == 1
            and tableau.a[-1] == tableau.b
            and errors is not None
        )
        if not structured:
            raise ValueError(
                f"method: {tableau.name!r} is not a three-stage stiffly accurate collocation tableau "
                "with an explicit zeroth stage for the error estimate"
            )
        assert errors is not None  # for mypy; checked above
        super().__init__(xp, dtype, device, n, jac, atol, rtol, norm, max_newton_iterations, fixed_step)
        self.tableau = tableau
        self.error_order = tableau.controller_order
        self.fsal = False  # y1 is the last stage, but f(t1, y1) is needed exactly for the next estimate
        self.has_continuous_extension = tableau.dense is not None

        matrix = a[1:, 1:]
        self.nodes = np.array([float(ci) for ci in tableau.c[1:]])
        self.node_values = tuple(float(node) for node in self.nodes)  # the cache key of the starting bases
        matrix_inverse = np.linalg.inv(matrix)
        eigenvalues, eigenvectors = np.linalg.eig(matrix_inverse)
        real = int(np.argmin(np.abs(eigenvalues.imag)))
        pair = int(np.argmax(eigenvalues.imag))
        transform = np.stack(
            (eigenvectors[:, real].real, eigenvectors[:, pair].real, eigenvectors[:, pair].imag), axis=1
        )
        transform_inverse = np.linalg.inv(transform)
        blocks = transform_inverse @ matrix_inverse @ transform
        # Python floats: a NumPy float64 scalar would promote float32 states.
        self.mu, self.alpha, self.beta = float(blocks[0, 0]), float(blocks[1, 1]), float(blocks[1, 2])
        expected = np.array([[self.mu, 0, 0], [0, self.alpha, self.beta], [0, -self.beta, self.alpha]])
        gamma0 = float(errors[0])
        if abs(eigenvalues[real].imag) > 1e-12 or not np.allclose(blocks, expected, atol=1e-12):
            raise ValueError(f"method: {tableau.name!r}: A^-1 must have one real eigenvalue and a complex pair")
        if not math.isclose(gamma0 * self.mu, 1.0, rel_tol=1e-12):
            raise ValueError(f"method: {tableau.name!r}: the error weight on f0 must be 1/mu = {1 / self.mu!r}")

        def array(values: np.ndarray) -> Any:
            return xp.asarray(values, dtype=dtype, device=device)

        self.transform = array(transform)
        self.transform_inverse = array(transform_inverse)
        self.matrix_inverse = array(matrix_inverse)
        self.error_weights = array(np.array([float(e) for e in errors]))
        dense = tableau.dense
        self.dense_weights_t = None if dense is None else array(np.array([[float(v) for v in r] for r in dense]).T)
        # Iteration matrices' factors: (mu/h I - J) and the pair's, complex n x n
        # for a real state (the real 2n block for a complex one).
        self.real_factors: Factors | None = None
        self.pair_factors: Factors | None = None
        self.complex_state = xp.isdtype(dtype, "complex floating")
        self.factored_h = math.nan
        # The last converged step's start, size and stage increments, for
        # Newton's starting guess; and the start of the last attempt.
        self.last_converged: tuple[float, float, Any] | None = None
        self.last_attempt_start: float | None = None
        self.cached_error_ratio: tuple[Any, float] | None = None
        self.n_estimates = 0
        self.newton_iterations = 1
        self.default_controller = NewtonSafetyController(self)

    # -- iteration matrices ---------------------------------------------------

    def _forget_iteration_matrices(self) -> None:
        self.factored_h = math.nan

    def _ensure_iteration_matrices(self, h: float) -> bool:
        if self._same_step(h, self.factored_h):
            return True
        xp = self.xp
        real_factors = self._factorise(self.mu / h, -1.0)
        if real_factors is None:
            return False
        if self.complex_state:
            jacobian = self.jacobian.toarray() if is_sparse(self.jacobian) else self.jacobian
            diagonal = (self.alpha / h) * self.identity - jacobian
            coupling = (self.beta / h) * self.identity
            block = xp.concat(
                (xp.concat((diagonal, coupling), axis=1), xp.concat((-coupling, diagonal), axis=1)),
                axis=0,
            )
            self.nlu += 1
            pair_factors = factorise(xp, block)
        else:
            pair_factors = self._factorise(complex(self.alpha, -self.beta) / h, -1.0)
        if pair_factors is None:
            return False
        self.real_factors, self.pair_factors, self.factored_h = real_factors, pair_factors, h
        return True

    def _solve_pair(self, first: Any, second: Any) -> tuple[Any, Any]:
        """``x_1, x_2`` of the pair's block system with right-hand sides ``first, second``."""
        xp, factors = self.xp, self.pair_factors
        assert factors is not None  # _ensure_iteration_matrices succeeded
        if self.complex_state:
            both = factors.solve(xp.concat((first, second)))
            return both[: self.n], both[self.n :]
        w = factors.solve(first + 1j * second)
        return xp.real(w), xp.imag(w)

    # -- the step -------------------------------------------------------------

    def _starting_increments(self, t: float, y: Any, h: float) -> Any:
        """Newton's first guess of ``Z``: the last collocation polynomial, or zero."""
        xp = self.xp
        if self.last_converged is not None:
            start, size, increments = self.last_converged
            end = start + size
            if start == t:  # retrying a rejected step: interpolate inside it
                basis = _starting_basis(self.node_values, h / size, False)
                return xp.asarray(basis, dtype=self.dtype, device=self.device) @ increments
            if abs(end - t) <= 1e-12 * abs(size):  # the step that ended here: extrapolate
                basis = _starting_basis(self.node_values, h / size, True)
                return xp.asarray(basis, dtype=self.dtype, device=self.device) @ increments
        return xp.zeros((3, self.n), dtype=self.dtype, device=self.device)

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
        xp, n = self.xp, self.n
        retry = self.last_attempt_start == t
        self.last_attempt_start = t
        if not self._ensure_iteration_matrices(h):
            return None, None, 0, False, math.inf
        times = [t + node * h for node in self.node_values]
        if t_end_eval is not None:
            times[-1] = t_end_eval
        scale = self.atol + self.rtol * xp.abs(y)
        increments = self._starting_increments(t, y, h)
        transformed = self.transform_inverse @ increments
        evaluations = 0
        previous_norm = math.nan
        rate = math.nan
        converged = False
        iterations = self.max_newton_iterations
        for iteration in range(iterations):
            values = xp.stack([fun(times[i], y + increments[i]) for i in range(3)])
            evaluations += 3
            if not is_finite(xp, values):
                return None, None, evaluations, False, rate
            rhs = self.transform_inverse @ values
            residual_real = (self.mu / h) * transformed[0] - rhs[0]
            first, second = self._solve_pair(
                (self.alpha / h) * transformed[1] + (self.beta / h) * transformed[2] - rhs[1],
                (-self.beta / h) * transformed[1] + (self.alpha / h) * transformed[2] - rhs[2],
            )
            real = self.real_factors.solve(residual_real)  # type: ignore[union-attr]
            delta = -xp.stack((real, first, second))
            delta_norm = self._norm_of_stages(delta, scale)
            verdict, rate = self._verdict(iteration, iterations, delta_norm, previous_norm, rate)
            if verdict == "failed":
                return None, None, evaluations, False, rate
            transformed = transformed + delta
            increments = self.transform @ transformed
            if verdict == "converged":
                converged = True
                self.newton_iterations = iteration + 1
                break
            previous_norm = delta_norm
        if not converged:
            return None, None, evaluations, False, rate
        self.last_converged = (t, h, increments)
        # Stage derivatives from the increments, K = A^{-1} Z / h: unlike
        # f(Y_i) they do not amplify the Newton error in stiff components.
        stages = xp.concat((xp.reshape(f0, (1, n)), (self.matrix_inverse @ increments) / h), axis=0)
        y1 = y + increments[2]
        if not self.fixed_step:
            evaluations += self._estimate_error(fun, t, y, y1, f0, h, stages, refine=retry or self.n_estimates == 0)
        slowest = rate if iteration > 1 and rate == rate else 0.0
        return y1, stages, evaluations, True, slowest

    def _estimate_error(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f0: Any, h: float, stages: Any, refine: bool
    ) -> int:
        """Hairer's filtered estimate; caches its norm for :meth:`error_ratio`."""
        xp = self.xp
        self.n_estimates += 1
        scale = self.atol + self.rtol * xp.maximum(xp.abs(y), xp.abs(y1))
        gamma0_h = h / self.mu
        unfiltered = h * (self.error_weights @ stages)
        # (I - h gamma0 J)^{-1} v = (mu / h) (mu/h I - J)^{-1} v
        error = (self.mu / h) * self.real_factors.solve(unfiltered)  # type: ignore[union-attr]
        ratio = self.norm(error / scale)
        evaluations = 0
        if refine and ratio > 1.0:
            refined = unfiltered + gamma0_h * (fun(t, y + error) - f0)
            evaluations = 1
            error = (self.mu / h) * self.real_factors.solve(refined)  # type: ignore[union-attr]
            ratio = self.norm(error / scale)
        self.cached_error_ratio = (y1, ratio)
        return evaluations

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """The norm of the filtered error estimate computed by the step."""
        if self.cached_error_ratio is None or self.cached_error_ratio[0] is not y1:
            raise RuntimeError("error_ratio: no estimate for this step (was it taken with a fixed step size?)")
        return self.cached_error_ratio[1]

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """The collocation polynomial's coefficients (see ``_dense``)."""
        return h * (self.dense_weights_t @ stages)
