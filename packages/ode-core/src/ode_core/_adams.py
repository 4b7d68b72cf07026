"""Adams methods: linear multistep methods on the history of ``f``, fixed steps on any grid.

An Adams method integrates, over the step from ``t_n`` to ``t_n + h``, the
polynomial ``p`` through the last ``m`` slopes of the solution:

    y_{n+1} = y_n + int_{t_n}^{t_n + h} p(s) ds = y_n + h sum_j beta_j f_j.

Adams--Bashforth (explicit) interpolates the slopes at ``t_n, t_{n-1}, ...,
t_{n-m+1}``: order ``m``. Adams--Moulton (implicit) interpolates ``f_{n+1}``
and the same ``m`` slopes: order ``m + 1``. With the nodes scaled as ``x_j =
(t_j - t_n) / h``, the weights are ``beta_j = int_0^1 l_j(x) dx`` for the
Lagrange basis ``l_j`` on those nodes. On equal steps (``x = 0, -1, -2,
...``) they are the classical rationals (Hairer, Norsett & Wanner, *Solving
ODEs I*, section III.1, Tables 1.1 and 1.2), computed exactly once; on
unequal ones (a grid of output times, a last step cut short) they are
computed afresh for the step from the same formula in float64:
variable-coefficient Adams, exact on polynomials of degree ``m - 1`` whatever
the grid.

The predictor-corrector is ``P(EC)^k E``: predict with Adams--Bashforth,
evaluate ``f`` there, correct with Adams--Moulton, repeat while the
correction is above the tolerances (at most ``max_corrections`` times), and
evaluate ``f`` at the result (the next step's first slope, which the loop
computes). The iteration is a functional one, with no Jacobian, so it is not
a method for stiff problems. Where it does not settle, the step keeps its
last correction and the oldest slope is dropped (as torchdiffeq does).

A solve keeps up to ``steps`` slopes. Until it has ``min_steps`` of them a
one-step starter takes the steps (Kutta's 3/8 rule, as in torchdiffeq); from
there on each step uses every slope it has, so the order rises with the
history up to ``steps`` (torchdiffeq's explicit_adams and implicit_adams do
this up to 11 slopes; our adams_bashforth and adams_bashforth_moulton start
at their full 4). After a jump of ``f`` or an impulse on the state the loop
calls :meth:`AdamsStepper.restart`, and the slopes before it are forgotten.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, TypeVar

from array_api_compat import device as device_of

from ._arrays import detached
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
    """An Adams method, with or without the Moulton corrector, as checked data.

    It offers the attributes of :class:`~ode_core.ButcherTableau` that a
    solve asks of its method (``explicit``, ``implicit``, ``adaptive``, ...):
    it takes fixed steps (``step_size``, or the grid of output times) and
    solves no stage equations.

    Parameters
    ----------
    name : str
    steps : int
        Most slopes a step uses (1 to 12).
    corrector : bool
        Whether each step corrects with Adams--Moulton (``P(EC)^k E``).
    starter : ButcherTableau
        Explicit one-step method for the steps before ``min_steps`` slopes exist.
    citation : str
    max_corrections : int
        Corrector iterations at most per step.
    min_steps : int, optional
        Slopes from which the Adams formula takes over from the starter
        (default ``steps``: the full order from the first Adams step).
    correction_test : {"state", "increment"}
        When a correction is small enough: ``"state"``, the solve's norm of
        its change over ``atol + rtol max(|y|)``, at most one;
        ``"increment"``, every component of its change below ``atol + rtol
        max(|y1 - y|)`` (torchdiffeq's rule, on the step's increment).

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
    min_steps: int | None = None
    correction_test: str = "state"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        where = f"AdamsMethod {self.name!r}"
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 12:
            raise ValueError(f"{where}: steps: expected an integer from 1 to 12, got {self.steps!r}")
        if self.min_steps is not None and (
            isinstance(self.min_steps, bool)
            or not isinstance(self.min_steps, int)
            or not 1 <= self.min_steps <= self.steps
        ):
            raise ValueError(
                f"{where}: min_steps: expected an integer from 1 to steps={self.steps}, got {self.min_steps!r}"
            )
        if not isinstance(self.starter, ButcherTableau) or not self.starter.explicit:
            raise TypeError(f"{where}: starter: expected an explicit ButcherTableau, got {self.starter!r}")
        if isinstance(self.max_corrections, bool) or not isinstance(self.max_corrections, int):
            raise TypeError(f"{where}: max_corrections: expected an integer, got {self.max_corrections!r}")
        if self.max_corrections < 1:
            raise ValueError(f"{where}: max_corrections: expected at least 1, got {self.max_corrections}")
        if self.correction_test not in ("state", "increment"):
            raise ValueError(f"{where}: correction_test: expected 'state' or 'increment', got {self.correction_test!r}")

    @property
    def first_adams_steps(self) -> int:
        """Slopes from which the Adams formula takes the steps."""
        return self.steps if self.min_steps is None else self.min_steps

    def bashforth(self, slopes: int) -> tuple[Fraction, ...]:
        """Equal-step predictor weights, exact.

        Parameters
        ----------
        slopes : int
            Slopes the step uses.

        Returns
        -------
        tuple of Fraction, length ``slopes``
            The weights of ``f_n, f_{n-1}, ...``.
        """
        return _equal_step_weights(slopes, 0)

    def moulton(self, slopes: int) -> tuple[Fraction, ...]:
        """Equal-step corrector weights, exact.

        Parameters
        ----------
        slopes : int
            Past slopes the step uses (besides the new point's).

        Returns
        -------
        tuple of Fraction, length ``slopes + 1``
            The weights of ``f_{n+1}, f_n, f_{n-1}, ...``.
        """
        return _equal_step_weights(slopes + 1, 1)

    @property
    def order(self) -> int:
        """Order of convergence with equal steps.

        The full formula's (``steps``, one more with the corrector), unless a
        fixed number of lower-order steps bounds it: those with the fewest
        slopes (local error ``O(h^(min_steps + 2))`` with the corrector,
        ``O(h^(min_steps + 1))`` without) or the starter's.
        """
        gain = 1 if self.corrector else 0
        return min(self.steps + gain, self.first_adams_steps + 1 + gain, self.starter.order + 1)

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
        return self.order

    def __repr__(self) -> str:
        kind = "Bashforth-Moulton" if self.corrector else "Bashforth"
        return f"AdamsMethod({self.name!r}, {kind}, order {self.order})"


@functools.cache
def _equal_step_weights(count: int, first_node: int) -> tuple[Fraction, ...]:
    """Weights on the nodes ``first_node, first_node - 1, ...`` (``count`` of them), exactly."""
    return integrated_lagrange_weights([Fraction(first_node - j) for j in range(count)])


@functools.lru_cache(maxsize=256)
def _combination_weights(xp: Any, dtype: Any, device: Any, weights: tuple[float, ...], h: float) -> Any:
    """``[1, h w_0, h w_1, ...]`` as an array of ``dtype`` on ``device`` (see AdamsStepper._combination)."""
    return xp.asarray([1.0, *(h * w for w in weights)], dtype=dtype, device=device)


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
        self.times: deque[float] = deque(maxlen=method.steps)
        self.slopes: deque[Any] = deque(maxlen=method.steps)
        starter = provided_stepper(method.starter, xp, y0, fun)
        self.starter = starter or explicit_stepper(method.starter, xp, y0.dtype, device_of(y0), y0.shape[0])
        self.dtype, self.device = y0.dtype, device_of(y0)
        # Equal-step weights, by the number of slopes.
        counts = range(method.first_adams_steps, method.steps + 1)
        self.bashforth = {m: tuple(float(w) for w in method.bashforth(m)) for m in counts}
        moulton = {m: method.moulton(m) for m in counts}
        self.moulton = {m: (float(weights[0]), tuple(float(w) for w in weights[1:])) for m, weights in moulton.items()}

    def _combination(self, weights: tuple[float, ...], h: float, cached: bool) -> Any:
        """``[1, h w_0, h w_1, ...]``: the weights of ``[y, f_n, f_{n-1}, ...]`` in one product.

        ``y + h sum_j w_j f_j`` as one matrix-vector product with ``y`` and
        the slopes stacked: two array operations (stack, product) whatever
        the number of slopes, where ``y + h * (w @ slopes)`` takes four and a
        sum of products two a slope (torchdiffeq's). Equal steps reuse the
        same few arrays, solve after solve (``cached``); unequal ones make
        theirs afresh, not to crowd out those.
        """
        make = _combination_weights if cached else _combination_weights.__wrapped__
        return make(self.xp, self.dtype, self.device, weights, h)

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
        method, times, slopes = self.method, self.times, self.slopes
        if times and times[-1] == t:  # the same step again: its slope is known
            slopes[-1] = f0
        else:
            times.append(t)
            slopes.append(f0)
        m = len(times)
        if m < method.first_adams_steps:
            y1, _, evaluations = self.starter.step(fun, t, y, f0, h, t_end_eval)
            return y1, f0, evaluations
        xp = self.xp
        # Scaled nodes of the slopes, newest first.
        nodes = [(times[-1 - j] - t) / h for j in range(m)]
        stacked = xp.stack([y, *(slopes[-1 - j] for j in range(m))])  # (m + 1, n): y, then the slopes
        equal = all(abs(node + j) <= _EQUAL_STEPS for j, node in enumerate(nodes))
        predictor = self.bashforth[m] if equal else integrated_lagrange_weights(nodes)
        y1 = self._combination(predictor, h, equal) @ stacked
        if not method.corrector:
            return y1, f0, 0
        if equal:
            new_weight, past_weights = self.moulton[m]
        else:
            corrector = integrated_lagrange_weights([1.0, *nodes])
            new_weight, past_weights = corrector[0], corrector[1:]
        known = self._combination(past_weights, h, equal) @ stacked
        t1 = t + h if t_end_eval is None else t_end_eval
        atol, rtol = self.atol, self.rtol
        scaled_new = h * new_weight
        on_increment = method.correction_test == "increment"
        evaluations = 0
        converged = False
        for _ in range(method.max_corrections):
            corrected = known + scaled_new * fun(t1, y1)
            evaluations += 1
            if on_increment:
                scale = atol + rtol * xp.maximum(xp.abs(y1 - y), xp.abs(corrected - y))
                converged = float(xp.max(detached(xp.abs(corrected - y1) / scale))) < 1.0
            else:
                scale = atol + rtol * xp.maximum(xp.abs(y1), xp.abs(corrected))
                converged = self.norm((corrected - y1) / scale) <= 1.0
            y1 = corrected
            if converged:
                break
        if not converged:
            times.popleft()
            slopes.popleft()
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
