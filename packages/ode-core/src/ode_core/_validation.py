"""Checks of the arguments of ``solve``: each failure names the argument,
what was given and what was expected."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj

from ._tableau import ButcherTableau
from ._tableaux import TABLEAUX

__all__ = [
    "check_callable",
    "check_f_output",
    "check_method",
    "check_optional_times",
    "check_positive",
    "check_state",
    "check_times",
    "check_tolerances",
    "flat_jacobian",
]


def check_method(method: str | ButcherTableau) -> ButcherTableau:
    """The tableau for a registry name, or a user tableau as is."""
    if isinstance(method, ButcherTableau):
        return method
    if not isinstance(method, str):
        raise TypeError(f"method: expected a method name or a ButcherTableau, got {type(method).__name__}")
    try:
        return TABLEAUX[method]
    except KeyError:
        raise ValueError(f"method: unknown method {method!r}; valid names are {', '.join(TABLEAUX)}") from None


def check_state(y0: Any) -> tuple[Any, Any]:
    """``(xp, y0)`` with ``y0`` an array of a real floating dtype, all finite.

    Python numbers and sequences become float64 NumPy arrays.
    """
    if not is_array_api_obj(y0):
        try:
            y0 = np.asarray(y0, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"y0: expected an array or a sequence of numbers, got {type(y0).__name__}") from exc
    xp = array_namespace(y0)
    if not xp.isdtype(y0.dtype, "real floating"):
        raise TypeError(
            f"y0: expected a real floating dtype (float32 or float64), got {y0.dtype}; "
            "convert it first (complex states: split into real and imaginary parts)"
        )
    if math.prod(y0.shape) == 0:
        raise ValueError(f"y0: expected at least one element, got shape {tuple(y0.shape)}")
    if not bool(xp.all(xp.isfinite(y0))):
        raise ValueError("y0: contains inf or nan")
    return xp, y0


def _as_float_list(values: Any, name: str) -> list[float]:
    if hasattr(values, "tolist") and hasattr(values, "shape"):
        if len(values.shape) != 1:
            raise ValueError(f"{name}: expected a 1-D sequence of times, got shape {tuple(values.shape)}")
        values = values.tolist()
    try:
        times = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a 1-D sequence of real numbers, got {type(values).__name__}") from exc
    if not all(math.isfinite(v) for v in times):
        raise ValueError(f"{name}: contains inf or nan")
    return times


def check_times(t: Any) -> tuple[list[float], float]:
    """Output times as floats and the direction of integration (+1 or -1)."""
    times = _as_float_list(t, "t")
    if len(times) < 2:
        raise ValueError(f"t: expected at least two output times (start and end), got {len(times)}")
    direction = 1.0 if times[1] > times[0] else -1.0
    for i in range(1, len(times)):
        if not direction * (times[i] - times[i - 1]) > 0:
            kind = "duplicated" if times[i] == times[i - 1] else "not monotonic"
            raise ValueError(
                f"t: expected strictly increasing or strictly decreasing times; t[{i - 1}]={times[i - 1]!r} "
                f"and t[{i}]={times[i]!r} are {kind}"
            )
    return times, direction


def check_optional_times(values: Any, name: str) -> list[float]:
    """``step_t``/``jump_t``: a possibly empty 1-D sequence of finite times."""
    if values is None:
        return []
    return _as_float_list(values, name)


def check_tolerances(rtol: Any, atol: Any, xp: Any, y0: Any) -> tuple[Any, Any]:
    """Scalars stay Python floats; arrays become flat arrays in y0's namespace."""
    checked = []
    for name, value, allow_zero in (("rtol", rtol, False), ("atol", atol, True)):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
            ok = value >= 0 if allow_zero else value > 0
            if not ok or not math.isfinite(value):
                expected = ">= 0" if allow_zero else "> 0"
                raise ValueError(f"{name}: expected a finite number {expected}, got {value!r}")
            checked.append(value)
            continue
        array = np.asarray(value.tolist() if hasattr(value, "tolist") else value, dtype=np.float64)
        if array.shape != tuple(y0.shape) and array.shape != (math.prod(y0.shape),):
            raise ValueError(f"{name}: expected a scalar or an array of shape {tuple(y0.shape)}, got {array.shape}")
        if not np.all(np.isfinite(array)) or (np.any(array < 0) if allow_zero else np.any(array <= 0)):
            raise ValueError(f"{name}: expected finite values {'>= 0' if allow_zero else '> 0'}")
        checked.append(xp.asarray(array.reshape(-1), dtype=y0.dtype, device=device(y0)))
    return checked[0], checked[1]


def check_positive(value: Any, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """A positive (or non-negative) float option."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    number = float(value)
    if number != number or (number == math.inf and not allow_inf) or number < 0 or (number == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a {'' if allow_inf else 'finite '}number {expected}, got {number!r}")
    return number


def check_f_output(value: Any, y0: Any, xp: Any) -> None:
    """The first value of ``f`` must match ``y0`` in namespace, shape and dtype."""
    if not is_array_api_obj(value) or array_namespace(value) is not xp:
        raise TypeError(
            f"f: expected f(t, y) to return an array of the same library as y0 ({xp.__name__}), "
            f"got {type(value).__name__}"
        )
    if tuple(value.shape) != tuple(y0.shape):
        raise ValueError(f"f: returned shape {tuple(value.shape)}, expected y0's shape {tuple(y0.shape)}")
    if value.dtype != y0.dtype:
        raise TypeError(f"f: returned dtype {value.dtype}, expected y0's dtype {y0.dtype}")
    if device(value) != device(y0):
        raise ValueError(f"f: returned an array on device {device(value)}, expected y0's device {device(y0)}")


def flat_jacobian(
    jac: Callable[[float, Any], Any] | None, y0: Any, xp: Any, shape: tuple[int, ...], n: int
) -> Callable[[float, Any], Any] | None:
    """Wrap ``jac`` to map the flat state to an ``(n, n)`` matrix; its first
    value is checked for library, shape, dtype and device."""
    if jac is None:
        return None
    check_callable(jac, "jac")
    checked = False

    def flat(t: float, y: Any) -> Any:
        nonlocal checked
        value = jac(t, xp.reshape(y, shape))
        if not checked:
            if not is_array_api_obj(value) or array_namespace(value) is not xp:
                raise TypeError(f"jac: expected an array of the same library as y0, got {type(value).__name__}")
            if tuple(value.shape) not in ((n, n), shape + shape):
                raise ValueError(
                    f"jac: returned shape {tuple(value.shape)}, expected {(n, n)} or {shape + shape} (y0.shape twice)"
                )
            if value.dtype != y0.dtype:
                raise TypeError(f"jac: returned dtype {value.dtype}, expected y0's dtype {y0.dtype}")
            checked = True
        return xp.reshape(value, (n, n))

    return flat


def check_callable(value: Any, name: str) -> Callable[..., Any]:
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]
