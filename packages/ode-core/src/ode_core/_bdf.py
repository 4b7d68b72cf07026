"""Variable-order BDF/NDF (orders 1 to 5): the method of scipy's ``BDF`` and MATLAB's ``ode15s``.

Shampine & Reichelt, "The MATLAB ODE Suite", SIAM J. Sci. Comput. 18 (1997):
the numerical differentiation formulas (NDF) in the quasi-constant step size
form. The solution's backward differences ``D`` (``D_0 = y_n``, ``D_j =
nabla^j y_n``) at the current spacing ``h`` carry the history; a step

* predicts ``y^(0) = sum_{j<=q} D_j``,
* solves ``(1 - kappa_q) gamma_q d = h f(t_{n+1}, y^(0) + d) - psi`` for the
  correction ``d = y_{n+1} - y^(0)`` by simplified Newton with the matrix
  ``I - (h / alpha_q) J`` (LU-factorised, :mod:`ode_core._linalg`), where
  ``psi = sum_{j=1..q} gamma_j D_j / alpha_q``, ``gamma_j = sum_{i<=j} 1/i`` and
  ``alpha_q = (1 - kappa_q) gamma_q``,
* estimates its error as ``(kappa_q gamma_q + 1/(q+1)) d``,
* and, accepted, updates ``D`` from ``d``.

A change of step size multiplies ``D`` by ``R(q, rho) U(q)`` (op. cit. (2.7)),
so the formulas stay those of equal steps. After ``q + 1`` steps of one size
the order moves to whichever of ``q - 1, q, q + 1`` allows the largest next
step (error estimates from ``D_q`` and ``D_{q+2}``). The ``kappa`` of the NDFs
are the paper's Table 1 (as scipy's ``bdf.py``); ``kappa = 0`` is the BDF.

Here the method is a :class:`BDFMethod` (checked data, like a tableau), its
steps a :class:`BDFStepper` in ode-core's one loop, and its step size and
order chosen by a :class:`BDFController` that asks the stepper for the
estimates it keeps. The loop's landings (output times, ``max_step``) and its
halving after a Newton failure reach the stepper as a step size it did not
propose; it rescales ``D`` to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ._arrays import is_finite
from ._controllers import ControllerState
from ._differences import GroupedDifferences
from ._implicit_rk import NewtonStepper, RightHandSide
from ._linalg import Factors

__all__ = ["BDF", "BDFController", "BDFMethod", "BDFStepper"]

# Shampine & Reichelt (1997), Table 1 (scipy's bdf.py: kappa = [0, -0.1850, -1/9, -0.0823, -0.0415, 0]).
_NDF_KAPPA = (
    Fraction(0),
    Fraction(-1850, 10000),
    Fraction(-1, 9),
    Fraction(-823, 10000),
    Fraction(-415, 10000),
    Fraction(0),
)
# scipy's BDF: four simplified Newton iterations per attempt, step factors within [0.2, 10].
NEWTON_ITERATIONS = 4
MIN_FACTOR, MAX_FACTOR = 0.2, 10.0


@dataclass(frozen=True)
class BDFMethod:
    """A variable-order backward differentiation method, as checked data.

    It offers the attributes of :class:`~ode_core.ButcherTableau` that a
    solve asks of its method: implicit, adaptive (it chooses its steps and
    orders), and its slope at each step's end known from the Newton
    iteration (``fsal``).

    Parameters
    ----------
    name : str
    kappa : tuple of Fraction, length max_order + 1
        The NDF coefficients per order (index 0 unused); zeros give the BDF.
    max_order : int
        1 to 5 (the BDFs above 6 are not zero-stable; the NDFs are given to 5).
    citation : str
    """

    name: str
    kappa: tuple[Fraction, ...]
    max_order: int = 5
    citation: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        if isinstance(self.max_order, bool) or not isinstance(self.max_order, int) or not 1 <= self.max_order <= 5:
            raise ValueError(
                f"BDFMethod {self.name!r}: max_order: expected an integer from 1 to 5, got {self.max_order!r}"
            )
        if len(self.kappa) != self.max_order + 1 or not all(isinstance(k, Fraction) for k in self.kappa):
            raise ValueError(
                f"BDFMethod {self.name!r}: kappa: expected {self.max_order + 1} Fractions, got {self.kappa!r}"
            )

    # What a solve asks of its method (as of a ButcherTableau).
    explicit = False
    implicit = True
    diagonally_implicit = False
    adaptive = True
    fsal = True
    steps_onto_outputs = False

    @property
    def order(self) -> int:
        """The highest order it steps at."""
        return self.max_order

    @property
    def controller_order(self) -> int:
        """The order the first step is chosen for (it starts at order 1, as scipy's BDF)."""
        return 1

    @property
    def gamma(self) -> tuple[Fraction, ...]:
        """``gamma_q = sum_{i=1..q} 1/i`` (``gamma_0 = 0``)."""
        return tuple(sum((Fraction(1, i) for i in range(1, q + 1)), Fraction(0)) for q in range(self.max_order + 2))

    @property
    def alpha(self) -> tuple[Fraction, ...]:
        """``alpha_q = (1 - kappa_q) gamma_q``."""
        return tuple((1 - k) * g for k, g in zip(self.kappa, self.gamma))

    @property
    def error_constants(self) -> tuple[Fraction, ...]:
        """``kappa_q gamma_q + 1/(q+1)``, of orders 0 to ``max_order + 1`` (the last for order selection)."""
        kappa = (*self.kappa, Fraction(0))
        return tuple(kappa[q] * g + Fraction(1, q + 1) for q, g in enumerate(self.gamma))

    def __repr__(self) -> str:
        return f"BDFMethod({self.name!r}, orders 1-{self.max_order})"


BDF = BDFMethod(
    "bdf",
    _NDF_KAPPA,
    citation="Shampine & Reichelt, The MATLAB ODE Suite, SIAM J. Sci. Comput. 18 (1997): the NDFs, orders 1-5",
)


def _rescaling(order: int, factor: float) -> np.ndarray:
    """``R(order, factor)``: (order + 1, order + 1), op. cit. (2.7)."""
    i = np.arange(1, order + 1)[:, None]
    j = np.arange(1, order + 1)
    matrix = np.zeros((order + 1, order + 1))
    matrix[1:, 1:] = (i - 1 - factor * j) / i
    matrix[0] = 1
    return np.cumprod(matrix, axis=0)


def _newton_polynomials(order: int) -> np.ndarray:
    """``P[j, k]``: the coefficient of ``theta^k`` in ``prod_{m<j} (theta - 1 + m) / (m + 1)``, ``j <= order``.

    With ``D`` the backward differences at ``t_{n+1}`` and spacing ``h``, the
    interpolant over the step ``[t_n, t_{n+1}]`` is ``sum_j D_j P_j(theta)``,
    ``theta = (t - t_n) / h`` (Newton's backward formula).
    """
    table = np.zeros((order + 1, order + 1))
    polynomial = np.array([1.0])
    table[0, 0] = 1.0
    for j in range(1, order + 1):
        m = j - 1
        polynomial = np.convolve(polynomial, np.array([(m - 1.0) / (m + 1), 1.0 / (m + 1)]))
        table[j, : polynomial.size] = polynomial
    return table


class BDFStepper(NewtonStepper):
    """Steps of a :class:`BDFMethod` within one solve (it carries ``D``, the order and the Jacobian).

    Implements ode-core's :class:`~ode_core.Stepper` protocol. Its
    ``stages`` are one row, the slope at the step's end, ``(psi + d) / c``
    from the converged Newton equation (no evaluation of ``f``).

    Parameters
    ----------
    method : BDFMethod
    xp, dtype, device, n, jac, atol, rtol, norm
        As :class:`~ode_core._implicit_rk.NewtonStepper` takes them.
    """

    fsal = True

    def __init__(
        self,
        method: BDFMethod,
        xp: Any,
        dtype: Any,
        device: Any,
        n: int,
        jac: Callable[[float, Any], Any] | GroupedDifferences | None,
        atol: Any,
        rtol: Any,
        norm: Callable[[Any], float],
    ) -> None:
        super().__init__(xp, dtype, device, n, jac, atol, rtol, norm, NEWTON_ITERATIONS, fixed_step=False)
        self.method = method
        self.tableau = method
        self.max_order = method.max_order
        self.kappa = [float(k) for k in method.kappa]
        self.gamma = [float(g) for g in method.gamma]
        self.alpha = [float(a) for a in method.alpha]
        self.error_constants = [float(e) for e in method.error_constants]
        self.error_order = method.controller_order
        self.has_continuous_extension = True
        self.extra_evaluations = 0
        self.default_controller = BDFController(self)
        # Carried from step to step.
        self.differences_table: list[Any] | None = None  # D_0 .. D_{max_order + 2}, rows (n,)
        self.spacing = math.nan  # |h| of D
        self.order = 1
        self.equal_steps = 0
        self.factors: Factors | None = None
        self.factored_c = math.nan
        # The last attempt's results, for error_ratio, the controller and the dense output.
        self.correction: Any = None
        self.attempt_scale: Any = None
        self.safety = 0.9
        self.cached_error_ratio: tuple[Any, float] | None = None
        self.dense: tuple[int, Any] | None = None

    # -- the history ----------------------------------------------------------

    def _rescale(self, factor: float) -> None:
        """``D`` to a spacing ``factor`` times the current (op. cit. (2.7)), in place of the first ``order + 1``."""
        table = self.differences_table
        assert table is not None
        order = self.order
        product = _rescaling(order, factor) @ _rescaling(order, 1.0)
        weights = self.xp.asarray(product.T, dtype=self.dtype, device=self.device)
        rescaled = weights @ self.xp.stack(table[: order + 1])
        for i in range(order + 1):
            table[i] = rescaled[i]
        self.spacing *= factor
        self.equal_steps = 0

    def _forget_iteration_matrices(self) -> None:
        self.factored_c = math.nan

    def restart(self) -> None:
        """Forget the history (after a jump of ``f`` or of the state): order 1 from the next step."""
        self.differences_table = None
        self.order = 1
        self.equal_steps = 0

    # -- the step -------------------------------------------------------------

    def _newton_step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One attempt from ``(t, y)`` over ``h``; ``(None, None, evaluations)`` when Newton fails (the
        body of :meth:`NewtonStepper.step`, which adds a matrix-free Newton's products).

        Parameters
        ----------
        fun, t, y, f0, h, t_end_eval
            As :meth:`ode_core.Stepper.step` takes them.

        Returns
        -------
        y1 : array, shape (n,), or None
        stages : array, shape (1, n)
            The slope at the step's end.
        evaluations : int
        """
        xp = self.xp
        evaluations = 0
        h_abs = abs(h)
        if self.differences_table is None:
            zero = xp.zeros_like(y)
            self.differences_table = [y, f0 * h] + [zero] * (self.max_order + 1)
            self.spacing, self.order, self.equal_steps = h_abs, 1, 0
        elif h_abs != self.spacing:
            self._rescale(h_abs / self.spacing)
        if self.jacobian is None:  # the first step's, at (t0, y0)
            evaluations += self._evaluate_jacobian(fun, t, y, f0)
        table, order = self.differences_table, self.order
        t_new = t + h if t_end_eval is None else t_end_eval
        predicted = table[0]
        for j in range(1, order + 1):
            predicted = predicted + table[j]
        scale = self.atol + self.rtol * xp.abs(predicted)
        psi = self.gamma[1] * table[1]
        for j in range(2, order + 1):
            psi = psi + self.gamma[j] * table[j]
        psi = psi / self.alpha[order]
        c = h / self.alpha[order]
        jacobian_is_current = False
        while True:
            if not self._same_step(c, self.factored_c):
                factors = self._factorise(1.0, -c)
                if factors is None:
                    return None, None, evaluations
                self.factors, self.factored_c = factors, c
            converged, iterations, y_new, correction, spent = self._newton(fun, t_new, predicted, c, psi, scale)
            evaluations += spent
            if converged:
                break
            if jacobian_is_current:
                return None, None, evaluations
            # A fresh Jacobian at the prediction, as scipy's BDF, and once more.
            if self.jac is None and self.user_jvp is None:
                self.nfev_jacobian += 1  # f at the prediction, for the differences
                evaluations += 1 + self._evaluate_jacobian(fun, t_new, predicted, fun(t_new, predicted))
            else:
                evaluations += self._evaluate_jacobian(fun, t_new, predicted, None)
            jacobian_is_current = True
        self.safety = 0.9 * (2 * NEWTON_ITERATIONS + 1) / (2 * NEWTON_ITERATIONS + iterations)
        self.correction = correction
        error = self.error_constants[order] * correction
        self.attempt_scale = self.atol + self.rtol * xp.abs(y_new)
        self.cached_error_ratio = (y_new, float(self.norm(error / self.attempt_scale)))
        slope = (psi + correction) / c
        return y_new, xp.reshape(slope, (1, self.n)), evaluations

    def _newton(
        self, fun: RightHandSide, t_new: float, predicted: Any, c: float, psi: Any, scale: Any
    ) -> tuple[bool, int, Any, Any, int]:
        """scipy's ``solve_bdf_system``: ``(converged, iterations, y, d, evaluations)``."""
        xp = self.xp
        factors = self.factors
        assert factors is not None
        y = predicted
        correction = xp.zeros_like(predicted)
        previous_norm = math.nan
        rate = math.nan
        evaluations = 0
        for k in range(NEWTON_ITERATIONS):
            value = fun(t_new, y)
            evaluations += 1
            if not is_finite(xp, value):
                break
            delta = factors.solve(c * value - psi - correction)
            delta_norm = float(self.norm(delta / scale))
            if k > 0:
                rate = delta_norm / previous_norm if previous_norm > 0 else 0.0
                if rate >= 1.0 or rate ** (NEWTON_ITERATIONS - k) / (1.0 - rate) * delta_norm > self.newton_tolerance:
                    break
            y = y + delta
            correction = correction + delta
            if delta_norm == 0.0 or (k > 0 and rate / (1.0 - rate) * delta_norm < self.newton_tolerance):
                return True, k + 1, y, correction, evaluations
            previous_norm = delta_norm
        return False, NEWTON_ITERATIONS, y, correction, evaluations

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """The norm of ``(kappa_q gamma_q + 1/(q+1)) d`` over ``atol + rtol |y1|``, computed by the step."""
        if self.cached_error_ratio is None or self.cached_error_ratio[0] is not y1:
            raise RuntimeError("error_ratio: no estimate for this step")
        return self.cached_error_ratio[1]

    # -- acceptance, order and the next step (the controller's) --------------

    def rejected_factor(self, ratio: float) -> float:
        """The step factor after a rejected step with error ``ratio``."""
        if not ratio < math.inf:  # inf or nan
            return MIN_FACTOR
        factor: float = self.safety * float(ratio) ** (-1.0 / (self.order + 1))
        return max(MIN_FACTOR, factor)

    def accept(self, ratio: float) -> float:
        """Update ``D`` with the accepted step's correction and choose the next order; the step factor."""
        xp = self.xp
        table = self.differences_table
        assert table is not None and self.correction is not None
        order, d = self.order, self.correction
        table[order + 2] = d - table[order + 1]
        table[order + 1] = d
        for i in reversed(range(order + 1)):
            table[i] = table[i] + table[i + 1]
        # The step's interpolant: Newton's backward formula on D at this spacing and order.
        self.dense = (order, xp.stack(table[: order + 1]))
        self.equal_steps += 1
        if self.equal_steps < order + 1:
            return 1.0
        scale = self.attempt_scale
        low = float(self.norm(self.error_constants[order - 1] * table[order] / scale)) if order > 1 else math.inf
        high = (
            float(self.norm(self.error_constants[order + 1] * table[order + 2] / scale))
            if order < self.max_order
            else math.inf
        )
        norms = (low, ratio, high)
        with np.errstate(divide="ignore"):
            factors = [
                (math.inf if value == 0.0 else value ** (-1.0 / (q + 1)))
                for q, value in zip((order - 1, order, order + 1), norms)
            ]
        best = int(np.argmax(factors))
        self.order = order + best - 1
        self.equal_steps = 0
        return min(MAX_FACTOR, self.safety * factors[best])

    def adjust_step(self, h: float, h_next: float) -> float:
        """The controller's proposal as it is (the NDF's own rule)."""
        return h_next

    # -- dense output -----------------------------------------------------------

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """Coefficients ``C`` (order, n) of the step's interpolant, Newton's backward formula on ``D``.

        Its constant term is ``y`` (the formula passes through the step's
        start), so ``y(t + theta h) = y + sum_k theta^k C_k``.
        """
        assert self.dense is not None  # set when the step was accepted
        order, differences = self.dense
        table = _newton_polynomials(order)[:, 1:]  # (order + 1, order): theta^1 .. theta^order
        weights = self.xp.asarray(table.T, dtype=self.dtype, device=self.device)
        return weights @ differences


class BDFController:
    """The step size and order of a :class:`BDFStepper`: its own rule, scipy's BDF's.

    A rejected step shrinks by ``max(0.2, safety r^(-1/(q+1)))`` (``safety``
    lower the more Newton iterations it took); an accepted one keeps its size
    until ``q + 1`` equal steps are taken, then moves to the order among
    ``q - 1, q, q + 1`` that allows the largest step (at most 10 times).

    Parameters
    ----------
    stepper : BDFStepper
    """

    def __init__(self, stepper: BDFStepper) -> None:
        self.stepper = stepper

    def init(self, error_order: int) -> ControllerState:
        """Nothing carried (the stepper holds the history).

        Parameters
        ----------
        error_order : int

        Returns
        -------
        ControllerState
        """
        return ControllerState((1.0, 0.0, 0.0), 1.0, 1.0, False)

    def adapt(self, h: float, error_ratio: float, state: ControllerState) -> tuple[bool, float, ControllerState]:
        """Accept or reject and propose the next step.

        Parameters
        ----------
        h : float
        error_ratio : float
        state : ControllerState

        Returns
        -------
        accepted : bool
        h_next : float
        state : ControllerState
        """
        if not error_ratio <= 1.0:
            return False, h * self.stepper.rejected_factor(error_ratio), state._replace(last_rejected=True)
        return True, h * self.stepper.accept(error_ratio), state._replace(last_rejected=False)
