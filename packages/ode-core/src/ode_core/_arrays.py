"""Helpers on arrays of any library that the loop, the steppers and the checks share."""

from __future__ import annotations

from typing import Any

__all__ = ["detached"]


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
