"""The array API namespace of torch tensors that ode-adjoint hands to ode-core's per-sample loop.

The per-sample loop runs some two hundred small array operations a step,
each through the array API's names. ``array_api_compat``'s torch namespace
wraps several of them in Python (type promotion fixes, keyword renames),
which on a small batch costs about a tenth of the step; where torch's own
function has the array API's meaning for the arguments the loop passes
(tensors and Python scalars of the state's kind, no dtype mixing), this
namespace calls it directly. Every other name is array_api_compat's.
"""

from __future__ import annotations

from typing import Any

import array_api_compat.torch as compat
import torch

__all__ = ["TORCH"]


class _TorchNamespace:
    """array_api_compat's torch namespace with the per-sample loop's hot functions direct."""

    __name__ = "ode_adjoint._namespace.torch"

    where = staticmethod(torch.where)
    reshape = staticmethod(torch.reshape)
    abs = staticmethod(torch.abs)
    maximum = staticmethod(torch.maximum)
    minimum = staticmethod(torch.minimum)
    isfinite = staticmethod(torch.isfinite)
    sqrt = staticmethod(torch.sqrt)
    stack = staticmethod(torch.stack)
    nextafter = staticmethod(torch.nextafter)

    @staticmethod
    def clip(x: torch.Tensor, /, min: Any = None, max: Any = None) -> torch.Tensor:
        if isinstance(min, torch.Tensor) or isinstance(max, torch.Tensor):
            return compat.clip(x, min, max)
        return torch.clamp(x, min, max)

    @staticmethod
    def astype(x: torch.Tensor, dtype: torch.dtype, /, *, copy: bool = True) -> torch.Tensor:
        converted: torch.Tensor = x.to(dtype, copy=copy)
        return converted

    @staticmethod
    def vecdot(x1: torch.Tensor, x2: torch.Tensor, /, *, axis: int = -1) -> torch.Tensor:
        product: torch.Tensor = torch.linalg.vecdot(x1, x2, dim=axis)
        return product

    @staticmethod
    def sum(x: torch.Tensor, /, *, axis: int | None = None) -> torch.Tensor:
        return torch.sum(x) if axis is None else torch.sum(x, dim=axis)

    @staticmethod
    def any(x: torch.Tensor, /, *, axis: int | None = None) -> torch.Tensor:
        return torch.any(x) if axis is None else torch.any(x, dim=axis)

    @staticmethod
    def all(x: torch.Tensor, /, *, axis: int | None = None) -> torch.Tensor:
        return torch.all(x) if axis is None else torch.all(x, dim=axis)

    @staticmethod
    def take_along_axis(x: torch.Tensor, indices: torch.Tensor, /, *, axis: int = -1) -> torch.Tensor:
        return torch.take_along_dim(x, indices, dim=axis)

    @staticmethod
    def cumulative_prod(x: torch.Tensor, /, *, axis: int) -> torch.Tensor:
        return torch.cumprod(x, dim=axis)

    @staticmethod
    def broadcast_to(x: torch.Tensor, /, shape: tuple[int, ...]) -> torch.Tensor:
        return x.expand(shape)

    @staticmethod
    def permute_dims(x: torch.Tensor, /, axes: tuple[int, ...]) -> torch.Tensor:
        return x.permute(axes)

    def __getattr__(self, name: str) -> Any:
        return getattr(compat, name)


TORCH = _TorchNamespace()
"""The namespace :func:`ode_adjoint.solve` gives the per-sample loop for torch tensors."""
