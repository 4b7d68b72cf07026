"""Checks of a solve's arguments, for every package that starts a solve.

Each failure is a ``TypeError`` or ``ValueError`` that names the argument,
says what was given and what was expected, raised before any work is done.
:func:`ode_core.solve` runs them on its arguments; ode-adjoint runs the same
functions on torchdiffeq's arguments, passing the names its users know
(``options['step_size']``) through ``name`` and ``names``. A rule about a
valid argument lives here once.
"""

from __future__ import annotations

import contextlib
import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from array_api_compat import array_namespace, device, is_array_api_obj, is_numpy_namespace

from ._adams import AdamsMethod
from ._arrays import detached, is_finite
from ._auto import AutoMethod
from ._bdf import BDFMethod
from ._differences import check_sparsity
from ._linalg import is_sparse
from ._settings import Settings
from ._tableau import ButcherTableau
from ._tableaux import ALIASES, METHODS, MULTISTEP, TABLEAUX, VARIABLE_ORDER

__all__ = [
    "check_batch_dims",
    "check_callable",
    "check_controller",
    "check_count",
    "check_f_output",
    "check_mapping",
    "check_method",
    "check_optional_times",
    "check_per_sample",
    "check_positive",
    "check_sample_times",
    "check_settings",
    "check_span",
    "check_state",
    "check_times",
    "check_tolerances",
    "flat_jacobian",
    "is_finite",
    "real_dtype",
    "working_dtype",
]


def check_callable(value: Any, name: str) -> Callable[..., Any]:
    """``value`` itself if it is callable.

    Parameters
    ----------
    value : object
    name : str
        The argument's name in error messages.

    Returns
    -------
    callable
    """
    if not callable(value):
        raise TypeError(f"{name}: expected a callable, got {type(value).__name__}")
    return value  # type: ignore[no-any-return]


def check_method(method: Any, name: str = "method") -> ButcherTableau | AdamsMethod | BDFMethod | AutoMethod:
    """The method for a registry name (or one of its :data:`ode_core.ALIASES`), or a user's method as is.

    Parameters
    ----------
    method : str, ButcherTableau, AdamsMethod, BDFMethod or AutoMethod
    name : str
        The argument's name in error messages.

    Returns
    -------
    ButcherTableau, AdamsMethod, BDFMethod or AutoMethod
    """
    if isinstance(method, (ButcherTableau, AdamsMethod, BDFMethod, AutoMethod)):
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"{name}: expected a method name, a ButcherTableau, an AdamsMethod or a BDFMethod, got "
            f"{type(method).__name__}"
        )
    own = ALIASES.get(method, method)
    found = TABLEAUX.get(own) or MULTISTEP.get(own) or VARIABLE_ORDER.get(own)
    if found is None:
        aliases = ", ".join(f"{alias} ({own})" for alias, own in ALIASES.items())
        raise ValueError(
            f"{name}: unknown method {method!r}; valid names are {', '.join(METHODS)}, and the aliases {aliases}"
        )
    return found


def working_dtype(xp: Any, dtype: Any) -> Any:
    """The dtype the solver computes in for a state of ``dtype``.

    float32 and float64 states are integrated in their own dtype. Half
    precision states (float16, bfloat16) are integrated in float32: their
    own resolution (8 and 11 significant bits) would swallow a small step's
    increment ``h sum b_i k_i`` whole, so ``y`` would stop moving while the
    solve reports success. ``f`` still sees the state's dtype.

    Parameters
    ----------
    xp : array namespace
    dtype : real floating dtype of ``xp``

    Returns
    -------
    dtype
    """
    return xp.float32 if xp.finfo(dtype).bits < 32 else dtype


def check_state(
    y0: Any,
    name: str = "y0",
    *,
    convert_integers: bool = False,
    allow_complex: bool = False,
    allow_empty: bool = False,
) -> tuple[Any, Any]:
    """``(xp, y0)`` with ``y0`` an array of a floating dtype, all finite.

    Python numbers and sequences become NumPy arrays: float64, or complex128
    where they hold complex numbers and ``allow_complex``.

    Parameters
    ----------
    y0 : array or sequence of numbers
    name : str
        The argument's name in error messages.
    convert_integers : bool
        Integer and boolean arrays become float64 arrays of their library
        (as scipy's ``solve_ivp`` converts them) instead of being refused.
    allow_complex : bool
        Accept complex floating dtypes (``ode_core.solve``; the torch
        gradient engines take real states).
    allow_empty : bool
        Accept a state with no elements (``ode_core.solve``: nothing to
        integrate).

    Returns
    -------
    xp : array namespace
    y0 : array
    """
    if not is_array_api_obj(y0):
        try:
            y0 = np.asarray(y0)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name}: expected an array or a sequence of numbers, got {type(y0).__name__}") from exc
        if y0.dtype == object or not (np.issubdtype(y0.dtype, np.number) or np.issubdtype(y0.dtype, np.bool_)):
            raise TypeError(f"{name}: expected an array or a sequence of numbers, got {type(y0).__name__}")
        if not (allow_complex and np.iscomplexobj(y0)):
            y0 = y0.astype(np.float64)
    xp = array_namespace(y0)
    if convert_integers and (xp.isdtype(y0.dtype, "integral") or xp.isdtype(y0.dtype, "bool")):
        y0 = xp.astype(y0, xp.float64)
    kinds = ("real floating", "complex floating") if allow_complex else "real floating"
    if not xp.isdtype(y0.dtype, kinds):
        expected = (
            "a floating dtype (real or complex)"
            if allow_complex
            else ("a real floating dtype (float16, bfloat16, float32 or float64)")
        )
        hint = "" if allow_complex else "; convert it first (complex states: split into real and imaginary parts)"
        raise TypeError(f"{name}: expected {expected}, got {y0.dtype}{hint}")
    if math.prod(y0.shape) == 0 and not allow_empty:
        raise ValueError(f"{name}: expected at least one element, got shape {tuple(y0.shape)}")
    if not is_finite(xp, y0):
        # scipy's words too, for code that matches them.
        raise ValueError(f"{name}: contains inf or nan; All components of the initial state `y0` must be finite.")
    return xp, y0


def _as_float_list(values: Any, name: str, *, infinite_end: bool = False) -> list[float]:
    if hasattr(values, "tolist") and hasattr(values, "shape"):
        if len(values.shape) != 1:
            raise ValueError(f"{name}: expected a 1-D sequence of times, got shape {tuple(values.shape)}")
        values = values.tolist()
    if type(values) is not list and (isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, range))):
        raise TypeError(f"{name}: expected a 1-D sequence of real numbers, got {type(values).__name__}")
    try:
        times = [float(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected a 1-D sequence of real numbers, got {type(values).__name__}") from exc
    finite = times[:-1] if infinite_end and len(times) > 1 and math.isinf(times[-1]) else times
    if not all(map(math.isfinite, finite)):
        where = " (only the last time may be infinite)" if infinite_end else ""
        raise ValueError(f"{name}: contains inf or nan{where}")
    return times


def check_times(t: Any, name: str = "t", *, allow_zero_span: bool = False) -> tuple[list[float], float]:
    """Output times as floats and the direction of integration (+1 or -1).

    Parameters
    ----------
    t : 1-D array or sequence of real numbers, at least one, strictly monotonic
        A single time asks for the initial state alone (as torchdiffeq
        allows): the solve takes no step. The last of several may be
        ``inf`` or ``-inf``: the solve runs until a terminal event (or
        ``max_steps``).
    name : str
        The argument's name in error messages.
    allow_zero_span : bool
        Also accept several times all equal to the first, a span of zero
        length (scipy's ``t_span=(a, a)``): the initial state at each.

    Returns
    -------
    times : list of float
    direction : float
        +1 for a single time.
    """
    times = _as_float_list(t, name, infinite_end=True)
    if not times:
        raise ValueError(f"{name}: expected at least one output time (the initial time), got none")
    direction = 1.0 if len(times) == 1 or times[1] > times[0] else -1.0
    if allow_zero_span and all(v == times[0] for v in times):
        return times, 1.0
    if all(map(operator.lt if direction > 0 else operator.gt, times, times[1:])):
        return times, direction
    for i in range(1, len(times)):  # find the first pair out of order, to name it
        if not direction * (times[i] - times[i - 1]) > 0:
            kind = "duplicated" if times[i] == times[i - 1] else "not monotonic"
            raise ValueError(
                f"{name}: expected strictly increasing or strictly decreasing times; t[{i - 1}]={times[i - 1]!r} "
                f"and t[{i}]={times[i]!r} are {kind}"
            )
    return times, direction


def check_span(times: list[float], settings: Settings, name: str = "t") -> None:
    """Refuse an infinite end time where the steps come from the grid of ``t`` (a fixed-step method, no step size).

    Parameters
    ----------
    times : list of float
        From :func:`check_times`.
    settings : Settings
    name : str
        The argument's name in error messages.
    """
    if settings.gridded and math.isinf(times[-1]):
        raise ValueError(
            f"{name}: ends at {times[-1]}, and method {settings.method.name!r} without a step size steps on the grid "
            "of t; give a step size (or an adaptive method) to run until an event"
        )


def check_optional_times(values: Any, name: str) -> list[float]:
    """``step_t``/``jump_t``: a possibly empty 1-D sequence of finite times.

    Parameters
    ----------
    values : 1-D array, sequence of real numbers, or None
    name : str
        The argument's name in error messages.

    Returns
    -------
    list of float
    """
    if values is None:
        return []
    return _as_float_list(values, name)


def real_dtype(xp: Any, dtype: Any) -> Any:
    """The real floating dtype of ``dtype``'s precision: itself when real, float64 for complex128.

    Parameters
    ----------
    xp : array namespace
    dtype : dtype

    Returns
    -------
    dtype
    """
    if not xp.isdtype(dtype, "complex floating"):
        return dtype
    return xp.float32 if dtype == xp.complex64 else xp.float64


def check_tolerances(
    rtol: Any, atol: Any, xp: Any, y0: Any, names: tuple[str, str] = ("rtol", "atol")
) -> tuple[Any, Any]:
    """Scalars stay Python floats; arrays become flat arrays in y0's namespace.

    Parameters
    ----------
    rtol, atol : float or array of y0's shape (or its size)
    xp : array namespace of ``y0``
    y0 : array
        Gives the shape, dtype and device of array tolerances.
    names : (str, str)
        The arguments' names in error messages.

    Returns
    -------
    rtol, atol : float or array of shape (y0.size,)
    """
    checked = []
    for name, value, allow_zero in ((names[0], rtol, False), (names[1], atol, True)):
        if isinstance(value, bool):
            raise TypeError(f"{name}: expected a number or an array, got bool")
        if not isinstance(value, (int, float)):
            try:
                array = np.asarray(value.tolist() if hasattr(value, "tolist") else value, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"{name}: expected a number or an array, got {type(value).__name__}") from exc
            if array.ndim > 0:
                if array.shape != tuple(y0.shape) and array.shape != (math.prod(y0.shape),):
                    raise ValueError(
                        f"{name}: expected a scalar or an array of shape {tuple(y0.shape)}, got {array.shape}"
                    )
                if not np.all(np.isfinite(array)) or (np.any(array < 0) if allow_zero else np.any(array <= 0)):
                    raise ValueError(f"{name}: expected finite values {'>= 0' if allow_zero else '> 0'}")
                checked.append(xp.asarray(array.reshape(-1), dtype=real_dtype(xp, y0.dtype), device=device(y0)))
                continue
            value = float(array)  # a 0-d array is a scalar
        value = float(value)
        if not (value >= 0 if allow_zero else value > 0) or not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
        checked.append(value)
    return checked[0], checked[1]


def check_positive(value: Any, name: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    """A positive (or non-negative) number as a float.

    Parameters
    ----------
    value : int, float, or a one-element array
    name : str
        The argument's name in error messages.
    allow_zero, allow_inf : bool
        Whether 0 and ``inf`` are valid.

    Returns
    -------
    float
    """
    kind = type(value)
    if kind is not float and kind is not int and is_array_api_obj(value) and math.prod(value.shape) == 1:
        with contextlib.suppress(TypeError, ValueError):  # not a real number: the checks below say so
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    number = float(value)
    if number != number or (number == math.inf and not allow_inf) or number < 0 or (number == 0 and not allow_zero):
        expected = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a {'' if allow_inf else 'finite '}number {expected}, got {number!r}")
    return number


def check_count(value: Any, name: str) -> int:
    """A positive int (``max_steps``, a checkpoint budget).

    Parameters
    ----------
    value : int
    name : str
        The argument's name in error messages.

    Returns
    -------
    int
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def check_mapping(value: Any, name: str) -> dict[str, Any]:
    """A dict of options (``None`` is empty), with string keys.

    Parameters
    ----------
    value : mapping or None
    name : str
        The argument's name in error messages.

    Returns
    -------
    dict
        A shallow copy.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name}: expected a dict of options, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise TypeError(f"{name}: expected string keys, got {key!r}")
    return dict(value)


def check_controller(controller: Any, name: str = "controller") -> Any:
    """A step-size controller (an object with ``init`` and ``adapt``), or None.

    Parameters
    ----------
    controller : object or None
    name : str
        The argument's name in error messages.

    Returns
    -------
    controller or None
    """
    if controller is not None and not (
        callable(getattr(controller, "init", None)) and callable(getattr(controller, "adapt", None))
    ):
        raise TypeError(f"{name}: expected a step-size controller (e.g. PIController()), got {controller!r}")
    return controller


def check_f_output(value: Any, y0: Any, xp: Any, name: str = "f") -> None:
    """The first value of ``f`` must match ``y0`` in namespace, shape, dtype and device.

    Parameters
    ----------
    value : array
        ``f(t0, y0)``.
    y0 : array
    xp : array namespace of ``y0``
    name : str
        The function's name in error messages.
    """
    if not is_array_api_obj(value) or array_namespace(value) is not xp:
        raise TypeError(
            f"{name}: expected f(t, y) to return an array of the same library as y0 ({xp.__name__}), "
            f"got {type(value).__name__}"
        )
    if tuple(value.shape) != tuple(y0.shape):
        raise ValueError(f"{name}: returned shape {tuple(value.shape)}, expected y0's shape {tuple(y0.shape)}")
    if value.dtype != y0.dtype:
        raise TypeError(f"{name}: returned dtype {value.dtype}, expected y0's dtype {y0.dtype}")
    if device(value) != device(y0):
        raise ValueError(f"{name}: returned an array on device {device(value)}, expected y0's device {device(y0)}")


def flat_jacobian(
    jac: Callable[[float, Any], Any] | None, y0: Any, xp: Any, shape: tuple[int, ...], n: int
) -> Callable[[float, Any], Any] | None:
    """Wrap ``jac`` to map the flat state to an ``(n, n)`` matrix; its first
    value is checked for library, shape, dtype and device.

    Parameters
    ----------
    jac : callable or None
        ``jac(t, y) -> df/dy`` on states of ``shape``.
    y0 : array
        Gives the expected dtype.
    xp : array namespace
    shape : tuple of int
        The state's shape.
    n : int
        The state's size.

    Returns
    -------
    callable or None
        ``jac`` on the flat state.
    """
    if jac is None:
        return None
    check_callable(jac, "jac")
    checked = False

    def flat(t: float, y: Any) -> Any:
        nonlocal checked
        value = jac(t, xp.reshape(y, shape))
        if isinstance(value, (list, tuple)):  # scipy's rule: nested sequences become an array of y0's dtype
            value = xp.asarray(value, dtype=y0.dtype, device=device(y0))
        if is_sparse(value):  # a scipy.sparse matrix, kept sparse (sparse LU), for NumPy states
            if not checked:
                if not is_numpy_namespace(xp):
                    raise TypeError(f"jac: returned a scipy.sparse matrix for a state of {xp.__name__}")
                if tuple(value.shape) != (n, n):
                    raise ValueError(f"jac: returned shape {tuple(value.shape)}, expected {(n, n)}")
                checked = True
            return value.astype(y0.dtype, copy=False).tocsc()
        if not checked:
            if not is_array_api_obj(value) or array_namespace(value) is not xp:
                raise TypeError(f"jac: expected an array of the same library as y0, got {type(value).__name__}")
            if tuple(value.shape) not in ((n, n), shape + shape):
                raise ValueError(
                    f"jac: returned shape {tuple(value.shape)}, expected {(n, n)} or {shape + shape} (y0.shape twice)"
                )
            complex_of_real = xp.isdtype(y0.dtype, "complex floating") and value.dtype == real_dtype(xp, y0.dtype)
            if value.dtype != y0.dtype and not complex_of_real:
                raise TypeError(f"jac: returned dtype {value.dtype}, expected y0's dtype {y0.dtype}")
            checked = True
        if value.dtype != y0.dtype:  # a real Jacobian of a complex state (scipy converts it too)
            value = xp.astype(value, y0.dtype)
        return xp.reshape(value, (n, n))

    flat.constant = getattr(jac, "constant", False)  # type: ignore[attr-defined]
    return flat


def _warn_unresolved_rtol(rtol: Any, xp: Any, dtype: Any, name: str) -> None:
    """Warn when ``rtol`` asks for more than a half-precision ``f`` resolves."""
    if xp.finfo(dtype).bits >= 32:
        return
    eps = float(xp.finfo(dtype).eps)
    smallest = rtol if isinstance(rtol, float) else float(xp.min(rtol))
    if smallest < eps:
        warnings.warn(
            f"{name}={smallest:g} is below what {dtype} resolves (eps {eps:g}): f is evaluated in {dtype}, so "
            f"the error estimate carries noise of about eps and the solver takes small steps to meet {name}; "
            f"use {name} >= {eps:g}, or a float32 state",
            UserWarning,
            stacklevel=4,
        )


def check_settings(
    method: Any,
    rtol: Any,
    atol: Any,
    *,
    xp: Any,
    y0: Any,
    step_size: Any = None,
    first_step: Any = None,
    max_step: Any = math.inf,
    min_step: Any = 0.0,
    max_steps: Any = 100_000,
    controller: Any = None,
    norm: Callable[[Any], float] | None = None,
    step_t: Any = None,
    jump_t: Any = None,
    dense_output: Any = False,
    jac: Callable[[float, Any], Any] | None = None,
    jac_sparsity: Any = None,
    linear_solver: Any = "direct",
    jvp: Callable[[float, Any, Any], Any] | None = None,
    differentiable_solve: Callable[..., Any] | None = None,
    progress: Any = False,
    one_sided_steps: Any = False,
    accept_at_min_step: Any = False,
    state_dtype: Any = None,
    names: Mapping[str, str] | None = None,
) -> Settings:
    """Check a solve's settings and return them as :class:`ode_core.Settings`.

    Parameters
    ----------
    method, rtol, atol, step_size, first_step, max_step, min_step, max_steps
        As :func:`ode_core.solve` takes them.
    controller, step_t, jump_t, dense_output, progress
        As :func:`ode_core.solve` takes them.
    one_sided_steps : bool
        See :class:`ode_core.Settings` (fixed steps only; ignored otherwise).
    accept_at_min_step : bool
        See :class:`ode_core.Settings`.
    xp : array namespace
    y0 : array, shape (n,)
        The flat initial state, in the dtype the solver computes in: it
        gives array tolerances their dtype and device.
    norm : callable or None
        On the flat scaled error; checked to be callable.
    jac : callable or None
        On the flat state (see :func:`flat_jacobian`); implicit methods only.
    jac_sparsity : array_like or scipy.sparse matrix or None
        ``(n, n)``: where ``df/dy`` may be nonzero; implicit methods on
        NumPy states, without ``jac`` (which it would not serve: ignored).
    linear_solver : {"direct", "krylov"}
        ``"krylov"``: matrix-free Newton (GMRES on ``J v``) for the
        diagonally implicit methods, ``radau5`` and ``bdf``, real states.
    jvp : callable or None
        ``jvp(t, y, v)`` on flat arrays; ``"krylov"`` only.
    differentiable_solve : callable or None
        ``"krylov"`` only: how a Newton system's solve is differentiated
        (see ``ode_core._krylov.KrylovSolver``).
    state_dtype : dtype, optional
        The user's state dtype, when the solver computes in another one
        (half precision): an ``rtol`` below its resolution warns.
    names : mapping, optional
        Names to use in error messages instead of the parameter names, e.g.
        ``{"step_size": "options['step_size']"}``.

    Returns
    -------
    Settings
    """
    named = names or {}

    def called(parameter: str) -> str:
        return named.get(parameter, parameter)

    tableau = check_method(method, called("method"))
    rtol, atol = check_tolerances(rtol, atol, xp, y0, (called("rtol"), called("atol")))
    if isinstance(tableau, (BDFMethod, AutoMethod)):
        # Its steps and orders come from its own estimates; a step size or a controller would bypass them.
        if step_size is not None:
            raise ValueError(f"{called('step_size')}: {tableau.name!r} chooses its own steps; pass step_size=None")
        if controller is not None:
            raise ValueError(
                f"{called('controller')}: {tableau.name!r} chooses its own steps and orders; pass controller=None"
            )
    if step_size is not None:
        step_size = check_positive(step_size, called("step_size"))
    if first_step is not None:
        first_step = check_positive(first_step, called("first_step"))
    max_step = check_positive(max_step, called("max_step"), allow_inf=True)
    min_step = check_positive(min_step, called("min_step"), allow_zero=True)
    if min_step > max_step:
        raise ValueError(f"{called('min_step')}: {min_step} exceeds {called('max_step')}={max_step}")
    max_steps = check_count(max_steps, called("max_steps"))
    check_controller(controller, called("controller"))
    if norm is not None:
        check_callable(norm, called("norm"))
    if jac is not None:
        check_callable(jac, called("jac"))
        if tableau.explicit:
            # As scipy's solve_ivp: code that passes a Jacobian to every method runs.
            warnings.warn(
                f"{called('jac')}: method {tableau.name!r} is explicit and uses no Jacobian; it is ignored "
                "(The following arguments have no effect for a chosen solver: `jac`.)",
                UserWarning,
                stacklevel=4,
            )
            jac = None
    if jac_sparsity is not None:
        if tableau.explicit:
            warnings.warn(
                f"{called('jac_sparsity')}: method {tableau.name!r} is explicit and uses no Jacobian; it is ignored",
                UserWarning,
                stacklevel=4,
            )
            jac_sparsity = None
        elif not is_numpy_namespace(xp):
            raise TypeError(f"{called('jac_sparsity')}: grouped differences take NumPy states, got {xp.__name__}")
        elif jac is not None:
            jac_sparsity = None  # a Jacobian given needs no differences (scipy ignores it too)
        else:
            jac_sparsity = check_sparsity(jac_sparsity, math.prod(y0.shape), called("jac_sparsity"))
    if linear_solver not in ("direct", "krylov"):
        raise ValueError(f"{called('linear_solver')}: expected 'direct' or 'krylov', got {linear_solver!r}")
    if jvp is not None:
        check_callable(jvp, called("jvp"))
        if linear_solver != "krylov":
            raise ValueError(f"{called('jvp')}: Jacobian-vector products serve linear_solver='krylov' only")
    if linear_solver == "krylov":
        # The steppers make_stepper picks for these: bdf's, the diagonally implicit one, and RadauIIA (an
        # adaptive coupled tableau); the fixed-step coupled methods' (s n) system takes no products.
        supported = isinstance(tableau, BDFMethod) or (
            isinstance(tableau, ButcherTableau)
            and tableau.implicit
            and (tableau.diagonally_implicit or tableau.adaptive)
        )
        if not supported:
            raise ValueError(
                f"{called('linear_solver')}: 'krylov' serves the diagonally implicit methods, radau5 and bdf; "
                f"got method {tableau.name!r}"
            )
        if xp.isdtype(y0.dtype, "complex floating"):
            raise TypeError(f"{called('linear_solver')}: 'krylov' takes real states, got {y0.dtype}")
        if jac_sparsity is not None:
            raise ValueError(f"{called('jac_sparsity')}: a matrix-free Newton uses no sparsity; pass one of them")
    flags = (
        ("dense_output", dense_output),
        ("progress", progress),
        ("one_sided_steps", one_sided_steps),
        ("accept_at_min_step", accept_at_min_step),
    )
    for flag, value in flags:
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{called(flag)}: expected True or False, got {value!r}")
    if state_dtype is not None:
        if tableau.implicit:
            raise TypeError(
                f"{called('method')}: {tableau.name!r} is implicit, and its Newton iteration cannot work in "
                f"{state_dtype}: f's {state_dtype} values do not resolve the finite differences of its Jacobian; "
                "use a float32 state or an explicit method"
            )
        _warn_unresolved_rtol(rtol, xp, state_dtype, called("rtol"))
    return Settings(
        method=tableau,
        rtol=rtol,
        atol=atol,
        step_size=step_size,
        first_step=first_step,
        max_step=max_step,
        min_step=min_step,
        max_steps=max_steps,
        controller=controller,
        norm=norm,
        step_t=tuple(check_optional_times(step_t, called("step_t"))),
        jump_t=tuple(check_optional_times(jump_t, called("jump_t"))),
        dense_output=bool(dense_output),
        jac=jac,
        jac_sparsity=jac_sparsity,
        linear_solver=linear_solver,
        jvp=jvp,
        differentiable_solve=differentiable_solve,
        progress=bool(progress),
        one_sided_steps=bool(one_sided_steps) and (step_size is not None or not tableau.adaptive),
        accept_at_min_step=bool(accept_at_min_step),
    )


def check_batch_dims(batch_dims: Any, y0: Any, name: str = "batch_dims") -> int:
    """The per-sample mode's number of leading batch dimensions of ``y0`` (0: a joint solve).

    Parameters
    ----------
    batch_dims : int
    y0 : array
    name : str
        The argument's name in error messages.

    Returns
    -------
    int
    """
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, (int, np.integer)):
        raise TypeError(f"{name}: expected an integer, got {type(batch_dims).__name__}")
    count = int(batch_dims)
    if not 0 <= count <= len(y0.shape):
        raise ValueError(
            f"{name}: expected 0 to {len(y0.shape)} (the dimensions of y0, shape {tuple(y0.shape)}), got {count}"
        )
    return count


def check_sample_times(t: Any, batch_shape: tuple[int, ...], name: str = "t") -> tuple[np.ndarray, float]:
    """The per-sample mode's output times: shared (m,) or one row per sample (*batch, m).

    Parameters
    ----------
    t : array or sequence, shape (m,) or (*batch_shape, m)
        Every row strictly monotonic, all in one direction, finite.
    batch_shape : tuple of int
    name : str
        The argument's name in error messages.

    Returns
    -------
    times : ndarray of float64, shape (prod(batch_shape), m)
    direction : float
    """
    try:
        values = detached(t)
        values = values.cpu() if callable(getattr(values, "cpu", None)) else values
        array = np.asarray(values.tolist() if hasattr(values, "tolist") else values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}: expected an array or a sequence of times, got {type(t).__name__}") from exc
    batch = math.prod(batch_shape)
    if array.ndim == 1:
        array = np.broadcast_to(array, (batch, array.shape[0]))
    elif tuple(array.shape[:-1]) == tuple(batch_shape):
        array = array.reshape(batch, array.shape[-1])
    else:
        raise ValueError(
            f"{name}: expected shape (m,) or {(*batch_shape, 'm')} (the batch dimensions of y0), "
            f"got {tuple(array.shape)}"
        )
    if array.shape[1] < 1:
        raise ValueError(f"{name}: expected at least one output time (the initial time), got none")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains inf or nan")
    if array.shape[1] == 1:
        return np.array(array), 1.0
    steps = np.diff(array, axis=1)
    direction = 1.0 if steps[0, 0] > 0 else -1.0
    bad = np.argwhere(~(direction * steps > 0))
    if bad.size:
        sample, i = (int(v) for v in bad[0])
        raise ValueError(
            f"{name}: expected every sample's times strictly {'increasing' if direction > 0 else 'decreasing'} "
            f"(as sample 0's); sample {sample} has t[{i}]={array[sample, i]!r}, t[{i + 1}]={array[sample, i + 1]!r}"
        )
    return np.array(array), direction  # a copy: writable, whatever view came in


def check_per_sample(settings: Settings, names: Mapping[str, str] | None = None, **refused: Any) -> None:
    """Refuse what the per-sample mode does not do, naming the argument.

    Parameters
    ----------
    settings : Settings
    names : mapping, optional
        Names to use in error messages (as :func:`check_settings`).
    **refused
        Other arguments of the solve that the mode cannot take when given
        (``events=...``, ``on_step=...``): each must be None or False.
    """
    named = names or {}

    def called(parameter: str) -> str:
        return named.get(parameter, parameter)

    tableau = settings.method
    why = "in the per-sample mode (batch_dims)"
    if isinstance(tableau, AdamsMethod) or not tableau.explicit:
        kind = "a multistep method" if isinstance(tableau, AdamsMethod) else "implicit"
        raise ValueError(f"{called('method')}: {tableau.name!r} is {kind}; {why} use an explicit Runge-Kutta method")
    controller = settings.controller
    if controller is not None and not callable(getattr(controller, "adapt_per_sample", None)):
        raise ValueError(
            f"{called('controller')}: {type(controller).__name__} has no per-sample rule; {why} use a PIDController"
        )
    for parameter, value in (
        ("step_t", settings.step_t),
        ("jump_t", settings.jump_t),
        ("dense_output", settings.dense_output),
        ("progress", settings.progress),
        ("one_sided_steps", settings.one_sided_steps),
        *refused.items(),
    ):
        if value is not None and value is not False and value != ():
            raise ValueError(f"{called(parameter)}: not available {why}; got {value!r}")
