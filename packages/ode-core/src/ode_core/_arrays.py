"""Helpers on arrays of any library that the loop, the steppers and the checks share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["detached", "is_finite"]


def detached(value: Any) -> Any:
    """``value`` without its autograd history, where its library keeps one.

    A value read to take a decision is not differentiated, and torch warns
    at reading one that requires grad.

    Parameters
    ----------
    value : array

    Returns
    -------
    array
    """
    # No callable() test: torch.compile cannot trace one on a bound method.
    detach = getattr(value, "detach", None)
    return value if detach is None else detach()


def is_finite(xp: Any, array: Any) -> bool:
    """Whether every element of ``array`` is finite, mostly for the price of a sum.

    An inf or a nan makes the sum inf or nan, so a finite sum settles it
    with one reduction and one read (cheaper than ``isfinite``, which is
    several kernels in torch); a sum that is not finite, which large finite
    elements can overflow to, is settled element by element.

    NumPy arrays are checked element by element: that is fast there, and a
    sum that overflows would warn.

    Parameters
    ----------
    xp : array namespace
    array : array

    Returns
    -------
    bool
    """
    if isinstance(array, np.ndarray):
        return bool(np.isfinite(array).all())
    # The array's own sum where it has one: on a small state the compat
    # layer's wrapper costs more than the reduction. One read either way.
    if xp.isdtype(array.dtype, "complex floating"):
        return bool(xp.all(xp.isfinite(array)))
    total = float(detached(array.sum() if hasattr(array, "sum") else xp.sum(array)))
    return math.isfinite(total) or bool(xp.all(xp.isfinite(array)))
