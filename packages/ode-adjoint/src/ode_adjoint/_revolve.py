"""Binomial checkpointing (revolve / treeverse) for reversing a chain of steps.

To run ``backward_step(k, y_k)`` for ``k = n-1, ..., 0`` while holding at most
``budget`` states ``y_k`` at once, a segment ``[start, end)`` whose first
state is known either is one step long (reverse it), or places a checkpoint
at ``split``, reverses ``[split, end)`` with one checkpoint fewer and then
``[start, split)`` with the same number. With ``s`` checkpoints and ``r``
recomputations of a step at most, ``C(s + r, s)`` steps can be reversed
(Griewank 1992; Griewank & Walther, ACM TOMS 26 (2000) 19-45, "Algorithm 799:
revolve"), so the split leaves the right part the largest that ``s - 1``
checkpoints reverse within the same ``r``.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb
from typing import TypeVar

__all__ = ["revolve_schedule"]

State = TypeVar("State")


def _repetitions(n_steps: int, checkpoints: int) -> int:
    """The fewest recomputations ``r`` with ``C(checkpoints + r, checkpoints) >= n_steps``."""
    repetitions = 0
    while comb(checkpoints + repetitions, checkpoints) < n_steps:
        repetitions += 1
    return repetitions


def revolve_schedule(
    n_steps: int,
    budget: int,
    y0: State,
    advance: Callable[[int, State], State],
    backward_step: Callable[[int, State], None],
) -> list[None]:
    """Reverse ``n_steps`` steps from ``y0`` holding at most ``budget`` states.

    Parameters
    ----------
    n_steps : int
    budget : int
        States held at once, ``y0`` included (>= 1).
    y0 : state at step 0
    advance : callable
        ``advance(k, y_k) -> y_{k+1}`` without a graph.
    backward_step : callable
        ``backward_step(k, y_k)``, called for ``k = n_steps - 1`` down to 0.

    Returns
    -------
    list
        Empty; the work is done by the callbacks.
    """
    if budget < 1:
        raise ValueError(f"checkpoints: expected at least 1, got {budget}")

    def reverse(start: int, end: int, y_start: State, free: int) -> None:
        # `free` checkpoints may still be placed besides y_start.
        while end - start > 0:
            length = end - start
            if length == 1:
                backward_step(start, y_start)
                return
            if free == 0:
                # Only y_start: recompute up to the last step of the segment.
                y = y_start
                for k in range(start, end - 1):
                    y = advance(k, y)
                backward_step(end - 1, y)
                end -= 1
                continue
            repetitions = _repetitions(length, free + 1)
            # The right part keeps `free` states (its first one included).
            right = min(comb(free + repetitions, free), length - 1)
            split = end - right
            y = y_start
            for k in range(start, split):
                y = advance(k, y)
            reverse(split, end, y, free - 1)
            end = split

    if n_steps > 0:
        reverse(0, n_steps, y0, budget - 1)
    return []
