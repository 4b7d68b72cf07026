"""Hairer's automatic choice of the first step."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["select_initial_step"]


def select_initial_step(
    fun: Callable[[float, Any], Any],
    t0: float,
    y0: Any,
    f0: Any,
    direction: float,
    error_order: int,
    rtol: Any,
    atol: Any,
    norm: Callable[[Any], float],
    max_step: float,
    span: float,
) -> float:
    """Unsigned first step from two evaluations of ``f`` (one of them new).

    The algorithm of Hairer, Norsett & Wanner, *Solving ODEs I*, II.4,
    "Starting step size": an explicit Euler step of size ``h0 = 0.01
    ||y0|| / ||f0||`` estimates the second derivative, and the step is chosen
    so that ``h^(q+1) max(||f0||, ||y''||) = 0.01``.

    Parameters
    ----------
    fun : callable
        ``fun(t, y)`` on the flat state.
    t0 : float
    y0, f0 : array, shape (n,)
    direction : float
        +1 or -1.
    error_order : int
        Order ``q`` of the error estimator.
    rtol, atol : float or array, shape (n,)
    norm : callable
        Error norm of a scaled vector.
    max_step, span : float
        The result is at most ``min(max_step, span)``.

    Returns
    -------
    float
        A positive step; the caller applies ``direction``. When ``y0`` or
        ``f0`` is not finite, ``min(1e-6, max_step, span)``.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> f = lambda t, y: -y
    >>> y0 = np.array([1.0])
    >>> h = ode_core.select_initial_step(f, 0.0, y0, f(0.0, y0), 1.0, 4, 1e-6, 1e-9, ode_core.rms_norm, np.inf, 10.0)
    >>> bool(0.0 < h < 0.1)
    True
    """
    xp_abs = abs  # works for arrays of every namespace and for floats
    scale = atol + xp_abs(y0) * rtol
    d0 = norm(y0 / scale)
    d1 = norm(f0 / scale)
    if not (math.isfinite(d0) and math.isfinite(d1)):
        # Nothing to scale by (an infinite or nan y0 or f0): the smallest
        # guess, for the step-size control to correct or to fail on.
        return min(1e-6, max_step, span)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, max_step, span)
    y1 = y0 + (direction * h0) * f0
    f1 = fun(t0 + direction * h0, y1)
    d2 = norm((f1 - f0) / scale) / h0
    if not math.isfinite(d2):
        return h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (error_order + 1))
    return min(100.0 * h0, h1, max_step, span)


def select_initial_steps(
    xp: Any,
    fun: Callable[[Any, Any], Any],
    t0: Any,
    y0: Any,
    f0: Any,
    direction: float,
    error_order: int,
    rtol: Any,
    atol: Any,
    norm: Callable[[Any], Any],
    max_step: float,
    span: Any,
) -> Any:
    """:func:`select_initial_step` for a batch of independent problems, one step per sample.

    The same algorithm, row by row, as array operations (no value is read on
    the host): the per-sample mode's first steps.

    Parameters
    ----------
    xp : array namespace
    fun : callable
        ``fun(t, y)`` with ``t`` of shape (B,) and ``y`` of shape (B, n).
    t0 : array, shape (B,)
    y0, f0 : array, shape (B, n)
    direction : float
    error_order : int
    rtol, atol : float or array, shape (n,)
    norm : callable
        Row norms: (B, n) -> (B,).
    max_step : float
    span : array, shape (B,)
        ``|t_end - t0|`` per sample.

    Returns
    -------
    array, shape (B,)
        Positive steps, of ``y0``'s dtype.
    """
    scale = atol + xp.abs(y0) * rtol
    d0 = norm(y0 / scale)
    d1 = norm(f0 / scale)
    finite = xp.isfinite(d0) & xp.isfinite(d1)
    small = (d0 < 1e-5) | (d1 < 1e-5)
    h0 = xp.where(small | ~finite, 1e-6, 0.01 * d0 / xp.where(small | ~finite, 1.0, d1))
    h0 = xp.clip(xp.minimum(h0, span), None, max_step)
    # The steps live in the times' dtype (float64); the trial state stays in y0's, as f expects it.
    y1 = y0 + xp.astype(direction * h0, y0.dtype, copy=False)[:, None] * f0
    f1 = fun(t0 + direction * h0, y1)
    # (A zero span gives h0 = 0, and a zero step whatever d2 is.)
    d2 = norm((f1 - f0) / scale) / xp.where(h0 > 0, h0, 1.0)
    largest = xp.maximum(d1, d2)
    flat = (d1 <= 1e-15) & (d2 <= 1e-15)
    h1 = xp.where(
        flat, xp.clip(h0 * 1e-3, 1e-6, None), (0.01 / xp.where(flat, 1.0, largest)) ** (1.0 / (error_order + 1))
    )
    h = xp.clip(xp.minimum(xp.minimum(100.0 * h0, h1), span), None, max_step)
    # Where y0 or f0 is not finite, the smallest guess; where only the second
    # derivative is not, the first one (as the scalar rule).
    h = xp.where(xp.isfinite(d2), h, h0)
    return xp.where(finite, h, xp.clip(xp.minimum(xp.full_like(h0, 1e-6), span), None, max_step))
