"""User states (a tensor of any shape, or a tuple of tensors) as one flat tensor."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from ode_core.validation import check_state, working_dtype

__all__ = ["FlatFunction", "FlatState"]

# Up to this many times, FlatFunction.times makes each by torch.full on the CPU too.
_FULL_EACH_UP_TO = 3


class FlatState:
    """Maps a tensor or a tuple of tensors to one flat 1-D tensor and back.

    The flat tensor is in the dtype the solver computes in: the state's own,
    or float32 for a half precision state (see
    :func:`ode_core.validation.working_dtype`).

    Parameters
    ----------
    y0 : Tensor or tuple of Tensor
        Every tensor floating point, of one dtype and on one device, all
        finite, not all empty.
    """

    def __init__(self, y0: torch.Tensor | tuple[torch.Tensor, ...]) -> None:
        self.is_tuple = isinstance(y0, tuple)
        tensors = y0 if isinstance(y0, tuple) else (y0,)
        if not tensors:
            raise ValueError("y0: expected a tensor or a non-empty tuple of tensors, got an empty tuple")
        for index, tensor in enumerate(tensors):
            where = f"y0[{index}]" if self.is_tuple else "y0"
            if not isinstance(tensor, torch.Tensor):
                raise TypeError(f"{where}: expected a torch.Tensor, got {type(tensor).__name__}")
            if not tensor.is_floating_point():
                raise TypeError(
                    f"{where}: expected a floating point tensor (float16, bfloat16, float32 or float64), "
                    f"got {tensor.dtype}"
                )
            if tensor.dtype != tensors[0].dtype:
                raise TypeError(f"{where}: dtype {tensor.dtype} differs from y0[0]'s {tensors[0].dtype}")
            if tensor.device != tensors[0].device:
                raise ValueError(f"{where}: device {tensor.device} differs from y0[0]'s {tensors[0].device}")
        self.shapes = [tuple(tensor.shape) for tensor in tensors]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        self.n = sum(self.sizes)
        self.dtype = tensors[0].dtype
        self.device = tensors[0].device
        self.working_dtype: torch.dtype = working_dtype(torch, self.dtype)

    def flatten(self, y: torch.Tensor | tuple[torch.Tensor, ...], name: str = "y0") -> torch.Tensor:
        """The flat tensor (n,) of a state in the user's structure, in the working dtype.

        Parameters
        ----------
        y : Tensor or tuple of Tensor
        name : str
            When not empty, check the result as ode-core checks a state
            (non-empty, finite) under this name.

        Returns
        -------
        Tensor, shape (n,)
        """
        if not self.is_tuple:
            flat = y.reshape(-1)  # type: ignore[union-attr]
        else:
            flat = torch.cat([part.reshape(-1) for part in y])
        if name:
            check_state(flat.detach(), name)
        return flat if flat.dtype == self.working_dtype else flat.to(self.working_dtype)

    def unflatten(self, flat: torch.Tensor, cast: bool = True) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``flat`` of shape (..., n) back to the user's structure (leading dims kept).

        Parameters
        ----------
        flat : Tensor, shape (..., n)
        cast : bool
            Return the user's dtype (states); ``False`` keeps the working
            dtype (scaled errors for a norm).

        Returns
        -------
        Tensor or tuple of Tensor
        """
        if cast and flat.dtype != self.dtype:
            flat = flat.to(self.dtype)
        lead = tuple(flat.shape[:-1])
        if not self.is_tuple:
            return flat.reshape((*lead, *self.shapes[0]))
        parts = torch.split(flat, self.sizes, dim=-1)
        return tuple(part.reshape((*lead, *shape)) for part, shape in zip(parts, self.shapes))

    def flat_func(self, func: Callable[..., Any]) -> FlatFunction:
        """``func(t, y)`` in the user's structure as a function of the flat state.

        Parameters
        ----------
        func : callable

        Returns
        -------
        FlatFunction
        """
        return FlatFunction(self, func)

    def check_output(self, value: Any) -> None:
        """Raise naming ``func`` if ``value`` is not shaped like the state.

        Parameters
        ----------
        value : object
            What ``func`` returned.
        """
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
    """``func`` of the user's structure, called by ode-core's loop on flat states.

    Calling it maps a flat ``y`` (n,) to the user's structure and dtype,
    calls ``func`` with ``t`` as a 0-d tensor of the state's dtype and
    device, and returns the flat value in the working dtype; the first call
    checks that value. For a single tensor state in its own dtype the torch
    stepper skips the mapping (``shaped_call``) and hands ``func`` shaped
    views of its own buffers.

    Parameters
    ----------
    state : FlatState
    func : callable
        ``func(t, y)`` in the user's structure.
    """

    __slots__ = ("checked", "device", "dtype", "func", "on_cpu", "shape", "state", "working_dtype")

    def __init__(self, state: FlatState, func: Callable[..., Any]) -> None:
        self.state = state
        self.func = func
        self.dtype = state.dtype
        self.working_dtype = state.working_dtype
        self.device = state.device
        self.on_cpu = state.device.type == "cpu"
        self.shape: tuple[int, ...] | None = None if state.is_tuple else state.shapes[0]
        self.checked = False

    def time(self, t: float) -> torch.Tensor:
        """``t`` as ``func`` receives it.

        The solver keeps time in float64; ``func`` gets a 0-d tensor of the
        state's dtype (what a network concatenating ``t`` expects).
        ``torch.full`` sends the value as a kernel argument: no host to
        device copy, no synchronisation on CUDA.

        Parameters
        ----------
        t : float

        Returns
        -------
        Tensor, shape ()
        """
        return torch.full((), t, dtype=self.dtype, device=self.device)

    def times(self, values: list[float]) -> Sequence[torch.Tensor]:
        """Several times as ``func`` receives them (see :meth:`time`).

        On the CPU one tensor for many of them, unbound into 0-d views, costs
        less than a ``torch.full`` each (six: 6.3 us against 8.7 us); up to
        three, ``torch.full`` each costs less (one: 3.1 us against 4.7 us). On
        an accelerator one tensor would be a copy from the host, so each is
        made by ``torch.full``.

        Parameters
        ----------
        values : list of float

        Returns
        -------
        sequence of Tensor, each of shape ()
        """
        if self.on_cpu and len(values) > _FULL_EACH_UP_TO:
            return torch.tensor(values, dtype=self.dtype).unbind()
        return [torch.full((), t, dtype=self.dtype, device=self.device) for t in values]

    @property
    def shaped_call(
        self,
    ) -> tuple[Callable[..., Any], tuple[int, ...], Callable[[list[float]], Sequence[torch.Tensor]]] | None:
        """``(func, shape, times)`` for calls on shaped views, once ``func``'s output is checked.

        ``None`` for tuple states and half precision ones (whose values need
        a conversion).
        """
        if not self.checked or self.shape is None or self.dtype != self.working_dtype:
            return None
        return self.func, self.shape, self.times

    def one_sided_time(self, t: float, side: float) -> float:
        """The time nearest ``t`` on ``side`` (+1 after, -1 before) that ``func`` sees as another time.

        ``func`` sees time in the state's dtype, so a float64 neighbour of a
        jump would round back onto it in float32.

        Parameters
        ----------
        t : float
        side : float

        Returns
        -------
        float
        """
        value = torch.tensor(t, dtype=self.dtype)
        if not (float(value) - t) * side > 0:
            value = torch.nextafter(value, torch.tensor(side * math.inf, dtype=self.dtype))
        return float(value)

    def __call__(self, t: float, y: torch.Tensor) -> torch.Tensor:
        state = self.state
        time = torch.full((), t, dtype=self.dtype, device=self.device)  # as self.time(t), without the call
        if self.shape is not None:
            shaped = y.view(self.shape)
            value = self.func(time, shaped if shaped.dtype == self.dtype else shaped.to(self.dtype))
        else:
            value = self.func(time, state.unflatten(y))
        if not self.checked:
            state.check_output(value)
            self.checked = True
        flat: torch.Tensor = value.reshape(-1) if self.shape is not None else torch.cat([p.reshape(-1) for p in value])
        return flat if flat.dtype == self.working_dtype else flat.to(self.working_dtype)
