"""User states (a tensor of any shape, or a tuple of tensors) as one flat tensor."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["FlatFunction", "FlatState"]


class FlatState:
    """Maps a tensor or a tuple of tensors to one flat 1-D tensor and back.

    Parameters
    ----------
    y0 : Tensor or tuple of Tensor
        Every tensor floating point, of one dtype and on one device.
    """

    def __init__(self, y0: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        self.is_tuple = isinstance(y0, tuple)
        tensors = y0 if isinstance(y0, tuple) else (y0,)
        if not tensors:
            raise ValueError("y0: expected a tensor or a non-empty tuple of tensors")
        for index, tensor in enumerate(tensors):
            where = f"y0[{index}]" if self.is_tuple else "y0"
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{where}: expected a torch.Tensor, got {type(tensor).__name__}")
            if not tensor.is_floating_point():
                raise TypeError(f"{where}: expected a floating point tensor (float32 or float64), got {tensor.dtype}")
            if tensor.dtype != tensors[0].dtype:
                raise TypeError(f"{where}: dtype {tensor.dtype} differs from y0[0]'s {tensors[0].dtype}")
            if tensor.device != tensors[0].device:
                raise ValueError(f"{where}: device {tensor.device} differs from y0[0]'s {tensors[0].device}")
        self.shapes = [tuple(tensor.shape) for tensor in tensors]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.n = sum(self.sizes)
        self.dtype = tensors[0].dtype
        self.device = tensors[0].device

    def flatten(self, y: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor:
        if not self.is_tuple:
            return y.reshape(-1)  # type: ignore[union-attr]
        return torch.cat([part.reshape(-1) for part in y])

    def unflatten(self, flat: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``flat`` of shape (..., n) back to the user's structure (leading dims kept)."""
        lead = tuple(flat.shape[:-1])
        if not self.is_tuple:
            return flat.reshape(*lead, *self.shapes[0])
        parts = torch.split(flat, self.sizes, dim=-1)
        return tuple(part.reshape(*lead, *shape) for part, shape in zip(parts, self.shapes))

    def flat_func(self, func: Callable[..., Any]) -> FlatFunction:
        """``func(t, y)`` in the user's structure as a function of the flat state.

        The first call checks what ``func`` returns (structure, shapes,
        dtype, device) and raises naming ``func``.
        """
        return FlatFunction(self, func)

    def check_output(self, value: Any) -> None:
        values = value if self.is_tuple else (value,)
        if self.is_tuple and (not isinstance(value, tuple) or len(value) != len(self.shapes)):
            raise TypeError(f"func: expected a tuple of {len(self.shapes)} tensors like y0, got {type(value).__name__}")
        for index, (part, shape) in enumerate(zip(values, self.shapes)):
            where = f"func(t, y)[{index}]" if self.is_tuple else "func(t, y)"
            if not isinstance(part, torch.Tensor):
                raise TypeError(f"func: {where} is a {type(part).__name__}, expected a torch.Tensor")
            if tuple(part.shape) != shape:
                raise ValueError(f"func: {where} has shape {tuple(part.shape)}, expected y0's shape {shape}")
            if part.dtype != self.dtype:
                raise TypeError(f"func: {where} has dtype {part.dtype}, expected y0's dtype {self.dtype}")
            if part.device != self.device:
                raise ValueError(f"func: {where} is on {part.device}, expected y0's device {self.device}")


class FlatFunction:
    """``func`` of the user's structure, called on flat states.

    Calling it maps a flat ``y`` (n,) to the user's structure, calls
    ``func`` with ``t`` as a 0-d tensor of the state's dtype and device, and
    returns the flat value; the first call checks that value. For a single
    tensor state the solver's hot loop skips the mapping: ``shape`` is the
    user's shape and :meth:`time` makes ``t``, so it can hand ``func`` shaped
    views of its own buffers (``shape`` is ``None`` for tuple states).

    Parameters
    ----------
    state : FlatState
    func : callable
        ``func(t, y)`` in the user's structure.
    """

    __slots__ = ("checked", "device", "dtype", "func", "shape", "state")

    def __init__(self, state: FlatState, func: Callable[..., Any]) -> None:
        self.state = state
        self.func = func
        self.dtype = state.dtype
        self.device = state.device
        self.shape: tuple[int, ...] | None = None if state.is_tuple else state.shapes[0]
        self.checked = False

    def time(self, t: float) -> torch.Tensor:
        """``t`` as ``func`` receives it.

        The solver keeps time in float64; ``func`` gets a 0-d tensor of the
        state's dtype (what a network concatenating ``t`` expects).
        ``torch.full`` sends the value as a kernel argument: no host to
        device copy, no synchronisation on CUDA.
        """
        return torch.full((), t, dtype=self.dtype, device=self.device)

    def __call__(self, t: float, y: torch.Tensor) -> torch.Tensor:
        state = self.state
        if self.shape is not None:
            value = self.func(torch.full((), t, dtype=self.dtype, device=self.device), y.view(self.shape))
        else:
            value = self.func(self.time(t), state.unflatten(y))
        if not self.checked:
            state.check_output(value)
            self.checked = True
        if self.shape is not None:
            flat_value: torch.Tensor = value.reshape(-1)
            return flat_value
        return torch.cat([part.reshape(-1) for part in value])
