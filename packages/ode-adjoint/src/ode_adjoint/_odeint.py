"""``odeint``, ``odeint_adjoint`` and ``solve``: torchdiffeq's API over
ode-core's solvers, with a choice of gradient engine."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ode_core
import torch
from ode_core import ButcherTableau, PIDController, Status

from ._engines import adjoint_solve, backprop_solve, checkpoint_solve
from ._state import FlatState

__all__ = ["GRADIENTS", "GradientStats", "Solution", "SolverError", "odeint", "odeint_adjoint", "solve"]

GRADIENTS = ("backprop", "adjoint", "checkpoint")
"""The gradient engines ``gradient=`` accepts."""

_TORCHDIFFEQ_OPTIONS = {
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
_OUR_OPTIONS = {"controller", "checkpoints", "max_step"}
_IGNORED_OPTIONS = {"perturb", "interp", "dtype"}


class SolverError(RuntimeError):
    """The solve stopped before the last output time (``status``, ``message``).

    Raised by :func:`solve`, :func:`odeint` and :func:`odeint_adjoint`
    unless ``on_failure="return"``.

    Parameters
    ----------
    status : ode_core.Status
        Why the solve stopped; kept as the ``status`` attribute.
    message : str
        The solver's message, naming the time reached.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> try:
    ...     ode_adjoint.odeint(lambda t, y: y**2, torch.ones(1), torch.tensor([0.0, 2.0]))
    ... except ode_adjoint.SolverError as error:
    ...     print(error.status.value)
    step_size_underflow
    """

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(f"{status.value}: {message}")
        self.status = status


@dataclass
class GradientStats:
    """Counters of a solve; the backward ones fill in when ``backward()`` runs.

    Attributes
    ----------
    nfev, n_steps, n_accepted, n_rejected : int
        Forward solve.
    backward_nfev, backward_steps : int
        Backward pass: the adjoint solve's evaluations and steps, or the
        checkpointing engine's recomputation (steps replayed); zero for
        backprop, whose backward is autograd's.
    """

    nfev: int = 0
    n_steps: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    backward_nfev: int = 0
    backward_steps: int = 0


@dataclass
class Solution:
    """Result of :func:`ode_adjoint.solve`.

    Attributes
    ----------
    ts : Tensor, shape (m,)
        Output times reached.
    ys : Tensor of shape (m, *y0.shape), or a tuple of them
        The solution at ``ts``, differentiable by the chosen engine.
    status : ode_core.Status
    message : str
    stats : GradientStats
    t_final : float
    """

    ts: torch.Tensor
    ys: Any
    status: Status
    message: str
    stats: GradientStats = field(default_factory=GradientStats)
    t_final: float = math.nan

    @property
    def success(self) -> bool:
        """Whether every output time was reached."""
        return self.status is Status.SUCCESS


@dataclass
class SolveConfig:
    """Everything an engine needs besides the state and the function."""

    tableau: ButcherTableau
    rtol: float
    atol: float
    step_size: float | None = None
    first_step: float | None = None
    max_step: float = math.inf
    max_steps: int = 100_000
    controller: PIDController | None = None
    norm: Callable[[torch.Tensor], float] | None = None
    step_t: Sequence[float] = ()
    jump_t: Sequence[float] = ()
    checkpoints: int | None = None


def _tolerance(value: Any, name: str, allow_zero: bool) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a scalar tolerance, got a tensor of shape {tuple(value.shape)}")
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name}: expected a finite number {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return number


def _times(t: Any) -> list[float]:
    if isinstance(t, torch.Tensor):
        if t.dim() != 1:
            raise ValueError(f"t: expected a 1-D tensor of times, got shape {tuple(t.shape)}")
        values = t.detach().cpu().tolist()
    else:
        try:
            values = [float(v) for v in t]
        except (TypeError, ValueError) as exc:
            raise TypeError(f"t: expected a 1-D tensor or sequence of times, got {type(t).__name__}") from exc
    if len(values) < 2:
        raise ValueError(f"t: expected at least two times (start and end), got {len(values)}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError("t: contains inf or nan")
    direction = 1.0 if values[1] > values[0] else -1.0
    for i in range(1, len(values)):
        if not direction * (values[i] - values[i - 1]) > 0:
            raise ValueError(f"t: expected strictly increasing or decreasing times; t[{i - 1}] and t[{i}] are not")
    return values


def _config(
    method: str | None,
    rtol: Any,
    atol: Any,
    options: dict[str, Any] | None,
    flat_state: FlatState | None,
    where: str,
) -> SolveConfig:
    """Checked settings of one solve. ``flat_state`` maps a callable norm's
    argument back to the user's structure; ``None`` (the adjoint's augmented
    state) passes the flat scaled error as it is."""
    name = "dopri5" if method is None else method
    if isinstance(name, str) and name not in ode_core.TABLEAUX:
        raise ValueError(f"{where}method: unknown method {name!r}; valid names are {', '.join(ode_core.METHODS)}")
    tableau = ode_core.TABLEAUX[name] if isinstance(name, str) else name
    config = SolveConfig(
        tableau=tableau,
        rtol=_tolerance(rtol, f"{where}rtol", allow_zero=False),
        atol=_tolerance(atol, f"{where}atol", allow_zero=True),
    )
    options = dict(options or {})
    unknown = set(options) - _TORCHDIFFEQ_OPTIONS - _OUR_OPTIONS - _IGNORED_OPTIONS
    if unknown:
        raise ValueError(
            f"{where}options: unknown keys {sorted(unknown)}; accepted are "
            f"{sorted(_TORCHDIFFEQ_OPTIONS | _OUR_OPTIONS)}"
        )
    if "step_size" in options and options["step_size"] is not None:
        config.step_size = _tolerance(options["step_size"], f"{where}options['step_size']", allow_zero=False)
    elif not tableau.adaptive:
        raise ValueError(f"{where}options: method {tableau.name!r} is fixed-step; pass options={{'step_size': h}}")
    if options.get("first_step") is not None:
        config.first_step = _tolerance(options["first_step"], f"{where}options['first_step']", allow_zero=False)
    if options.get("max_step") is not None:
        config.max_step = _tolerance(options["max_step"], f"{where}options['max_step']", allow_zero=False)
    if options.get("max_num_steps") is not None:
        value = options["max_num_steps"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}options['max_num_steps']: expected a positive int, got {value!r}")
        config.max_steps = value
    if options.get("step_t") is not None:
        step_t = options["step_t"]
        config.step_t = [float(v) for v in (step_t.tolist() if isinstance(step_t, torch.Tensor) else step_t)]
    if options.get("jump_t") is not None:
        jump_t = options["jump_t"]
        config.jump_t = [float(v) for v in (jump_t.tolist() if isinstance(jump_t, torch.Tensor) else jump_t)]
    controller = options.get("controller")
    if controller is not None and any(k in options for k in ("safety", "ifactor", "dfactor")):
        raise ValueError(f"{where}options: give either controller or safety/ifactor/dfactor, not both")
    if controller is None and any(k in options for k in ("safety", "ifactor", "dfactor")):
        controller = PIDController(
            safety=float(options.get("safety", 0.9)),
            max_factor=float(options.get("ifactor", 10.0)),
            min_factor=float(options.get("dfactor", 0.2)),
        )
    config.controller = controller
    norm = options.get("norm")
    if norm is not None and not isinstance(norm, str):
        if not callable(norm):
            raise TypeError(f"{where}options['norm']: expected a callable or 'seminorm', got {type(norm).__name__}")

        def structured_norm(scaled: torch.Tensor, user_norm: Callable[..., Any] = norm) -> float:
            return float(user_norm(scaled if flat_state is None else flat_state.unflatten(scaled)))

        config.norm = structured_norm
    elif isinstance(norm, str) and norm != "seminorm":
        raise ValueError(f"{where}options['norm']: expected a callable or 'seminorm', got {norm!r}")
    checkpoints = options.get("checkpoints")
    if checkpoints is not None:
        if isinstance(checkpoints, bool) or not isinstance(checkpoints, int) or checkpoints < 1:
            raise ValueError(f"{where}options['checkpoints']: expected a positive int, got {checkpoints!r}")
        config.checkpoints = checkpoints
    return config


def _parameters(func: Any, adjoint_params: Any, gradient: str) -> tuple[torch.Tensor, ...]:
    if adjoint_params is not None:
        parameters = tuple(adjoint_params)
        for index, parameter in enumerate(parameters):
            if not isinstance(parameter, torch.Tensor):
                raise TypeError(f"adjoint_params[{index}]: expected a tensor, got {type(parameter).__name__}")
    elif isinstance(func, torch.nn.Module):
        parameters = tuple(func.parameters())
    elif gradient == "backprop":
        parameters = ()
    else:
        raise ValueError(
            f"adjoint_params: func is a {type(func).__name__}, not an nn.Module, so its parameters are unknown; "
            "pass adjoint_params=(tensors func uses...) or adjoint_params=() if it has none"
        )
    return tuple(p for p in parameters if p.requires_grad)


def solve(
    func: Callable[..., Any],
    y0: torch.Tensor | tuple[torch.Tensor, ...],
    t: Any,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    method: str | None = None,
    options: dict[str, Any] | None = None,
    gradient: str = "backprop",
    adjoint_rtol: Any = None,
    adjoint_atol: Any = None,
    adjoint_method: str | None = None,
    adjoint_options: dict[str, Any] | None = None,
    adjoint_params: Any = None,
    on_failure: str = "raise",
) -> Solution:
    """Solve ``dy/dt = func(t, y)`` with a differentiable result.

    Parameters
    ----------
    func : callable or nn.Module
        ``func(t, y)``: ``t`` a 0-d tensor of ``y0``'s dtype and device
        (the solver itself keeps time in float64), ``y`` shaped like ``y0``.
    y0 : Tensor or tuple of Tensor
        Floating point, any shape, one dtype and device.
    t : 1-D Tensor or sequence, shape (m,)
        Output times, strictly monotonic. May require grad.
    rtol, atol : float
        Tolerances (torchdiffeq's defaults ``1e-7``, ``1e-9``).
    method : str
        Any name in ``ode_core.METHODS``; default ``"dopri5"``.
    options : dict
        torchdiffeq's keys ``step_size``, ``first_step``, ``max_num_steps``,
        ``step_t``, ``norm``, ``safety``, ``ifactor``, ``dfactor``; ours
        ``controller`` (an ``ode_core`` controller), ``max_step`` and
        ``checkpoints`` (the checkpointing engine's budget).
    gradient : {"backprop", "adjoint", "checkpoint"}
        How ``backward()`` differentiates the solve; see the package docs.
    adjoint_rtol, adjoint_atol, adjoint_method, adjoint_options
        The adjoint engine's backward solve (default: the forward's);
        ``adjoint_options={"norm": "seminorm"}`` leaves the parameter
        adjoints out of its error control (Kidger, Chen & Lyons 2021); a
        callable ``norm`` there receives the flat scaled error of the
        augmented state ``[z, a_z, a_theta]``. A forward ``options["norm"]``
        is not passed on to the backward solve.
    adjoint_params : sequence of Tensor, optional
        The tensors ``func`` depends on; default ``func.parameters()``.
    on_failure : {"raise", "return"}
        Whether a failed solve raises :class:`SolverError` or returns the
        partial solution with its ``status``.

    Returns
    -------
    Solution
        ``ys`` of shape ``(m, *y0.shape)`` (a tuple for a tuple ``y0``),
        ``status``, ``message`` and ``stats``, whose backward counters fill
        in when ``backward()`` runs.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> net = torch.nn.Linear(2, 2)
    >>> sol = ode_adjoint.solve(lambda t, y: torch.tanh(net(y)), torch.ones(4, 2), torch.linspace(0, 1, 3),
    ...                         gradient="checkpoint", adjoint_params=tuple(net.parameters()))
    >>> sol.ys.shape
    torch.Size([3, 4, 2])
    >>> sol.ys[-1].pow(2).sum().backward()
    >>> sol.stats.backward_steps == sol.stats.n_accepted
    True
    """
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient: expected one of {', '.join(GRADIENTS)}, got {gradient!r}")
    if on_failure not in ("raise", "return"):
        raise ValueError(f"on_failure: expected 'raise' or 'return', got {on_failure!r}")
    if not callable(func):
        raise TypeError(f"func: expected a callable or nn.Module, got {type(func).__name__}")
    flat_state = FlatState(y0)
    times = _times(t)
    config = _config(method, rtol, atol, options, flat_state, "")
    if config.norm is None and isinstance((options or {}).get("norm"), str):
        raise ValueError("options['norm']: 'seminorm' only applies to the adjoint solve (adjoint_options)")
    if isinstance(t, torch.Tensor) and t.device != flat_state.device and t.requires_grad:
        raise ValueError(f"t: on {t.device}, expected y0's device {flat_state.device}")
    # Backprop differentiates whatever func uses; the other engines need the list.
    needs_parameters = gradient != "backprop" or adjoint_params is not None
    parameters = _parameters(func, adjoint_params, gradient) if needs_parameters else ()
    flat_func = flat_state.flat_func(func)
    y0_flat = flat_state.flatten(y0)
    stats = GradientStats()

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

    if gradient == "backprop":
        ys_flat, result = backprop_solve(flat_func, y0_input, times, config, stats)
    else:
        if config.tableau.implicit and gradient == "checkpoint":
            raise ValueError(
                f"method: {config.tableau.name!r} is implicit; the checkpoint engine replays explicit steps only "
                "(use gradient='adjoint')"
            )
        if gradient == "adjoint":
            # As in torchdiffeq, the backward solve inherits the forward
            # options but not a norm made for the forward state.
            if adjoint_options is not None:
                backward_options = {k: v for k, v in adjoint_options.items() if k != "norm" or not isinstance(v, str)}
            else:
                backward_options = {k: v for k, v in (options or {}).items() if k != "norm"}
            adjoint_config = _config(
                adjoint_method if adjoint_method is not None else method,
                adjoint_rtol if adjoint_rtol is not None else rtol,
                adjoint_atol if adjoint_atol is not None else atol,
                backward_options,
                None,
                "adjoint_",
            )
            seminorm = (adjoint_options or {}).get("norm") == "seminorm"
            ys_flat, result = adjoint_solve(
                flat_func, y0_input, times, config, adjoint_config, seminorm, parameters, stats
            )
        else:
            ys_flat, result = checkpoint_solve(flat_func, y0_input, times, config, parameters, stats)

    n_outputs = result.n_outputs
    if time_tensor is not None:
        ys_flat = torch.cat((y0_flat[None], ys_flat[1:]))
        if n_outputs > 1:
            # d y(t_i) / d t_i = f(t_i, y(t_i)), as a zero-valued term.
            with torch.no_grad():
                slopes = torch.stack([flat_func(times[i], ys_flat[i].detach()) for i in range(1, n_outputs)])
            shifts = (time_tensor[1:n_outputs] - time_tensor[1:n_outputs].detach()).to(ys_flat.dtype)
            ys_flat = torch.cat((ys_flat[:1], ys_flat[1:] + shifts[:, None] * slopes))
    if result.status is not Status.SUCCESS and on_failure == "raise":
        raise SolverError(result.status, result.message)
    ts = torch.tensor(times[:n_outputs], dtype=torch.float64, device=flat_state.device)
    return Solution(
        ts=ts,
        ys=flat_state.unflatten(ys_flat),
        status=result.status,
        message=result.message,
        stats=stats,
        t_final=result.t_final,
    )


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
    return solve(func, y0, t, **kwargs).ys


def odeint_adjoint(func: Callable[..., Any], y0: Any, t: Any, **kwargs: Any) -> Any:
    """torchdiffeq's ``odeint_adjoint``: :func:`odeint` with ``gradient="adjoint"``.

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
        As :func:`solve`; ``gradient``, if given, must be ``"adjoint"``.

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
    if kwargs.setdefault("gradient", "adjoint") != "adjoint":
        raise ValueError(f"gradient: odeint_adjoint uses the adjoint engine, got {kwargs['gradient']!r}")
    return solve(func, y0, t, **kwargs).ys
