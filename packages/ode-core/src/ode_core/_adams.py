"""Adams methods: linear multistep methods on the history of ``f``, fixed steps on any grid.

A ``k``-step Adams method integrates, over the step from ``t_n`` to ``t_n +
h``, the polynomial ``p`` through the last slopes of the solution:

    y_{n+1} = y_n + int_{t_n}^{t_n + h} p(s) ds = y_n + h sum_j beta_j f_j.

Adams--Bashforth (explicit) interpolates the ``k`` slopes at ``t_n, t_{n-1},
..., t_{n-k+1}`` and has order ``k``; Adams--Moulton (implicit) interpolates
``f_{n+1}, f_n, ..., f_{n-k+2}`` and has order ``k`` too, with a smaller
error constant. With the nodes scaled as ``x_j = (t_j - t_n) / h``, the
weights are ``beta_j = int_0^1 l_j(x) dx`` for the Lagrange basis ``l_j`` on
those nodes. On equal steps (``x = 0, -1, -2, ...``) they are the classical
rationals (Hairer, Norsett & Wanner, *Solving ODEs I*, section III.1, Tables
1.1 and 1.2), computed exactly once; on unequal ones (a grid of output times,
a last step cut short) they are computed afresh for the step from the same
formula in float64: variable-coefficient Adams, exact on polynomials of degree
``k - 1`` whatever the grid.

The predictor-corrector is ``P(EC)^m E``: predict with Adams--Bashforth,
evaluate ``f`` there, correct with Adams--Moulton, repeat while the
correction moves ``y`` by more than the tolerances allow (at most
``max_corrections`` times), and evaluate ``f`` at the result (the next step's
first slope, which the loop computes). Its order is ``k`` however many
corrections are made: the iteration is a functional one, with no Jacobian, so
it is not a method for stiff problems.

The first ``k - 1`` steps of a solve have too few slopes; a one-step starter
of the same order takes them (Kutta's 3/8 rule for order 4, as torchdiffeq's
Adams methods do). After a jump of ``f`` or an impulse on the state the loop
calls :meth:`AdamsStepper.restart`, and the slopes before it are forgotten.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

from array_api_compat import device as device_of

from ._dense import hermite_coefficients
from ._explicit_rk import explicit_stepper
from ._stepper import RightHandSide, StepperBase, provided_stepper
from ._tableau import ButcherTableau

__all__ = ["AdamsMethod", "AdamsStepper", "integrated_lagrange_weights"]

Number = TypeVar("Number", Fraction, float)

# Scaled nodes within this of -j count as equal steps (the exact weights);
# steps of linspace grids differ by a few ulps.
_EQUAL_STEPS = 1e-10


def integrated_lagrange_weights(nodes: Sequence[Number]) -> tuple[Number, ...]:
    """``int_0^1 l_j(x) dx`` for the Lagrange basis ``l_j`` on ``nodes``.

    Exact for :class:`~fractions.Fraction` nodes, float64 for floats.

    Parameters
    ----------
    nodes : sequence of Fraction or float, length k
        Distinct scaled times ``(t_j - t_n) / h``.

    Returns
    -------
    tuple, length k
        Weights with ``sum_j w_j q(x_j) = int_0^1 q`` for every polynomial
        ``q`` of degree below ``k``.
    """
    weights = []
    for j, node in enumerate(nodes):
        # l_j as monomial coefficients, lowest degree first.
        polynomial: list[Any] = [node * 0 + 1]
        denominator: Any = node * 0 + 1
        for m, other in enumerate(nodes):
            if m == j:
                continue
            shifted = [node * 0] * (len(polynomial) + 1)
            for i, coefficient in enumerate(polynomial):
                shifted[i + 1] += coefficient
                shifted[i] -= other * coefficient
            polynomial = shifted
            denominator *= node - other
        weights.append(sum(c / (i + 1) for i, c in enumerate(polynomial)) / denominator)
    return tuple(weights)


@dataclass(frozen=True)
class AdamsMethod:
    """A ``steps``-step Adams method, with or without the Moulton corrector, as checked data.

    It offers the attributes of :class:`~ode_core.ButcherTableau` that a
    solve asks of its method (``explicit``, ``implicit``, ``adaptive``, ...):
    it takes fixed steps (``step_size``, or the grid of output times) and
    solves no stage equations.

    Parameters
    ----------
    name : str
    steps : int
        ``k``: slopes the Bashforth predictor interpolates; the order.
    corrector : bool
        Whether each step corrects with Adams--Moulton (``P(EC)^m E``).
    starter : ButcherTableau
        Explicit one-step method of order at least ``steps - 1`` for the
        first ``steps - 1`` steps.
    citation : str
    max_corrections : int
        ``m``: corrector iterations at most per step.

    Raises
    ------
    ValueError, TypeError
        A field that cannot make a method, naming it.
    """

    name: str
    steps: int
    corrector: bool
    starter: ButcherTableau
    citation: str = ""
    max_corrections: int = 4

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        where = f"AdamsMethod {self.name!r}"
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 12:
            raise ValueError(f"{where}: steps: expected an integer from 1 to 12, got {self.steps!r}")
        if not isinstance(self.starter, ButcherTableau) or not self.starter.explicit:
            raise TypeError(f"{where}: starter: expected an explicit ButcherTableau, got {self.starter!r}")
        # The starter takes k - 1 steps, a number independent of h: local
        # errors O(h^(p+1)) of order p = k - 1 keep the global order k.
        if self.starter.order < self.steps - 1:
            raise ValueError(
                f"{where}: starter: {self.starter.name!r} has order {self.starter.order}; a {self.steps}-step "
                f"method needs order {self.steps - 1} at least"
            )
        if isinstance(self.max_corrections, bool) or not isinstance(self.max_corrections, int):
            raise TypeError(f"{where}: max_corrections: expected an integer, got {self.max_corrections!r}")
        if self.max_corrections < 1:
            raise ValueError(f"{where}: max_corrections: expected at least 1, got {self.max_corrections}")

    @functools.cached_property
    def bashforth(self) -> tuple[Fraction, ...]:
        """Equal-step predictor weights on ``f_n, f_{n-1}, ..., f_{n-k+1}``."""
        return integrated_lagrange_weights([Fraction(-j) for j in range(self.steps)])

    @functools.cached_property
    def moulton(self) -> tuple[Fraction, ...]:
        """Equal-step corrector weights on ``f_{n+1}, f_n, ..., f_{n-k+2}``."""
        return integrated_lagrange_weights([Fraction(1 - j) for j in range(self.steps)])

    @property
    def order(self) -> int:
        """Order of convergence, ``steps``."""
        return self.steps

    # What a solve asks of its method (as of a ButcherTableau): no stage
    # equations (the corrector is iterated, not solved), no error estimate.
    explicit = True
    implicit = False
    diagonally_implicit = False
    adaptive = False
    fsal = False
    steps_onto_outputs = False

    @property
    def controller_order(self) -> int:
        """The order (no controller drives fixed steps)."""
        return self.steps

    def __repr__(self) -> str:
        kind = "Bashforth-Moulton" if self.corrector else "Bashforth"
        return f"AdamsMethod({self.name!r}, {kind}, order {self.steps})"


class AdamsStepper(StepperBase):
    """Steps of one :class:`AdamsMethod` within one solve, keeping its slopes.

    Parameters
    ----------
    method : AdamsMethod
    xp : array namespace
    y0 : array, shape (n,)
        The flat initial state (dtype and device of the solve).
    fun : callable
        The flat right-hand side, for a provided starter stepper.
    atol, rtol : float or array, shape (n,)
        The corrector's tolerances.
    norm : callable
        On the scaled correction.
    """

    fsal = False
    has_continuous_extension = False

    def __init__(
        self,
        method: AdamsMethod,
        xp: Any,
        y0: Any,
        fun: RightHandSide,
        atol: Any,
        rtol: Any,
        norm: Callable[[Any], float],
    ) -> None:
        self.method = method
        self.xp = xp
        self.error_order = method.order
        self.atol, self.rtol, self.norm = atol, rtol, norm
        k = method.steps
        self.times: deque[float] = deque(maxlen=k)
        self.slopes: deque[Any] = deque(maxlen=k)
        starter = provided_stepper(method.starter, xp, y0, fun)
        self.starter = starter or explicit_stepper(method.starter, xp, y0.dtype, device_of(y0), y0.shape[0])
        self.bashforth = [float(w) for w in method.bashforth]
        self.moulton = [float(w) for w in method.moulton]

    def restart(self) -> None:
        """``f`` or the state jumped: the slopes before say nothing of what follows."""
        self.times.clear()
        self.slopes.clear()

    def step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One step of size ``h`` from ``(t, y)`` with ``f0 = f(t, y)``, after the steps before.

        Parameters
        ----------
        fun, t, y, f0, h, t_end_eval
            As :meth:`ode_core.Stepper.step` takes them.

        Returns
        -------
        y1 : array, shape (n,)
        stages : array, shape (n,)
            ``f0``, for the interpolant.
        evaluations : int
        """
        times, slopes, k = self.times, self.slopes, self.method.steps
        if times and times[-1] == t:  # the same step again: its slope is known
            slopes[-1] = f0
        else:
            times.append(t)
            slopes.append(f0)
        if len(times) < k:
            y1, _, evaluations = self.starter.step(fun, t, y, f0, h, t_end_eval)
            return y1, f0, evaluations
        # Scaled nodes of the slopes, newest first.
        nodes = [(times[-1 - j] - t) / h for j in range(k)]
        equal = all(abs(node + j) <= _EQUAL_STEPS for j, node in enumerate(nodes))
        predictor = self.bashforth if equal else integrated_lagrange_weights(nodes)
        y1 = y + h * _combine(predictor, [slopes[-1 - j] for j in range(k)])
        if not self.method.corrector:
            return y1, f0, 0
        corrector = self.moulton if equal else integrated_lagrange_weights([1.0, *nodes[: k - 1]])
        known = y + h * _combine(corrector[1:], [slopes[-1 - j] for j in range(k - 1)]) if k > 1 else y
        t1 = t + h if t_end_eval is None else t_end_eval
        xp, atol, rtol = self.xp, self.atol, self.rtol
        scaled_new = h * corrector[0]
        evaluations = 0
        for _ in range(self.method.max_corrections):
            corrected = known + scaled_new * fun(t1, y1)
            evaluations += 1
            change = self.norm((corrected - y1) / (atol + rtol * xp.maximum(xp.abs(y1), xp.abs(corrected))))
            y1 = corrected
            if change <= 1.0 or not math.isfinite(change):
                break
        return y1, f0, evaluations

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """Not available: Adams methods here take fixed steps."""
        raise ValueError(f"method: {self.method.name!r} has no error estimate; it takes fixed steps")

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """The cubic Hermite interpolant through ``y, y1`` with slopes ``f0`` (``stages``) and ``f1``.

        Parameters
        ----------
        fun, t, y, y1, f1, stages, h, f0
            As :meth:`ode_core.Stepper.dense_coefficients` takes them.

        Returns
        -------
        array, shape (3, n)
        """
        return hermite_coefficients(self.xp, y, y1, stages, f1, h)

    def close(self) -> None:
        """Forget the slopes and close the starter."""
        self.restart()
        self.starter.close()


def _combine(weights: Sequence[float], slopes: Sequence[Any]) -> Any:
    total = weights[0] * slopes[0]
    for weight, slope in zip(weights[1:], slopes[1:]):
        total = total + weight * slope
    return total
