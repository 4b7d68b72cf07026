"""The explicit Runge--Kutta step, for any tableau and any array namespace.

The stepper holds the tableau's coefficients converted once to the state's
dtype and device. A step is a pure function of ``(t, y, f0, h)``: it returns
the new state and the stage matrix, from which the error estimate and the
dense output are derived only when the solve loop asks for them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import is_numpy_namespace

from ._dense import hermite_coefficients
from ._norms import flat_rms_norm
from ._stepper import StepperBase
from ._tableau import ButcherTableau

__all__ = ["ExplicitRungeKutta", "explicit_stepper"]

RightHandSide = Callable[[float, Any], Any]


def _as_array(xp: Any, values: Any, dtype: Any, device: Any) -> Any:
    return xp.asarray([[float(v) for v in row] for row in values], dtype=dtype, device=device)


def _as_vector(xp: Any, values: Any, dtype: Any, device: Any) -> Any:
    return xp.asarray([float(v) for v in values], dtype=dtype, device=device)


_CACHE: dict[tuple[int, str, str, str], tuple[ButcherTableau, ExplicitRungeKutta]] = {}


def explicit_stepper(tableau: ButcherTableau, xp: Any, dtype: Any, device: Any, n: int) -> ExplicitRungeKutta:
    """The stepper for ``tableau`` on this dtype and device, built once and cached.

    Converting exact coefficients to arrays costs more than a short solve, so
    it is done once per (tableau, namespace, dtype, device, n).
    """
    key = (id(tableau), xp.__name__, str(dtype), f"{device}/{n}")
    entry = _CACHE.get(key)
    if entry is None or entry[0] is not tableau:
        if len(_CACHE) > 256:  # many devices or sizes: keep the cache bounded
            _CACHE.clear()
        entry = (tableau, ExplicitRungeKutta(tableau, xp, dtype, device, n))
        _CACHE[key] = entry
    return entry[1]


class ExplicitRungeKutta(StepperBase):
    """Explicit Runge--Kutta steps of one tableau on one dtype and device.

    Parameters
    ----------
    tableau : ButcherTableau
        An explicit tableau (``tableau.explicit``) with ``c[0] == 0``.
    xp : namespace
        Array API namespace of the state.
    dtype, device
        Of the (flattened, 1-D) state.
    n : int
        State size.
    """

    def __init__(self, tableau: ButcherTableau, xp: Any, dtype: Any, device: Any, n: int) -> None:
        if not tableau.explicit or tableau.c[0] != 0:
            raise ValueError(f"method: {tableau.name!r} is not an explicit tableau with c[0] == 0")
        self.tableau = tableau
        self.xp = xp
        self.dtype = dtype
        self.device = device
        self.n = n
        self._rms = flat_rms_norm(xp, n, dtype)
        s = tableau.n_stages
        self.n_stages = s
        self.fsal = tableau.fsal
        self.nodes = [float(ci) for ci in tableau.c]
        self.end_nodes = [i for i, ci in enumerate(tableau.c) if ci == 1 and i > 0]
        # The strictly lower triangle of a; a step scales it by h once and
        # takes row i's first i entries: y + (h a)[i, :i] @ K[:i].
        self.stage_matrix = _as_array(xp, tableau.a, dtype, device)
        # NumPy's own empty() skips the compatibility wrapper, a measurable
        # share of a small problem's step.
        if is_numpy_namespace(xp):
            self.new_stages = functools.partial(np.empty, (s, n), dtype=dtype)
        else:
            self.new_stages = functools.partial(xp.empty, (s, n), dtype=dtype, device=device)
        self.weights = _as_vector(xp, tableau.b, dtype, device)
        # For an FSAL tableau the last stage's argument is y1 itself, so the
        # weights are never applied separately.
        errors = tableau.error_weights
        self.error_weights = None if errors is None else _as_vector(xp, errors, dtype, device)
        errors2 = tableau.error_weights_secondary
        self.error_weights_secondary = None if errors2 is None else _as_vector(xp, errors2, dtype, device)
        self.error_order = tableau.controller_order
        if tableau.dense is not None:
            self.dense_weights_t = _as_array(xp, tableau.dense, dtype, device).T  # (d, s + extra)
            self.extra_nodes = [float(ci) for ci in tableau.c_extra]
            self.extra_rows = [_as_vector(xp, row, dtype, device) for row in tableau.a_extra]
        else:
            self.dense_weights_t = None
            self.extra_nodes = []
            self.extra_rows = []

    def step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One step of size ``h`` from ``(t, y)`` with ``f0 = f(t, y)``.

        Parameters
        ----------
        t_end_eval : float, optional
            Time at which to evaluate stages with node ``c = 1`` instead of
            ``t + h``: the float just before a jump of ``f`` that this step
            lands on, so the step sees ``f``'s left-hand limit there.

        Returns
        -------
        y1 : array, shape (n,)
        stages : array, shape (s, n)
            ``stages[i] = f(t + c_i h, Y_i)``; for an FSAL tableau the last
            row is ``f(t + h, y1)``.
        evaluations : int
            Calls of ``fun`` made, ``s - 1``.
        """
        s = self.n_stages
        stages = self.new_stages()
        stages[0] = f0
        nodes = self.nodes
        end_time = t + h if t_end_eval is None else t_end_eval
        end_nodes = self.end_nodes if t_end_eval is not None else ()
        scaled = h * self.stage_matrix
        last = s - 1 if self.fsal else s
        for i in range(1, last):
            time = end_time if i in end_nodes else t + nodes[i] * h
            stages[i] = fun(time, y + scaled[i, :i] @ stages[:i])
        if self.fsal:
            y1 = y + scaled[s - 1, : s - 1] @ stages[: s - 1]
            stages[s - 1] = fun(end_time, y1)
        else:
            y1 = y + h * (self.weights @ stages)
        return y1, stages, s - 1

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """Norm of the local error over ``atol + rtol * max(|y|, |y1|)`` (RMS when ``norm`` is None)."""
        xp = self.xp
        scale = atol + rtol * xp.maximum(xp.abs(y), xp.abs(y1))
        if self.error_weights is None:
            raise ValueError(f"method: {self.tableau.name!r} has no error estimate")
        if norm is None:
            norm = self._rms
        if self.error_weights_secondary is None:
            return norm(((h * self.error_weights) @ stages) / scale)
        # DOP853 (Hairer, Norsett & Wanner, Solving ODEs I, II.10): the
        # 5th-order difference, damped where the 3rd-order one says the
        # estimate is unreliable: |h| e5^2 / sqrt(e5^2 + 0.01 e3^2).
        error5 = norm((self.error_weights @ stages) / scale)
        error3 = norm((self.error_weights_secondary @ stages) / scale)
        if error5 == 0.0 and error3 == 0.0:
            return 0.0
        return abs(h) * error5 * error5 / math.sqrt(error5 * error5 + 0.01 * error3 * error3)

    @property
    def has_continuous_extension(self) -> bool:
        return self.dense_weights_t is not None

    @property
    def extra_evaluations(self) -> int:  # type: ignore[override]
        """Evaluations of ``f`` that :meth:`dense_coefficients` costs."""
        return len(self.extra_nodes)

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """Coefficients ``C`` (d, n) of the step's interpolant (see ``_dense``).

        The tableau's continuous extension when it has one (computing its
        extra stages: :attr:`extra_evaluations` calls of ``fun``), otherwise
        the cubic Hermite interpolant through ``y, y1`` with slopes
        ``stages[0], f1``.
        """
        xp = self.xp
        if self.dense_weights_t is None:
            return hermite_coefficients(xp, y, y1, stages[0], f1, h)
        if self.extra_nodes:
            extended = xp.concat(
                (stages, xp.empty((len(self.extra_nodes), self.n), dtype=self.dtype, device=self.device))
            )
            s = self.n_stages
            for i, (node, row) in enumerate(zip(self.extra_nodes, self.extra_rows)):
                extended[s + i] = fun(t + node * h, y + h * (row @ extended[: s + i]))
            stages = extended
        return h * (self.dense_weights_t @ stages)
