"""A progress meter over the solved time, for long solves (``progress=True``)."""

from __future__ import annotations

import math
import warnings
from typing import Any

__all__ = ["ProgressMeter"]


class ProgressMeter:
    """A tqdm bar from ``t0`` to ``t_end`` that the loop advances after each accepted step.

    tqdm is optional: without it the solve runs as it would without a meter,
    after one warning.

    Parameters
    ----------
    t0, t_end : float
        The span of the solve.
    """

    def __init__(self, t0: float, t_end: float) -> None:
        self._t0 = t0
        self._done = 0.0
        self._bar: Any = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            warnings.warn("progress: needs tqdm (pip install tqdm); solving without a meter", UserWarning, stacklevel=4)
            return
        # The total is the span of time, not a count of steps, which nobody knows in advance.
        if math.isinf(t_end):  # until an event: no total to fill
            self._bar = tqdm(total=None, bar_format="{desc} {elapsed}")
        else:
            bar_format = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}"
            self._bar = tqdm(total=abs(t_end - t0), bar_format=bar_format)
        self._bar.set_description_str(f"t={t0:.6g}", refresh=False)

    def update(self, t: float) -> None:
        """The solve has reached ``t``.

        Parameters
        ----------
        t : float
        """
        if self._bar is None:
            return
        done = abs(t - self._t0)
        self._bar.update(done - self._done)
        self._done = done
        self._bar.set_description_str(f"t={t:.6g}", refresh=False)

    def close(self) -> None:
        """The solve has ended."""
        if self._bar is not None:
            self._bar.close()
