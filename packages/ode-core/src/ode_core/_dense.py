"""Dense output: one polynomial per accepted step, in the step's own variable.

Within a step from ``t0`` with step ``h``, ``theta = (t - t0) / h`` in
``[0, 1]`` and

    y(t0 + theta h) = y0 + sum_{j=1}^{d} theta^j C[j-1],

with ``C`` of shape ``(d, n)``. Runge--Kutta continuous extensions give
``C = h * P^T K`` (``P`` the tableau's ``dense`` weights, ``K`` the stages);
every other method uses the cubic Hermite interpolant through ``y0, y1`` with
slopes ``f0, f1``, which needs no new evaluation of ``f``.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["DenseOutput"]


def hermite_coefficients(xp: Any, y0: Any, y1: Any, f0: Any, f1: Any, h: float) -> Any:
    """Coefficients ``C`` (3, n) of the cubic Hermite interpolant.

    Matches ``y0``, ``y1`` and the slopes ``f0``, ``f1`` at both ends.
    """
    delta = y1 - y0
    slope0 = h * f0
    slope1 = h * f1
    return xp.stack((slope0, 3.0 * delta - 2.0 * slope0 - slope1, slope0 + slope1 - 2.0 * delta))


def evaluate_polynomial(xp: Any, y0: Any, coefficients: Any, thetas: Sequence[float]) -> Any:
    """Values of ``y0 + sum_j theta^j C[j-1]`` at several ``thetas``.

    Returns
    -------
    array, shape (len(thetas), n)
    """
    degree = coefficients.shape[0]
    powers = np.asarray(thetas, dtype=np.float64)[:, None] ** np.arange(1, degree + 1)
    powers_x = xp.asarray(powers, dtype=y0.dtype, device=_device(y0))
    return y0[None, :] + powers_x @ coefficients


def _device(array: Any) -> Any:
    from array_api_compat import device

    return device(array)


class DenseOutput:
    """Continuous solution over the whole solved span.

    Call it with a time or a 1-D sequence of times inside the span. It costs
    no evaluations of ``f``: each step's interpolant was built during the
    solve.

    Attributes
    ----------
    t_min, t_max : float
        The span covered.
    n_segments : int
        Number of steps (polynomial pieces).

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.array([1.0]), [0.0, 2.0], rtol=1e-10, atol=1e-12)
    >>> bool(abs(sol.dense(1.0)[0] - np.exp(-1.0)) < 1e-8)
    True
    """

    def __init__(self, xp: Any, shape: tuple[int, ...], t_first: float, direction: float) -> None:
        self._xp = xp
        self._shape = shape
        self._direction = direction
        # Boundaries in "forward time" (t * direction) so bisect works both ways.
        self._forward_boundaries: list[float] = [t_first * direction]
        self._t_starts: list[float] = []
        self._steps: list[float] = []
        self._y_starts: list[Any] = []
        self._coefficients: list[Any] = []
        self._constant: Any = None

    def hold(self, y: Any) -> None:
        """Make a dense output of no step the constant ``y`` at every time (scipy's ``ConstantDenseOutput``):
        for a solve over a span of zero length, or of a state with no elements.

        Parameters
        ----------
        y : array, shape (n,)
        """
        self._constant = y

    def append(self, t_start: float, h: float, y_start: Any, coefficients: Any, t_end: float | None = None) -> None:
        """Add the piece for the step ``[t_start, t_start + h]``, or up to
        ``t_end`` when a terminal event cut the step short.

        The solver calls this once per accepted step.

        Parameters
        ----------
        t_start : float
            Start of the step.
        h : float
            Signed step size; the piece's variable is ``theta = (t - t_start) / h``.
        y_start : array, shape (n,)
            State at ``t_start`` (flattened).
        coefficients : array, shape (d, n)
            ``C`` in ``y(t_start + theta h) = y_start + sum_j theta^(j+1) C[j]``.
        t_end : float, optional
            Where the piece ends when it ends before ``t_start + h``.
        """
        self._t_starts.append(t_start)
        self._steps.append(h)
        self._y_starts.append(y_start)
        self._coefficients.append(coefficients)
        self._forward_boundaries.append((t_start + h if t_end is None else t_end) * self._direction)

    @property
    def n_segments(self) -> int:
        """Number of steps (polynomial pieces)."""
        return len(self._steps)

    @property
    def t_steps(self) -> list[float]:
        """Step boundaries: the start time and the end of every accepted step."""
        return [boundary * self._direction for boundary in self._forward_boundaries]

    @property
    def t_min(self) -> float:
        """Smallest time covered."""
        ends = self._forward_boundaries[0], self._forward_boundaries[-1]
        return min(ends) * self._direction if self._direction > 0 else -max(ends)

    @property
    def t_max(self) -> float:
        """Largest time covered."""
        ends = self._forward_boundaries[0], self._forward_boundaries[-1]
        return max(ends) * self._direction if self._direction > 0 else -min(ends)

    def __call__(self, t: Any) -> Any:
        """Evaluate at ``t``.

        Parameters
        ----------
        t : float or 1-D sequence of float
            Times within ``[t_min, t_max]``.

        Returns
        -------
        array, shape ``y0.shape`` for a scalar ``t``, else ``(len(t), *y0.shape)``
        """
        xp = self._xp
        scalar = np.ndim(t) == 0 if not hasattr(t, "shape") else len(t.shape) == 0
        times = [float(t)] if scalar else [float(v) for v in (t.tolist() if hasattr(t, "tolist") else t)]
        if not self._steps:
            if self._constant is None:
                raise ValueError("t: the dense output is empty (the solve took no step)")
            held = xp.reshape(self._constant, self._shape)
            if scalar:
                return held
            if not times:
                return xp.zeros((0, *self._shape), dtype=held.dtype, device=_device(held))
            return xp.stack([held] * len(times))
        low, high = self._forward_boundaries[0], self._forward_boundaries[-1]
        rows = []
        for time in times:
            forward = time * self._direction
            if not low <= forward <= high or time != time:
                raise ValueError(f"t: {time!r} lies outside the solved span [{self.t_min!r}, {self.t_max!r}]")
            index = min(bisect.bisect_right(self._forward_boundaries, forward) - 1, len(self._steps) - 1)
            theta = (time - self._t_starts[index]) / self._steps[index]
            rows.append(evaluate_polynomial(xp, self._y_starts[index], self._coefficients[index], [theta])[0])
        values = xp.stack(rows)
        if scalar:
            return xp.reshape(values[0], self._shape)
        return xp.reshape(values, (len(times), *self._shape))
