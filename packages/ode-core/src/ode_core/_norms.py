"""Error norms. A norm maps the scaled error (``error / tolerance``, the shape
of ``y0``) to a non-negative scalar; a step passes when it is at most one."""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import array_namespace

__all__ = ["max_norm", "rms_norm"]


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
    return math.sqrt(float(flat @ flat) / flat.shape[0])


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
