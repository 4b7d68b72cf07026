"""``solve``, ``odeint`` and ``odeint_adjoint``: torchdiffeq's API over ode-core's
loop, with a choice of gradient engine."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from array_api_compat import array_namespace
from ode_core import DEFAULT_SYNC_EVERY, AdamsMethod, ButcherTableau, MixedNorm, PIDController, Settings, Status
from ode_core.validation import (
    check_batch_dims,
    check_callable,
    check_count,
    check_mapping,
    check_method,
    check_optional_times,
    check_positive,
    check_settings,
    check_span,
    check_times,
)

from ._engines import (
    Adjoint,
    Backprop,
    Checkpoint,
    Differentiated,
    EventTime,
    GradientEngine,
    Problem,
    autograd_jacobian,
    autograd_jvp,
    autograd_linear_solve,
    seminorm,
)
from ._per_sample import solve_per_sample
from ._scipy import SCIPY_SOLVER, scipy_odeint
from ._solution import Solution, SolverError
from ._state import FlatFunction, FlatState

__all__ = ["GRADIENTS", "odeint", "odeint_adjoint", "odeint_event", "solve"]

GRADIENTS = ("backprop", "adjoint", "checkpoint")
"""The gradient engines ``gradient=`` accepts by name (or pass an engine object)."""

_ENGINES: dict[str, type[GradientEngine]] = {"backprop": Backprop, "adjoint": Adjoint, "checkpoint": Checkpoint}

_TORCHDIFFEQ_OPTIONS = {
    "grid_constructor",
    "perturb",
    "step_size",
    "first_step",
    "max_num_steps",
    "step_t",
    "jump_t",
    "norm",
    "safety",
    "ifactor",
    "dfactor",
}
_OUR_OPTIONS = {"controller", "checkpoints", "max_step", "min_step", "linear_solver"}
_IGNORED_OPTIONS = {"interp", "dtype"}
# torchdiffeq's names of the controller's settings, and ode-core's.
_CONTROLLER_OPTIONS = {"safety": "safety", "ifactor": "max_factor", "dfactor": "min_factor"}


# A training loop solves with the same arguments every step: their checked
# Settings are kept, by value, so the checks run once (they cost about a
# solve step of a small network). Only plain values make a key: numbers,
# strings, sequences of numbers and frozen controllers, never a tensor or a
# norm, which could change behind the key.
_SETTINGS: dict[tuple[Any, ...], Settings] = {}


def _plain(value: Any) -> Any:
    """``value`` as a hashable snapshot, or ``_NOT_PLAIN``."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, ButcherTableau):
        # By identity: hashing every coefficient would cost more than the
        # checks. The cached Settings holds the tableau, so its id stays its own.
        return ("tableau", id(value))
    if isinstance(value, (list, tuple)):
        items = tuple(_plain(item) for item in value)
        return _NOT_PLAIN if _NOT_PLAIN in items else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type) and value.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        return value
    return _NOT_PLAIN


_NOT_PLAIN = object()


def _settings_key(
    method: Any, rtol: Any, atol: Any, options: dict[str, Any], norm: Any, where: str, *flags: Any
) -> tuple[Any, ...] | None:
    if norm is not None:
        return None
    values = [_plain(method), _plain(rtol), _plain(atol), *(_plain(v) for v in options.values())]
    if any(v is _NOT_PLAIN for v in values) or isinstance(method, (list, tuple)):
        return None
    return (where, *values, tuple(options), *flags)


def _settings(
    method: Any,
    rtol: Any,
    atol: Any,
    options: dict[str, Any],
    *,
    func: FlatFunction,
    y0: torch.Tensor,
    norm: Callable[[torch.Tensor], float] | None,
    where: str,
    xp: Any,
    dtype: torch.dtype | None = None,
    dense_output: bool = False,
    progress: bool = False,
) -> Settings:
    """Checked settings of one solve from torchdiffeq's arguments; errors name
    them as the user wrote them (``where`` is ``""`` or ``"adjoint_"``)."""
    key = _settings_key(method, rtol, atol, options, norm, where, dtype, dense_output, progress)
    if key is not None:
        cached = _SETTINGS.get(key)
        if cached is not None:
            return cached
    unknown = set(options) - _TORCHDIFFEQ_OPTIONS - _OUR_OPTIONS - _IGNORED_OPTIONS
    if unknown:
        accepted = sorted(_TORCHDIFFEQ_OPTIONS | _OUR_OPTIONS)
        raise ValueError(f"{where}options: unknown keys {sorted(unknown)}; accepted are {accepted}")
    tableau = check_method("dopri5" if method is None else method, f"{where}method")
    controller = options.get("controller")
    given = [key for key in _CONTROLLER_OPTIONS if key in options]
    if controller is not None and given:
        raise ValueError(f"{where}options: give either controller or {'/'.join(given)}, not both")
    if controller is None and given:
        values = {
            setting: check_positive(options[key], f"{where}options[{key!r}]")
            for key, setting in _CONTROLLER_OPTIONS.items()
            if key in options
        }
        try:
            controller = PIDController(**values)
        except ValueError as error:
            setting, _, reason = str(error).partition(": ")
            option = next(option for option, name in _CONTROLLER_OPTIONS.items() if name == setting)
            raise ValueError(f"{where}options[{option!r}]: {reason}") from None
    # Newton's norms and an Adams corrector's decide when to stop iterating;
    # they are not differentiated: measure detached values.
    iterated = tableau.implicit or (isinstance(tableau, AdamsMethod) and tableau.corrector)
    if norm is not None and iterated:
        measure = norm

        def norm(scaled: torch.Tensor) -> float:
            return float(measure(scaled.detach()))

    elif iterated:

        def norm(scaled: torch.Tensor) -> float:
            detached = scaled.detach()
            return float(torch.linalg.vector_norm(detached)) / math.sqrt(detached.shape[0])

    max_steps = options.get("max_num_steps")
    krylov = options.get("linear_solver") == "krylov"
    settings = check_settings(
        tableau,
        _scalar(rtol),
        _scalar(atol),
        xp=xp,
        y0=y0,
        step_size=options.get("step_size"),
        first_step=options.get("first_step"),
        max_step=float("inf") if options.get("max_step") is None else options["max_step"],
        min_step=0.0 if options.get("min_step") is None else options["min_step"],
        # torchdiffeq's min_step: steps never shrink below it and are accepted there.
        accept_at_min_step=True,
        max_steps=100_000 if max_steps is None else max_steps,
        controller=controller,
        norm=norm,
        step_t=options.get("step_t"),
        jump_t=options.get("jump_t"),
        # A matrix-free Newton (options['linear_solver'] = 'krylov') takes autograd's products J v, for
        # states whose Jacobian matrix would not fit; otherwise autograd's whole Jacobian.
        jac=autograd_jacobian(func) if tableau.implicit and not krylov else None,
        linear_solver=options.get("linear_solver", "direct"),
        jvp=autograd_jvp(func) if tableau.implicit and krylov else None,
        differentiable_solve=autograd_linear_solve(func) if tableau.implicit and krylov else None,
        dense_output=dense_output,
        progress=progress,
        one_sided_steps=bool(options.get("perturb", False)),
        state_dtype=dtype,
        names=_NAMES[where],
    )
    if options.get("perturb") and not settings.one_sided_steps:
        warnings.warn(
            f"{where}options['perturb']: method {tableau.name!r} chooses its own steps; perturb applies to fixed "
            "steps (use jump_t for known discontinuities)",
            UserWarning,
            stacklevel=4,
        )
    # An implicit method's Jacobian is func's; a half precision state's rtol
    # may warn, every time.
    if key is not None and not settings.method.implicit and dtype is None:
        if len(_SETTINGS) >= 64:
            _SETTINGS.clear()
        _SETTINGS[key] = settings
    return settings


def _names(where: str) -> dict[str, str]:
    """ode-core's parameter names as a torchdiffeq user writes them."""
    names = {"method": f"{where}method", "rtol": f"{where}rtol", "atol": f"{where}atol"}
    for parameter, key in (
        ("step_size", "step_size"),
        ("first_step", "first_step"),
        ("max_step", "max_step"),
        ("min_step", "min_step"),
        ("max_steps", "max_num_steps"),
        ("step_t", "step_t"),
        ("jump_t", "jump_t"),
        ("controller", "controller"),
        ("norm", "norm"),
        ("linear_solver", "linear_solver"),
    ):
        names[parameter] = f"{where}options[{key!r}]"
    return names


_NAMES = {where: _names(where) for where in ("", "adjoint_")}


def _scalar(value: Any) -> Any:
    """A one-element tensor tolerance as a float (others are checked as they are)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return value


def _engine(
    gradient: Any, adjoint_rtol: Any, adjoint_atol: Any, adjoint_method: Any, adjoint_options: Any, checkpoints: Any
) -> GradientEngine:
    """The engine object for ``gradient=``, from torchdiffeq's ``adjoint_*`` keywords where it is named."""
    backward = {"rtol": adjoint_rtol, "atol": adjoint_atol, "method": adjoint_method, "options": adjoint_options}
    given = [f"adjoint_{key}" for key, value in backward.items() if value is not None]
    if isinstance(gradient, GradientEngine):
        engine = gradient
        if given:
            raise ValueError(f"{given[0]}: the engine object carries its own settings (Adjoint(...)); got both")
    elif isinstance(gradient, str) and gradient in _ENGINES:
        if gradient == "adjoint":
            engine = Adjoint(**backward)
        elif gradient == "checkpoint":
            engine = Checkpoint(
                budget=None if checkpoints is None else check_count(checkpoints, "options['checkpoints']")
            )
        else:
            engine = Backprop()
    else:
        raise ValueError(
            f"gradient: expected one of {', '.join(GRADIENTS)} or an engine (Backprop(), Adjoint(), Checkpoint()), "
            f"got {gradient!r}"
        )
    if given and not isinstance(engine, Adjoint):
        raise ValueError(f"{given[0]}: only the adjoint engine has a backward solve; got gradient={gradient!r}")
    if checkpoints is not None:
        if not isinstance(engine, Checkpoint):
            raise ValueError(
                f"options['checkpoints']: only the checkpointing engine keeps checkpoints; got {gradient!r}"
            )
        if isinstance(gradient, Checkpoint) and gradient.budget != checkpoints:
            raise ValueError(
                f"options['checkpoints']: {checkpoints!r} differs from the engine's budget {gradient.budget!r}"
            )
    return engine


def _parameters(
    func: Any, adjoint_params: Any, engine: GradientEngine, flat_func: FlatFunction, t0: float, y0: torch.Tensor
) -> tuple[tuple[torch.Tensor, ...], bool]:
    """The tensors the engine differentiates besides ``y0``, and whether
    finding them took an evaluation of ``func``."""
    if adjoint_params is not None:
        if isinstance(adjoint_params, torch.Tensor) or not hasattr(adjoint_params, "__iter__"):
            raise TypeError(f"adjoint_params: expected a sequence of tensors, got {type(adjoint_params).__name__}")
        parameters = tuple(adjoint_params)
        for index, parameter in enumerate(parameters):
            if not isinstance(parameter, torch.Tensor):
                raise TypeError(f"adjoint_params[{index}]: expected a tensor, got {type(parameter).__name__}")
        return tuple(p for p in parameters if p.requires_grad), False
    if isinstance(func, torch.nn.Module):
        return tuple(p for p in func.parameters() if p.requires_grad), False
    return engine.find_parameters(flat_func, t0, y0), isinstance(engine, Checkpoint)


def _event_functions(events: Any, state: FlatState, func: FlatFunction) -> tuple[list[Any], list[Any]]:
    """The user's event functions on the flat state: for ode-core's loop
    (``t`` a float) and for the implicit-function gradient (``t`` a tensor)."""
    functions = [events] if callable(events) else events
    if isinstance(functions, (str, bytes)) or not isinstance(functions, (list, tuple)):
        raise TypeError(f"events: expected a callable or a sequence of callables, got {type(events).__name__}")
    for index, event in enumerate(functions):
        check_callable(event, f"events[{index}]")
    flat, differentiable = [], []
    for event in functions:

        def on_floats(t: float, y: torch.Tensor, event: Any = event) -> Any:
            # Where the event is decides where to look, it is not differentiated
            # here (EventTime differentiates it).
            with torch.no_grad():
                return event(func.time(t), state.unflatten(y.detach()))

        def on_tensors(t: torch.Tensor, y: torch.Tensor, event: Any = event) -> Any:
            return event(t.to(state.dtype), state.unflatten(y))

        for attribute in ("terminal", "direction"):
            if hasattr(event, attribute):
                setattr(on_floats, attribute, getattr(event, attribute))
        flat.append(on_floats)
        differentiable.append(on_tensors)
    return flat, differentiable


def _backward_settings(
    engine: Adjoint,
    method: Any,
    rtol: Any,
    atol: Any,
    options: dict[str, Any],
    func: FlatFunction,
    y0: torch.Tensor,
    state: FlatState,
    parameters: Sequence[torch.Tensor],
) -> Settings:
    """The adjoint's backward solve: its own settings, else the forward's
    (as in torchdiffeq, without a norm made for the forward state).

    ``Adjoint(norm=f)`` gets the flat scaled error of ``[z, a_z, a_theta]``;
    a callable ``adjoint_options['norm']`` gets what torchdiffeq gives it, the
    tuple ``(t, *z, *a_z, *a_theta)`` in the shapes of the state's tensors and
    the parameters, ``t`` a zero (the backward solve integrates no time
    adjoint)."""
    backward_options = (
        check_mapping(engine.options, "adjoint_options")
        if engine.options is not None
        else {k: v for k, v in options.items() if k != "norm"}
    )
    from_options = engine.norm is None
    norm_spec = engine.norm if engine.norm is not None else backward_options.pop("norm", None)
    n = y0.shape[0]
    if isinstance(norm_spec, str):
        if norm_spec != "seminorm":
            raise ValueError(f"adjoint_options['norm']: expected a callable or 'seminorm', got {norm_spec!r}")
        norm: Callable[[torch.Tensor], float] | None = seminorm(n)
    elif norm_spec is None:
        norm = None
    elif from_options:
        norm = _torchdiffeq_adjoint_norm(check_callable(norm_spec, "adjoint_options['norm']"), state, parameters)
    else:
        norm = check_callable(norm_spec, "adjoint_options['norm']")
    augmented_size = 2 * n  # the parameter adjoints only need dtype and device here
    example = y0.new_zeros(augmented_size)
    return _settings(
        engine.method if engine.method is not None else method,
        engine.rtol if engine.rtol is not None else rtol,
        engine.atol if engine.atol is not None else atol,
        backward_options,
        func=func,
        y0=example,
        norm=norm,
        where="adjoint_",
        xp=array_namespace(example),
    )


def _torchdiffeq_adjoint_norm(
    user_norm: Callable[..., Any], state: FlatState, parameters: Sequence[torch.Tensor]
) -> Callable[[torch.Tensor], float]:
    """``user_norm`` on the flat scaled error of ``[z, a_z, a_theta]``, given as torchdiffeq's tuple."""
    n = state.n
    sizes = [p.numel() for p in parameters]
    shapes = [p.shape for p in parameters]

    def as_tuple(value: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        return value if isinstance(value, tuple) else (value,)

    def norm(scaled: torch.Tensor) -> float:
        adjoints = torch.split(scaled[2 * n :], sizes) if sizes else ()
        pieces = (
            scaled.new_zeros(()),
            *as_tuple(state.unflatten(scaled[:n], cast=False)),
            *as_tuple(state.unflatten(scaled[n : 2 * n], cast=False)),
            *(piece.view(shape) for piece, shape in zip(adjoints, shapes)),
        )
        return float(user_norm(pieces))

    return norm


def solve(
    func: Callable[..., Any],
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: Any,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: Any = None,
    options: Mapping[str, Any] | None = None,
    gradient: str | GradientEngine = "backprop",
    adjoint_rtol: Any = None,
    adjoint_atol: Any = None,
    adjoint_method: Any = None,
    adjoint_options: Mapping[str, Any] | None = None,
    adjoint_params: Any = None,
    on_failure: str = "raise",
    events: Any = None,
    dense_output: bool = False,
    progress: bool = False,
    batch_dims: int = 0,
    sync_every: int = DEFAULT_SYNC_EVERY,
    compile: bool | Callable[..., Any] = False,
    device_control: bool = False,
    compact: bool = False,
) -> Solution:
    """Solve ``dy/dt = func(t, y)`` with a differentiable result.

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``: ``t`` a 0-d tensor of ``y0``'s dtype and device
        (the solver itself keeps time in float64), ``y`` shaped like ``y0``.
    y0 : Tensor or tuple of Tensor
        Floating point (half precision states are integrated in float32,
        with ``func`` evaluated in their dtype), any shape, one dtype and
        device, finite.
    t : 1-D Tensor or sequence, shape (m,)
        Output times, strictly monotonic. May require grad.
    rtol, atol : float
        Tolerances (torchdiffeq's defaults ``1e-7``, ``1e-9``).
    method : str or ButcherTableau
        Any name in ``ode_core.METHODS``; default ``"dopri5"``.
    options : dict
        torchdiffeq's keys ``step_size``, ``grid_constructor``,
        ``first_step``, ``max_num_steps``, ``step_t``, ``jump_t``, ``norm``,
        ``safety``, ``ifactor``, ``dfactor``; ours ``controller`` (an
        ``ode_core`` controller), ``max_step``, ``min_step`` and
        ``checkpoints`` (the checkpointing engine's budget). A fixed-step
        method without ``step_size`` steps on the grid of ``t`` (or of
        ``grid_constructor(func, y0, t)``), one step per interval, as
        torchdiffeq does.
    gradient : {"backprop", "adjoint", "checkpoint"} or GradientEngine
        How ``backward()`` differentiates the solve: :class:`Backprop`,
        :class:`Adjoint` or :class:`Checkpoint`, by name or as an object.
    adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options
        torchdiffeq's keywords for the adjoint's backward solve, the same as
        ``gradient=Adjoint(rtol=..., atol=..., method=..., options=...)``;
        ``adjoint_options={"norm": "seminorm"}`` leaves the parameter
        adjoints out of its error control (Kidger, Chen & Lyons 2021).
    adjoint_params : sequence of Tensor, optional
        The tensors ``func`` depends on. The adjoint engine needs them for a
        plain function (an ``nn.Module``'s parameters are the default);
        backprop and the checkpointing engine find them by themselves.
    on_failure : {"raise", "return"}
        Whether a failed solve raises :class:`SolverError` or returns the
        partial solution with its ``status``.
    events : callable or sequence of callables, optional
        Event functions ``g(t, y) -> scalar`` (``t`` a 0-d tensor, ``y`` in
        ``y0``'s structure), with ode-core's (scipy's) ``terminal`` and
        ``direction`` attributes. Their times and states
        (``t_events``, ``y_events``, and ``y_final`` after a terminal event)
        are differentiable with every engine.
    dense_output : bool
        Keep the continuous solution as ``Solution.dense``, differentiable.
    progress : bool
        Show a progress meter over time (tqdm, when installed).
    batch_dims : int
        The per-sample mode when positive (``docs/guide/per-sample.md``): the first
        ``batch_dims`` dimensions of ``y0`` (a tensor) index independent
        problems, each with its own time, steps, acceptance, status and
        statistics (``stats`` fields and ``t_final`` are then tensors of
        the batch's shape, ``sample_status`` a status per sample).
        ``func(t, y)`` gets ``t`` of shape ``y0.shape[:batch_dims]`` in
        y0's dtype, one time per sample, and must keep the samples apart.
        ``t`` may be (m,) or (*batch, m), one row of output times per sample.
        Explicit methods; every gradient engine; ``options['norm']`` maps
        scaled errors of y0's shape to one value per sample; ``events`` are
        functions on the batch, one value per sample (``t_events[i][b]``,
        ``y_events[i][b]``), differentiable with every engine.
    sync_every : int
        Per-sample mode: adaptive steps between the host's reads of whether
        every sample is done, the only waits on an accelerator (fixed steps:
        none until the end). Default 8.
    compile : bool or callable
        Per-sample mode: compile the step (stages, error, control, outputs)
        with ``torch.compile(fullgraph=True)`` (``True``) or with the
        callable given (e.g. ``functools.partial(torch.compile,
        mode="reduce-overhead")`` for CUDA graphs). The first solve pays the
        compilation; later solves with the same ``func`` and shapes reuse it.
    compact : bool
        Per-sample mode, one batch dimension, any engine: finished samples
        leave the batch at the reads between blocks, so ``func`` is evaluated
        on the running samples only (the adjoint's forward and backward
        solves alike); ``func`` and the event functions
        must then work on any subset of the rows, in order (no per-sample
        data of their own: carry per-sample parameters in the state, with
        zero derivative).
    device_control : bool
        A joint solve with its decisions on the device: the per-sample loop
        with the whole state as one sample, so the host waits once every
        ``sync_every`` steps instead of once a step (on CUDA). The same
        steps as without it; the per-sample mode's methods and engine, and
        ``compile``.

    Returns
    -------
    Solution
        ``ys`` of shape ``(m, *y0.shape)`` (a tuple for a tuple ``y0``),
        ``status``, ``message``, ``stats`` (the forward solve's) and
        ``backward_stats`` (filled in when ``backward()`` runs).

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> net = torch.nn.Linear(2, 2)
    >>> sol = ode_adjoint.solve(lambda t, y: torch.tanh(net(y)), torch.ones(4, 2), torch.linspace(0, 1, 3),
    ...                         gradient="checkpoint")
    >>> sol.ys.shape
    torch.Size([3, 4, 2])
    >>> sol.ys[-1].pow(2).sum().backward()
    >>> sol.backward_stats.n_steps == sol.stats.n_accepted
    True
    """
    if on_failure not in ("raise", "return"):
        raise ValueError(f"on_failure: expected 'raise' or 'return', got {on_failure!r}")
    if method == SCIPY_SOLVER:
        raise ValueError(
            "method: 'scipy_solver' hands the solve to scipy's solve_ivp, which has no statistics or gradients; "
            "use it through odeint, as torchdiffeq does"
        )
    check_callable(func, "func")
    options = check_mapping(options, "options")
    engine = _engine(gradient, adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options, options.get("checkpoints"))
    if not isinstance(device_control, bool):
        raise TypeError(f"device_control: expected True or False, got {device_control!r}")
    if device_control and batch_dims != 0:
        raise ValueError("device_control: the per-sample mode (batch_dims) takes its decisions on the device already")
    if batch_dims != 0 or device_control:
        if isinstance(y0, torch.Tensor) and not device_control:
            check_batch_dims(batch_dims, y0)

        def settings_of(y_sample: torch.Tensor, norm: Any, dtype: Any, backward: bool = False) -> Settings:
            if backward and isinstance(engine, Adjoint):
                # The adjoint's backward solve: its own settings, else the forward's (without its norm).
                own = engine.options is not None
                backward_options = check_mapping(engine.options, "adjoint_options") if own else dict(options or {})
                backward_options = {key: value for key, value in backward_options.items() if key != "norm"}
                return _settings(
                    engine.method if engine.method is not None else method,
                    engine.rtol if engine.rtol is not None else rtol,
                    engine.atol if engine.atol is not None else atol,
                    backward_options,
                    func=cast(FlatFunction, func),
                    y0=y_sample,
                    norm=norm,
                    where="adjoint_",
                    xp=array_namespace(y_sample),
                )
            return _settings(
                method,
                rtol,
                atol,
                dict(options or {}),
                func=cast(FlatFunction, func),
                y0=y_sample,
                norm=norm,
                where="",
                xp=array_namespace(y_sample),
                dtype=dtype,
            )

        return solve_per_sample(
            func,
            y0,
            t,
            batch_dims,
            engine=engine,
            settings_of=settings_of,
            options=options,
            on_failure=on_failure,
            sync_every=sync_every,
            compile_step=compile,
            compact=compact,
            joint=device_control,
            adjoint_params=adjoint_params,
            refused={
                "events": events,
                "dense_output": dense_output,
                "progress": progress,
                "options['grid_constructor']": options.get("grid_constructor"),
            },
        )
    if compile is not False:
        raise ValueError("compile: compiles the per-sample mode's step; give batch_dims too")
    if compact is not False:
        raise ValueError("compact: takes finished samples out of a per-sample solve's batch; give batch_dims too")
    state = FlatState(y0)
    times, _ = check_times(t)
    if isinstance(t, torch.Tensor) and t.requires_grad and t.device != state.device:
        raise ValueError(f"t: on {t.device}, expected y0's device {state.device}")
    if options.get("grid_constructor") is not None:
        options = _grid_options(options, method, func, y0, t, times)
    flat_func = state.flat_func(func)
    y0_flat = state.flatten(y0)
    user_norm = options.get("norm")
    if isinstance(user_norm, str):
        raise ValueError(
            f"options['norm']: {user_norm!r} is not a norm of the state; 'seminorm' applies to the adjoint's "
            "backward solve (adjoint_options)"
        )
    norm: Callable[[torch.Tensor], float] | None = None
    if user_norm is not None:
        check_callable(user_norm, "options['norm']")

        def norm(scaled: torch.Tensor) -> float:
            return float(user_norm(state.unflatten(scaled, cast=False)))

    elif state.is_tuple:
        # torchdiffeq's default for a tuple state: each tensor's error counts
        # on its own (a small tensor is not drowned in a large one's mean).
        norm = MixedNorm(state.sizes)

    working = state.working_dtype
    settings = _settings(
        method,
        rtol,
        atol,
        options,
        func=flat_func,
        y0=y0_flat,
        norm=norm,
        where="",
        xp=array_namespace(y0_flat),
        dtype=state.dtype if state.dtype != working else None,
        dense_output=dense_output,
        progress=progress,
    )
    check_span(times, settings)
    parameters, probed = _parameters(func, adjoint_params, engine, flat_func, times[0], y0_flat)
    flat_events, differentiable_events = (None, None) if events is None else _event_functions(events, state, flat_func)

    time_tensor = t if isinstance(t, torch.Tensor) and t.requires_grad else None
    y0_input = y0_flat
    if time_tensor is not None:
        # d y(t_i) / d t_0 = -Phi(t_i, t_0) f(t_0, y_0): shifting the start is
        # a perturbation -f0 dt0 of the initial state. Adding a term that is
        # zero in value but carries that derivative makes every engine
        # differentiate t_0 exactly (for the continuous solution).
        with torch.no_grad():
            f_start = flat_func(times[0], y0_flat.detach())
        shift = time_tensor[0] - time_tensor[0].detach()
        y0_input = y0_flat - shift.to(y0_flat.dtype) * f_start

    problem = Problem(
        func=flat_func,
        y0=y0_input,
        times=times,
        settings=settings,
        parameters=parameters,
        events=flat_events,
        event_gradients=differentiable_events,
    )
    problem.observer = _callbacks(func, "", settings, state.unflatten, y0_flat)
    if isinstance(engine, Adjoint):
        problem.backward_settings = _backward_settings(
            engine, method, rtol, atol, options, flat_func, y0_flat, state, parameters
        )
        problem.backward_observer = _callbacks(func, "_adjoint", problem.backward_settings, None, y0_flat)
    result = engine.differentiate(problem)
    solution = result.solution
    ys_flat = result.ys
    n_outputs = ys_flat.shape[0]
    if time_tensor is not None:
        ys_flat = torch.cat((y0_flat[None], ys_flat[1:]))
        if n_outputs > 1:
            # d y(t_i) / d t_i = f(t_i, y(t_i)), as a zero-valued term.
            with torch.no_grad():
                slopes = torch.stack([flat_func(times[i], ys_flat[i].detach()) for i in range(1, n_outputs)])
            shifts = (time_tensor[1:n_outputs] - time_tensor[1:n_outputs].detach()).to(ys_flat.dtype)
            ys_flat = torch.cat((ys_flat[:1], ys_flat[1:] + shifts[:, None] * slopes))
    if solution.status not in (Status.SUCCESS, Status.EVENT) and on_failure == "raise":
        raise SolverError(solution.status, solution.message)
    t_events, y_events, event_final = (None, None, None)
    if events is not None:
        t_events, y_events, event_final = _differentiable_events(result, problem, state)
    if solution.status is Status.EVENT and event_final is not None:
        y_final_flat = event_final
    elif n_outputs and solution.t_final == times[n_outputs - 1]:
        y_final_flat = ys_flat[n_outputs - 1]
    else:
        y_final_flat = solution.y_final
    stats = solution.stats
    if probed:
        stats = dataclasses.replace(stats, nfev=stats.nfev + 1)
    dense = None
    if result.dense is not None:
        flat_dense = result.dense

        def dense(time: Any) -> Any:
            return state.unflatten(flat_dense(time))

    return Solution(
        ts=solution.ts,
        ys=state.unflatten(ys_flat),
        status=solution.status,
        message=solution.message,
        stats=stats,
        dense=dense,  # type: ignore[arg-type]
        t_final=solution.t_final,
        y_final=state.unflatten(y_final_flat),
        t_events=t_events,
        y_events=y_events,
        step_proposal=solution.step_proposal,
        backward_counter=problem.backward,
    )


def _differentiable_events(
    result: Differentiated, problem: Problem, state: FlatState
) -> tuple[list[torch.Tensor] | None, list[Any] | None, torch.Tensor | None]:
    """Per event function its times and states, with the implicit-function
    gradient of each time; and the state of the last occurrence."""
    if problem.events is None:
        return None, None, None
    assert problem.event_gradients is not None
    count = len(problem.events)
    times: list[list[torch.Tensor]] = [[] for _ in range(count)]
    states: list[list[torch.Tensor]] = [[] for _ in range(count)]
    last = None
    for (time, index, _), event_state in zip(result.occurrences, result.event_states):
        event_time = torch.tensor(time, dtype=torch.float64, device=state.device)
        if event_state.requires_grad:
            event_time, event_state = EventTime.apply(
                problem.func, problem.event_gradients[index], event_time, event_state
            )
        times[index].append(event_time)
        states[index].append(event_state)
        last = event_state
    t_events = [
        torch.stack(found) if found else torch.zeros(0, dtype=torch.float64, device=state.device) for found in times
    ]
    y_events = [
        state.unflatten(torch.stack(found) if found else problem.y0.new_zeros((0, state.n)).detach())
        for found in states
    ]
    return t_events, y_events, last


_CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


class _Callbacks:
    """torchdiffeq's step callbacks on ``func``, as an ode-core :class:`~ode_core.StepObserver`.

    Each gets ``(t0, y0, dt)``: tensors of the state's dtype, ``y0`` in the
    user's structure for the forward solve and the flat augmented state
    ``(z, a_z, a_theta)`` for the adjoint's backward one.
    """

    def __init__(self, callbacks: list[Any], unflatten: Callable[[torch.Tensor], Any] | None, like: torch.Tensor):
        self._step, self._accept, self._reject = callbacks
        self._unflatten = unflatten
        self._like = like

    def _call(self, callback: Any, t: float, y: torch.Tensor, h: float) -> None:
        if callback is not None:
            time, size = (self._like.new_tensor(value) for value in (t, h))
            callback(time, y if self._unflatten is None else self._unflatten(y), size)

    def attempt(self, t: float, y: torch.Tensor, h: float) -> None:
        self._call(self._step, t, y, h)

    def accept(self, t: float, y: torch.Tensor, h: float) -> None:
        self._call(self._accept, t, y, h)

    def reject(self, t: float, y: torch.Tensor, h: float) -> None:
        self._call(self._reject, t, y, h)


def _callbacks(
    func: Any, suffix: str, settings: Settings, unflatten: Callable[[torch.Tensor], Any] | None, like: torch.Tensor
) -> _Callbacks | None:
    """``func``'s ``callback_step``, ``callback_accept_step``, ``callback_reject_step`` (with ``suffix``), if any.

    Fixed steps are never accepted or rejected: as torchdiffeq does, their
    callbacks for that warn and are not called.
    """
    found = [getattr(func, name + suffix, None) for name in _CALLBACKS]
    if not any(found):
        return None
    for name, callback in zip(_CALLBACKS, found):
        if callback is not None and not callable(callback):
            raise TypeError(f"func.{name}{suffix}: expected a callable, got {type(callback).__name__}")
    if not settings.adaptive and (found[1] is not None or found[2] is not None):
        unused = [name + suffix for name, callback in zip(_CALLBACKS[1:], found[1:]) if callback is not None]
        warnings.warn(
            f"method {settings.method.name!r} takes fixed steps, which are never accepted or rejected: "
            f"func.{' and func.'.join(unused)} will not be called",
            UserWarning,
            stacklevel=4,
        )
        found[1] = found[2] = None
    return _Callbacks(found, unflatten, like)


def _grid_options(
    options: dict[str, Any], method: Any, func: Any, y0: Any, t: Any, times: list[float]
) -> dict[str, Any]:
    """torchdiffeq's ``grid_constructor(func, y0, t)``: its grid's points become times to step onto.

    A fixed-step method without ``step_size`` then steps from grid point to
    grid point (and onto the output times). As in torchdiffeq, the grid runs
    from ``t[0]`` to ``t[-1]``, excludes ``step_size``, and an adaptive
    method ignores it with a warning.
    """
    constructor = check_callable(options["grid_constructor"], "options['grid_constructor']")
    rest = {key: value for key, value in options.items() if key != "grid_constructor"}
    if options.get("step_size") is not None:
        raise ValueError("options: step_size and grid_constructor are mutually exclusive; give one of them")
    tableau = check_method("dopri5" if method is None else method)
    if tableau.adaptive:
        warnings.warn(
            f"options['grid_constructor']: method {tableau.name!r} chooses its own steps; the grid is ignored",
            UserWarning,
            stacklevel=4,
        )
        return rest
    grid = check_times(constructor(func, y0, t), "options['grid_constructor'] (its grid)")[0]
    if grid[0] != times[0] or grid[-1] != times[-1]:
        raise ValueError(
            f"options['grid_constructor']: expected a grid from t[0]={times[0]!r} to t[-1]={times[-1]!r}, "
            f"got one from {grid[0]!r} to {grid[-1]!r}"
        )
    rest["step_t"] = [*check_optional_times(rest.get("step_t"), "options['step_t']"), *grid[1:-1]]
    return rest


def _until_event(func: Callable[..., Any], y0: Any, t: Any, event_fn: Any, kwargs: dict[str, Any]) -> Any:
    """torchdiffeq's ``event_fn``: solve from ``t[0]`` until ``event_fn(t, y)`` reaches zero.

    As torchdiffeq does, the elements of ``event_fn``'s value are made
    positive at the start (multiplied by their initial signs) and the solve
    stops where the smallest reaches zero; only ``t[0]`` (and ``t[1]``, for
    the direction) is used. The event time and state are differentiable
    with every engine (ode-adjoint's events).
    """
    check_callable(event_fn, "event_fn")
    if kwargs.get("events") is not None:
        raise ValueError("event_fn: give torchdiffeq's event_fn or our events, not both")
    times, direction = check_times(t)
    if not isinstance(t, torch.Tensor):
        t = torch.tensor(times, dtype=torch.float64)
    t = t.reshape(-1)
    state = FlatState(y0)
    with torch.no_grad():
        signs = torch.sign(torch.as_tensor(event_fn(t[0].to(state.dtype), y0)))

    def event(time: torch.Tensor, y: Any) -> torch.Tensor:
        return torch.min(event_fn(time, y) * signs)

    event.terminal = True  # type: ignore[attr-defined]
    span = torch.cat((t[:1], t.new_tensor([direction * math.inf]).detach()))
    solution = solve(func, y0, span, events=event, **kwargs)
    if solution.status is not Status.EVENT or not solution.t_events:  # on_failure="return" and no event
        raise SolverError(solution.status, f"event_fn: the solve ended without the event: {solution.message}")
    event_t = solution.t_events[0][0].to(t.dtype)
    if isinstance(y0, tuple):
        return event_t, tuple(torch.stack((first, last)) for first, last in zip(y0, solution.y_final))
    return event_t, torch.stack((y0, solution.y_final))


def odeint_event(
    func: Callable[..., Any],
    y0: Any,
    t0: Any,
    *,
    event_fn: Callable[..., Any],
    reverse_time: bool = False,
    odeint_interface: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> Any:
    """torchdiffeq's ``odeint_event``: solve from ``t0`` until ``event_fn(t, y)`` reaches zero.

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``, as in :func:`solve`.
    y0 : Tensor or tuple of Tensor
        Initial state.
    t0 : Tensor or float
        Initial time (0-d or one element); may require grad.
    event_fn : callable
        ``event_fn(t, y) -> Tensor``; the solve stops where an element of
        it, starting away from zero, first reaches zero.
    reverse_time : bool
        Integrate towards decreasing time.
    odeint_interface : callable, optional
        :func:`odeint` (the default) or :func:`odeint_adjoint`.
    **kwargs
        ``rtol``, ``atol``, ``method``, ``options`` and the rest, as
        :func:`odeint` takes them.

    Returns
    -------
    event_t : 0-d Tensor
        The event time, differentiable with respect to ``y0``, ``t0`` and
        the parameters of ``func``.
    solution : Tensor of shape (2, *y0.shape), or a tuple of them
        The initial state and the state at the event.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> t, ys = ode_adjoint.odeint_event(lambda t, y: -y, torch.ones(1), torch.tensor(0.0),
    ...                                  event_fn=lambda t, y: y[0] - 0.5)
    >>> round(float(t), 4), ys.shape  # ln 2
    (0.6931, torch.Size([2, 1]))
    """
    start = torch.as_tensor(t0).reshape(-1)[:1]
    t = torch.cat((start, start.detach() + (-1.0 if reverse_time else 1.0)))
    interface = odeint if odeint_interface is None else odeint_interface
    return interface(func, y0, t, event_fn=event_fn, **kwargs)


def odeint_dense(func: Callable[..., Any], y0: Any, t0: Any, t1: Any, **kwargs: Any) -> Callable[[Any], Any]:
    """torchdiffeq's ``odeint_dense``: the solution on ``[t0, t1]`` as a function of time.

    The dense output of one solve (:func:`solve` with ``dense_output=True``):
    the method's own interpolant between its steps, differentiable by the
    chosen engine. torchdiffeq takes only dopri5 here; any method works.

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``, as in :func:`solve`.
    y0 : Tensor or tuple of Tensor
        Initial state.
    t0, t1 : Tensor or float
        The span, either way in time.
    **kwargs
        ``rtol``, ``atol``, ``method``, ``options`` and the rest, as
        :func:`odeint` takes them.

    Returns
    -------
    callable
        ``y(t)`` for a time or a 1-D tensor of times in the span: the state
        there (stacked along time first for several).

    Raises
    ------
    SolverError
        If the solve fails.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> y = ode_adjoint.odeint_dense(lambda t, y: -y, torch.ones(1), torch.tensor(0.0), torch.tensor(1.0))
    >>> round(float(y(torch.tensor(0.5))[0]), 5)  # exp(-1/2)
    0.60653
    """
    span = torch.stack([torch.as_tensor(t0).reshape(()), torch.as_tensor(t1).reshape(())])
    solution = solve(func, y0, span, dense_output=True, **kwargs)
    if solution.status is not Status.SUCCESS:
        raise SolverError(solution.status, solution.message)
    dense = solution.dense
    assert dense is not None, "dense_output=True keeps the dense output"
    return dense


def odeint(func: Callable[..., Any], y0: Any, t: Any, **kwargs: Any) -> Any:
    """torchdiffeq's ``odeint``: the solution at ``t``, stacked along time first.

    Accepts every keyword of :func:`solve` (``gradient=`` picks the engine;
    default ``"backprop"``). Raises :class:`SolverError` if the solve fails.

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``, as in :func:`solve`.
    y0 : Tensor or tuple of Tensor
        Initial state, any shape.
    t : 1-D Tensor or sequence, shape (m,)
        Output times, strictly monotonic; ``t[0]`` is the initial time.
    **kwargs
        ``rtol``, ``atol``, ``method``, ``options``, ``gradient``,
        ``adjoint_*`` and ``on_failure``: see :func:`solve`.

    Returns
    -------
    Tensor of shape (m, *y0.shape), or a tuple of them
        The solution at ``t`` (a tuple when ``y0`` is one), differentiable
        by the chosen engine.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> y = ode_adjoint.odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]))
    >>> y.shape
    torch.Size([2, 2])
    """
    event_fn = kwargs.pop("event_fn", None)
    if event_fn is not None:
        return _until_event(func, y0, t, event_fn, kwargs)
    if kwargs.get("method") == SCIPY_SOLVER:
        extra = set(kwargs) - {"method", "rtol", "atol", "options", "gradient", "adjoint_params"}
        if extra:
            raise ValueError(f"method 'scipy_solver': {sorted(extra)} apply to ode-core's solves only")
        gradient = kwargs.get("gradient", "backprop")
        if isinstance(gradient, Adjoint) and any(
            value is not None
            for value in (gradient.rtol, gradient.atol, gradient.method, gradient.options, gradient.norm)
        ):
            raise ValueError(
                "gradient: method 'scipy_solver' solves the adjoint with the forward's scipy solver and tolerances; "
                "an Adjoint with settings of its own applies to ode-core's solves only"
            )
        return scipy_odeint(
            func,
            y0,
            t,
            rtol=kwargs.get("rtol", 1e-7),
            atol=kwargs.get("atol", 1e-9),
            options=kwargs.get("options"),
            adjoint=gradient == "adjoint" or isinstance(gradient, Adjoint),
            adjoint_params=kwargs.get("adjoint_params"),
        )
    return solve(func, y0, t, **kwargs).ys


def odeint_adjoint(func: Callable[..., Any], y0: Any, t: Any, **kwargs: Any) -> Any:
    """torchdiffeq's ``odeint_adjoint``: :func:`odeint` with the adjoint engine.

    Memory does not grow with the number of steps: the backward pass solves
    the adjoint equations backwards in time (Chen et al. 2018).

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``; its parameters (or ``adjoint_params``) receive
        gradients.
    y0 : Tensor or tuple of Tensor
        Initial state, any shape.
    t : 1-D Tensor or sequence, shape (m,)
        Output times, strictly monotonic.
    **kwargs
        As :func:`solve`; ``gradient``, if given, must be ``"adjoint"`` or
        an :class:`Adjoint`.

    Returns
    -------
    Tensor of shape (m, *y0.shape), or a tuple of them
        The solution at ``t``.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> net = torch.nn.Linear(2, 2)
    >>> ys = ode_adjoint.odeint_adjoint(lambda t, y: net(y), torch.ones(2), torch.tensor([0.0, 1.0]),
    ...                                 adjoint_params=tuple(net.parameters()))
    >>> ys[-1].sum().backward()
    >>> net.bias.grad.shape
    torch.Size([2])
    """
    gradient = kwargs.setdefault("gradient", "adjoint")
    if gradient != "adjoint" and not isinstance(gradient, Adjoint):
        raise ValueError(f"gradient: odeint_adjoint uses the adjoint engine, got {gradient!r}")
    return odeint(func, y0, t, **kwargs)
