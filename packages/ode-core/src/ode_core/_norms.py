"""Error norms. A norm maps the scaled error (``error / tolerance``, the shape
of ``y0``) to a non-negative scalar; a step passes when it is at most one."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import array_namespace

__all__ = ["MixedNorm", "max_norm", "rms_norm"]


def rms_norm(scaled_error: Any) -> float:
    """Root mean square, Hairer's and scipy's default.

    Parameters
    ----------
    scaled_error : array, any shape
        ``error / (atol + rtol * max(|y0|, |y1|))``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> rms_norm(np.array([3.0, 4.0]))  # sqrt((9 + 16) / 2)
    3.5355339059327378
    """
    xp = array_namespace(scaled_error)
    flat = xp.reshape(scaled_error, (-1,))
    if xp.isdtype(flat.dtype, "complex floating"):
        flat = xp.abs(flat)
    return math.sqrt(float(flat @ flat) / flat.shape[0])


def flat_rms_norm(xp: Any, n: int, dtype: Any) -> Callable[[Any], float]:
    """:func:`rms_norm` for the loop's flat arrays of ``n`` elements of ``dtype``, with the dtype's branch
    taken once (a solve calls it at every step).

    Parameters
    ----------
    xp : array namespace
    n : int
    dtype : dtype
        Real or complex: a complex error's norm is that of its moduli.

    Returns
    -------
    callable
        ``norm(scaled) -> float``.
    """
    inverse_n = 1.0 / n
    if xp.isdtype(dtype, "complex floating"):

        def complex_norm(scaled: Any) -> float:
            moduli = xp.abs(scaled)
            return math.sqrt(float(moduli @ moduli) * inverse_n)

        return complex_norm

    def norm(scaled: Any) -> float:
        return math.sqrt(float(scaled @ scaled) * inverse_n)

    return norm


def max_norm(scaled_error: Any) -> float:
    """Largest absolute component: a stricter test than :func:`rms_norm`.

    Pass it as ``norm=max_norm`` to :func:`ode_core.solve`.

    Parameters
    ----------
    scaled_error : array, any shape
        ``error / (atol + rtol * max(|y0|, |y1|))``.

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> max_norm(np.array([3.0, -4.0]))
    4.0
    """
    xp = array_namespace(scaled_error)
    return float(xp.max(xp.abs(scaled_error)))


class MixedNorm:
    """The largest of the RMS norms of consecutive parts of the flat error.

    For a state made of several arrays flattened end to end (torchdiffeq's
    default for tuple states): each part's error counts on its own, so a
    small part is not drowned in the mean of a large one. Empty parts are
    left out.

    Parameters
    ----------
    sizes : sequence of int
        Sizes of the parts, in order; they sum to the state's size.

    Examples
    --------
    >>> import numpy as np
    >>> MixedNorm([1, 3])(np.array([2.0, 0.0, 0.0, 0.0]))  # max(2, 0): RMS over all would be 1
    2.0
    """

    def __init__(self, sizes: Sequence[int]) -> None:
        if any(isinstance(size, bool) or not isinstance(size, int) or size < 0 for size in sizes):
            raise ValueError(f"sizes: expected non-negative integers, got {list(sizes)!r}")
        self.bounds = []
        start = 0
        for size in sizes:
            if size:
                self.bounds.append((start, start + size))
            start += size
        self.size = start

    def __call__(self, scaled_error: Any) -> float:
        xp = array_namespace(scaled_error)
        flat = xp.reshape(scaled_error, (-1,))
        if flat.shape[0] != self.size:
            raise ValueError(f"scaled_error: expected {self.size} values, got {flat.shape[0]}")
        # One read of the result: the parts' mean squares stay on the device.
        squares = xp.stack([xp.mean(flat[a:b] * flat[a:b]) for a, b in self.bounds])
        return math.sqrt(float(xp.max(squares)))
