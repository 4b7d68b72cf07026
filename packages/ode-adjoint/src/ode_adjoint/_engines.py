"""The gradient engines: how ``backward()`` differentiates a solve.

Every engine runs the forward solve through ode-core's one loop
(:func:`ode_core.integrate`) with the torch stepper, and differs only in
what it keeps and how it goes back:

* :class:`Backprop`: autograd records every operation of the forward loop;
  the exact gradient of the discrete solution; memory grows with the steps.
* :class:`Adjoint`: the continuous adjoint of Chen et al. (2018): the forward
  solve keeps no graph; backward integrates ``[z, a_z, a_theta]`` from the
  last output time to the first in one solve, whose state jumps at each
  output (the loop's impulses), with vector-Jacobian products from
  autograd. Memory is independent of the number of steps.
* :class:`Checkpoint`: the forward solve records each accepted step through
  the loop's ``on_step`` hook; backward replays one step at a time with the
  same stepper under autograd and chains the vector-Jacobian products in
  reverse: backprop's gradient, to round-off, with a state per step instead
  of a graph per step. With a budget of ``K`` states the rest are
  recomputed on a binomial (revolve) schedule.

Events: an event time ``T`` solves ``g(T, y(T)) = 0``, so by the implicit
function theorem ``dT = -g_y dy(T) / (g_t + g_y f)``, with ``dy(T)`` the
derivative of the solution at the fixed time ``T``. Each engine
differentiates the states at the event times as it does outputs (they are
extra output times), and :class:`_EventTime` adds the correction, as
torchdiffeq's ``odeint_event`` does.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import ode_core
import torch
from array_api_compat import array_namespace
from ode_core import AcceptedStep, Settings, Stats, Status

from ._revolve import revolve_schedule
from ._state import FlatFunction

__all__ = ["Adjoint", "Backprop", "BackwardCounter", "Checkpoint", "GradientEngine", "Problem"]


@dataclass
class BackwardCounter:
    """Work of the backward passes of one solve, summed over ``backward()`` calls.

    Attributes
    ----------
    nfev, n_steps, n_accepted, n_rejected, njev, nlu, n_forced, nfev_jacobian : int
        As :class:`ode_core.Stats`.
    runs : int
        Backward passes taken so far.
    """

    nfev: int = 0
    n_steps: int = 0
    n_accepted: int = 0
    n_rejected: int = 0
    njev: int = 0
    nlu: int = 0
    n_forced: int = 0
    nfev_jacobian: int = 0
    runs: int = 0

    def add(self, stats: Stats) -> None:
        """Count a backward solve's statistics.

        Parameters
        ----------
        stats : ode_core.Stats
        """
        self.nfev += stats.nfev
        self.n_steps += stats.n_steps
        self.n_accepted += stats.n_accepted
        self.n_rejected += stats.n_rejected
        self.njev += stats.njev
        self.nlu += stats.nlu
        self.n_forced += stats.n_forced
        self.nfev_jacobian += stats.nfev_jacobian

    def stats(self) -> Stats | None:
        """The counts as :class:`ode_core.Stats`, ``None`` before any backward pass.

        Returns
        -------
        ode_core.Stats or None
        """
        if self.runs == 0:
            return None
        return Stats(
            self.nfev,
            self.n_steps,
            self.n_accepted,
            self.n_rejected,
            self.njev,
            self.nlu,
            self.n_forced,
            self.nfev_jacobian,
        )


@dataclass
class Problem:
    """One differentiable solve, as an engine receives it.

    Attributes
    ----------
    func : FlatFunction
        ``func`` on the flat state (working dtype).
    y0 : Tensor, shape (n,)
        Flat initial state; may require grad.
    times : list of float
        Output times.
    settings : ode_core.Settings
        The forward solve's, checked.
    parameters : tuple of Tensor
        The tensors besides ``y0`` that receive gradients (the adjoint's and
        the checkpointing engine's inputs; backprop finds them itself).
    events : list of callables, optional
        Event functions on the flat state, for ode-core's loop.
    event_gradients : list of callables, optional
        The same on tensors (``t`` a 0-d tensor), differentiable.
    backward_settings : ode_core.Settings, optional
        The adjoint's backward solve's.
    observer, backward_observer : ode_core.StepObserver, optional
        Told of the forward solve's steps, and of the adjoint's backward
        solve's (torchdiffeq's ``callback_*`` and ``callback_*_adjoint``).
    backward : BackwardCounter
    """

    func: FlatFunction
    y0: torch.Tensor
    times: list[float]
    settings: Settings
    parameters: tuple[torch.Tensor, ...] = ()
    events: list[Callable[..., Any]] | None = None
    event_gradients: list[Callable[..., Any]] | None = None
    backward_settings: Settings | None = None
    observer: ode_core.StepObserver | None = None
    backward_observer: ode_core.StepObserver | None = None
    backward: BackwardCounter = field(default_factory=BackwardCounter)

    @property
    def direction(self) -> float:
        """+1.0 forward in time, -1.0 backward."""
        return 1.0 if self.times[-1] > self.times[0] else -1.0

    def integrate(self, y0: torch.Tensor, on_step: Callable[[AcceptedStep], None] | None = None) -> ode_core.Solution:
        """The forward solve from ``y0`` through ode-core's loop.

        Parameters
        ----------
        y0 : Tensor, shape (n,)
        on_step : callable, optional

        Returns
        -------
        ode_core.Solution
            Flat: ``ys`` of shape (m, n).
        """
        return ode_core.integrate(
            self.func, y0, self.times, self.settings, events=self.events, on_step=on_step, observer=self.observer
        )


@dataclass
class Differentiated:
    """What an engine returns: the forward solution and its differentiable states."""

    solution: ode_core.Solution
    ys: torch.Tensor
    """(m, n): states at the output times reached."""
    event_states: list[torch.Tensor]
    """(n,) each: states at the event occurrences, in the order of ``occurrences``."""
    occurrences: list[tuple[float, int, int]]
    """(time, event function, occurrence of that function), in the order the solve met them."""
    dense: Callable[[Any], torch.Tensor] | None = None
    """Differentiable ``t -> y(t)`` (flat), with ``dense_output``."""


def _occurrences(solution: ode_core.Solution, direction: float) -> list[tuple[float, int, int]]:
    if solution.t_events is None:
        return []
    found = [(float(time), i, j) for i, times in enumerate(solution.t_events) for j, time in enumerate(times.tolist())]
    return sorted(found, key=lambda occurrence: (direction * occurrence[0], occurrence[1]))


def _event_states(solution: ode_core.Solution, occurrences: list[tuple[float, int, int]]) -> list[torch.Tensor]:
    assert solution.y_events is not None or not occurrences
    return [solution.y_events[i][j] for _, i, j in occurrences]  # type: ignore[index]


class GradientEngine:
    """How ``backward()`` differentiates a solve; pass one as ``gradient=``.

    Subclasses implement :meth:`differentiate`.
    """

    name: ClassVar[str] = ""

    def find_parameters(self, func: FlatFunction, t0: float, y0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The tensors ``func`` uses, when the user did not list them and
        ``func`` is no ``nn.Module``; the adjoint cannot know them.

        Parameters
        ----------
        func : FlatFunction
        t0 : float
        y0 : Tensor, shape (n,)

        Returns
        -------
        tuple of Tensor
        """
        raise ValueError(
            f"adjoint_params: func is a {type(func.func).__name__}, not an nn.Module, so the {self.name} engine "
            "does not know its parameters; pass adjoint_params=(tensors func uses...) or adjoint_params=() if "
            "it has none"
        )

    def differentiate(self, problem: Problem) -> Differentiated:
        """Solve ``problem`` forward, ready for ``backward()``.

        Parameters
        ----------
        problem : Problem

        Returns
        -------
        Differentiated
        """
        raise NotImplementedError


@dataclass(frozen=True)
class Backprop(GradientEngine):
    """Backpropagation through the solver's operations (``gradient="backprop"``).

    The exact gradient of the discrete solution, also through implicit
    methods' Newton iterations; memory grows with the number of steps.
    Differentiates every tensor ``func`` uses, with no ``adjoint_params``.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> a = torch.tensor(-1.0, requires_grad=True)
    >>> ys = ode_adjoint.odeint(lambda t, y: a * y, torch.ones(1), [0.0, 1.0], gradient=ode_adjoint.Backprop())
    >>> ys[-1].sum().backward()
    >>> round(float(a.grad), 4)  # d/da e^a at a = -1
    0.3679
    """

    name: ClassVar[str] = "backprop"

    def find_parameters(self, func: FlatFunction, t0: float, y0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """None needed: autograd follows whatever ``func`` uses.

        Parameters
        ----------
        func : FlatFunction
        t0 : float
        y0 : Tensor, shape (n,)

        Returns
        -------
        tuple of Tensor
            Empty.
        """
        return ()

    def differentiate(self, problem: Problem) -> Differentiated:
        """Solve with autograd recording; see :meth:`GradientEngine.differentiate`.

        Parameters
        ----------
        problem : Problem

        Returns
        -------
        Differentiated
        """
        solution = problem.integrate(problem.y0)
        occurrences = _occurrences(solution, problem.direction) if problem.events is not None else []
        dense = None
        if solution.dense is not None:
            flat_dense = solution.dense

            def dense(t: Any) -> torch.Tensor:
                return flat_dense(t)  # type: ignore[no-any-return]

        return Differentiated(solution, solution.ys, _event_states(solution, occurrences), occurrences, dense)


# --- the adjoint -------------------------------------------------------------------


@dataclass(frozen=True)
class Adjoint(GradientEngine):
    """The continuous adjoint of Chen et al. (2018) (``gradient="adjoint"``).

    Memory independent of the number of steps: backward integrates
    ``[z, a_z, a_theta]`` from the last output (or event) time to the first,
    in one solve whose state jumps at each output: ``z`` back onto the
    forward solution, ``a_z`` by the output's cotangent. For a plain
    function (not an ``nn.Module``) pass the tensors it uses as
    ``adjoint_params``.

    Parameters
    ----------
    rtol, atol : float, optional
        Tolerances of the backward solve; default the forward's.
    method : str or ButcherTableau, optional
        Method of the backward solve; default the forward's.
    options : dict, optional
        Options of the backward solve (as ``options``); default the
        forward's, without its ``norm``.
    norm : "seminorm" or callable, optional
        Error norm of the backward solve: ``"seminorm"`` leaves the
        parameter adjoints out of error control (Kidger, Chen & Lyons 2021);
        a callable gets the flat scaled error of ``[z, a_z, a_theta]``.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> net = torch.nn.Linear(2, 2)
    >>> engine = ode_adjoint.Adjoint(rtol=1e-8, norm="seminorm")
    >>> ys = ode_adjoint.odeint(lambda t, y: net(y), torch.ones(2), [0.0, 1.0], gradient=engine,
    ...                         adjoint_params=tuple(net.parameters()))
    >>> ys[-1].sum().backward()
    >>> net.weight.grad.shape
    torch.Size([2, 2])
    """

    name: ClassVar[str] = "adjoint"
    rtol: Any = None
    atol: Any = None
    method: Any = None
    options: Any = None
    norm: Any = None

    def differentiate(self, problem: Problem) -> Differentiated:
        """Solve without a graph; backward solves the adjoint equations.

        Parameters
        ----------
        problem : Problem
            Its ``backward_settings`` are the backward solve's.

        Returns
        -------
        Differentiated
        """
        settings = problem.backward_settings
        assert settings is not None, "solve() sets the backward solve's settings"
        return _differentiate_in_function(problem, _AdjointRun(problem, settings))


class _Run:
    """An engine's forward solve and its backward pass from cotangents at given times."""

    problem: Problem
    solution: ode_core.Solution
    occurrences: list[tuple[float, int, int]]

    def forward(self, y0: torch.Tensor) -> ode_core.Solution:
        raise NotImplementedError

    def backward(
        self, points: list[tuple[float, torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Gradients of ``y0`` and the parameters from cotangents ``(time, state, grad)``."""
        raise NotImplementedError

    def dense(self, times: list[float]) -> torch.Tensor:
        """The forward solution at ``times`` (flat, no graph)."""
        dense = self.solution.dense
        if dense is None:
            raise ValueError("t: the solve kept no dense output; pass dense_output=True")
        return dense(times)  # type: ignore[no-any-return]


def _grads_or_zeros(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(ref) if grad is None else grad for grad, ref in zip(grads, like)]


class _AdjointRun(_Run):
    def __init__(self, problem: Problem, settings: Settings) -> None:
        self.problem = problem
        self.settings = settings

    def forward(self, y0: torch.Tensor) -> ode_core.Solution:
        with torch.no_grad():
            self.solution = self.problem.integrate(y0)
        return self.solution

    def backward(
        self, points: list[tuple[float, torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        problem = self.problem
        func = problem.func
        parameters = problem.parameters
        n = problem.y0.shape[0]
        dtype, device = problem.y0.dtype, problem.y0.device
        sizes = [p.numel() for p in parameters]
        augmented = adjoint_dynamics(func, parameters, n, dtype)

        # The backward solve's one-sided steps must land where func sees
        # another time in the state's dtype, as the forward solve's do.
        augmented.one_sided_time = func.one_sided_time  # type: ignore[attr-defined]

        settings = self.settings
        if not settings.method.explicit:
            # Newton on [z, a_z, a_theta] needs the couplings below the
            # diagonal blocks (J, -J^T, 0) too: without them a_theta lags z and
            # a_z by an iteration, which reads as slow convergence (radau5's
            # fixed steps then fail). ode-core's finite differences give all
            # of it, 2n + p evaluations per Jacobian, reused across steps.
            # A matrix-free Newton takes forward differences on the augmented system likewise (its
            # autograd products and their derivative are the forward function's).
            settings = dataclasses.replace(settings, jac=None, jvp=None, differentiable_solve=None)
        # One backward solve from the last point to t0. At each earlier point
        # the state jumps (an impulse of ode-core's loop): z is set back to the
        # forward solution there, and the point's cotangent joins a_z. The
        # solve starts from the step size the forward solve ended with:
        # Hairer's initial-step guess from zero parameter adjoints is tiny.
        direction = problem.direction
        merged: dict[float, list[Any]] = {}
        for time, state, grad in points:
            if time in merged:
                merged[time][1] = merged[time][1] + grad
            else:
                merged[time] = [state, grad]
        ordered = sorted(merged, key=lambda time: direction * time)
        t0 = problem.times[0]
        adjoint = torch.zeros(n, dtype=dtype, device=device)
        parameter_adjoint = torch.zeros(sum(sizes), dtype=dtype, device=device)
        if ordered:
            t_last = ordered[-1]
            state, grad = merged[t_last]
            adjoint = adjoint + grad
            if t_last != t0:

                def impulse_at(state: torch.Tensor, grad: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
                    def jump(augmented_state: torch.Tensor) -> torch.Tensor:
                        return torch.cat((state.detach(), augmented_state[n : 2 * n] + grad, augmented_state[2 * n :]))

                    return jump

                impulses = {time: impulse_at(*merged[time]) for time in ordered[:-1] if time != t0}
                start = torch.cat((state.detach(), adjoint, parameter_adjoint))
                first_step = self.solution.step_proposal
                continued = first_step if settings.adaptive and settings.first_step is None else None
                if continued is not None and not math.isfinite(continued):
                    continued = None
                with torch.no_grad():
                    result = ode_core.integrate(
                        augmented,
                        start,
                        [t_last, t0],
                        settings,
                        first_step=continued,
                        impulses=impulses,
                        observer=problem.backward_observer,
                    )
                problem.backward.add(result.stats)
                if result.status is not Status.SUCCESS:
                    raise RuntimeError(f"adjoint backward solve failed: {result.status.value}: {result.message}")
                adjoint = result.y_final[n : 2 * n]
                parameter_adjoint = result.y_final[2 * n :]
            if t0 in merged and t_last != t0:
                adjoint = adjoint + merged[t0][1]
        problem.backward.runs += 1
        parameter_grads = list(torch.split(parameter_adjoint, sizes)) if sizes else []
        return adjoint, [g.reshape(p.shape).to(p.dtype) for g, p in zip(parameter_grads, parameters)]


def adjoint_dynamics(
    func: Callable[[float, torch.Tensor], torch.Tensor], parameters: Sequence[torch.Tensor], n: int, dtype: torch.dtype
) -> Callable[[float, torch.Tensor], torch.Tensor]:
    """The right-hand side of the adjoint's backward solve on ``[z, a_z, a_theta]`` (flat).

    ``z' = f(t, z)``, ``a_z' = -a_z df/dz``, ``a_theta' = -a_z df/dtheta``,
    the last two as vector-Jacobian products.

    Parameters
    ----------
    func : callable
        ``func(t, z)`` on the flat state (float time).
    parameters : sequence of Tensor
        The tensors ``a_theta`` is the adjoint of.
    n : int
        Size of the flat state.
    dtype : torch.dtype
        The augmented state's (half precision parameters' gradients join it).

    Returns
    -------
    callable
        ``(t, state) -> d state / dt``, shape ``(2 n + p,)``.
    """
    cast = any(p.dtype != dtype for p in parameters)

    def augmented(t: float, state: torch.Tensor) -> torch.Tensor:
        z = state[:n]
        adjoint = state[n : 2 * n]
        with torch.enable_grad():
            z = z.detach().requires_grad_(True)
            dz = func(t, z)
            # An f that depends on neither z nor the parameters has no graph.
            grads: Sequence[torch.Tensor | None] = (None,) * (1 + len(parameters))
            if dz.requires_grad:
                grads = torch.autograd.grad(dz, (z, *parameters), -adjoint, allow_unused=True)
        pieces = [dz.detach()]
        pieces += [g.reshape(-1) for g in _grads_or_zeros(grads, (z, *parameters))]
        if cast:
            pieces = [piece.to(dtype) for piece in pieces]
        return torch.cat(pieces)

    return augmented


class _Seminorm:
    """Kidger, Chen & Lyons (2021): the parameter adjoints never feed back into
    the dynamics, so leave them out of the backward solve's error control. The
    mean stays over every component, so the seminorm is never above the full
    RMS norm and never costs more steps."""

    def __init__(self, controlled: int) -> None:
        self.controlled = controlled

    def __call__(self, scaled: torch.Tensor) -> float:
        part = scaled[: self.controlled]
        return math.sqrt(float(part @ part) / scaled.shape[0])


def seminorm(n: int) -> _Seminorm:
    """The seminorm for a state of size ``n`` (controls ``z`` and ``a_z``)."""
    return _Seminorm(2 * n)


def autograd_jacobian(
    func: Callable[[float, torch.Tensor], torch.Tensor],
) -> Callable[[float, torch.Tensor], torch.Tensor]:
    """``df/dy`` (n, n) by autograd, for the implicit methods' Newton iteration.

    It is an aid to convergence, never differentiated itself, so it is taken
    at a detached state and returned without a graph.
    """

    def jacobian(t: float, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            matrix: torch.Tensor = torch.autograd.functional.jacobian(  # type: ignore[no-untyped-call]
                lambda z: func(t, z), y.detach(), vectorize=True
            )
        return matrix.detach()

    return jacobian


def autograd_jvp(
    func: Callable[[float, torch.Tensor], torch.Tensor],
) -> Callable[[float, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``(t, y, v) -> (df/dy) v`` by autograd, for a matrix-free Newton (``options['linear_solver'] =
    'krylov'``): one product costs about two backward passes of ``func`` (the double-vjp form of
    ``torch.autograd.functional.jvp``), never an ``n x n`` matrix. Like :func:`autograd_jacobian` an aid
    to convergence, taken at a detached state and returned without a graph."""

    def jvp(t: float, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            _, product = torch.autograd.functional.jvp(  # type: ignore[no-untyped-call]
                lambda z: func(t, z), y.detach(), v.detach()
            )
        result: torch.Tensor = product.detach()
        return result

    return jvp


def autograd_linear_solve(func: Callable[[float, torch.Tensor], torch.Tensor]) -> Callable[..., torch.Tensor]:
    """How a matrix-free Newton's solve ``x = (a I + b J)^{-1} r`` is differentiated under autograd.

    As a direct solve's factors are (``autograd_jacobian`` returns a detached
    matrix), ``J`` is held fixed at its point, so the derivative is the linear
    map itself: backward solves ``(conj(a) I + b J^T) g_r = g_x`` by GMRES on
    autograd's vector-Jacobian products. Backprop through GMRES's own
    arithmetic would not give it (its coefficients are taken on the host).
    """

    def vjp(t: float, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            z = y.detach().requires_grad_(True)
            (product,) = torch.autograd.grad(func(t, z), z, v.detach())
        return product.detach()

    class _Solve(torch.autograd.Function):
        @staticmethod
        def forward(
            ctx: Any,
            rhs: torch.Tensor,
            solve: Callable[[torch.Tensor], torch.Tensor],
            a: Any,
            b: float,
            t: float,
            y: Any,
        ) -> torch.Tensor:
            ctx.system = (a, b, t, y)
            with torch.no_grad():
                return solve(rhs.detach())

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
            a, b, t, y = ctx.system
            shift = a.conjugate() if isinstance(a, complex) else a

            def transposed(v: torch.Tensor) -> torch.Tensor:
                if v.is_complex():  # J is real: J^T (p + i q) = J^T p + i J^T q
                    product = vjp(t, y, v.real) + 1j * vjp(t, y, v.imag)
                else:
                    product = vjp(t, y, v)
                value: torch.Tensor = shift * v + b * product
                return value

            with torch.no_grad():
                solution, _, _ = ode_core.gmres(array_namespace(grad), transposed, grad)
            result: torch.Tensor = solution
            return result, None, None, None, None, None

    def differentiable(
        solve: Callable[[torch.Tensor], torch.Tensor], a: Any, b: float, t: float, y: Any, rhs: torch.Tensor
    ) -> torch.Tensor:
        result = _Solve.apply(rhs, solve, a, b, t, y)
        return result  # type: ignore[no-any-return]

    return differentiable


# --- checkpointing --------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint(GradientEngine):
    """Replay of recorded steps (``gradient="checkpoint"``): backprop's gradient with less memory.

    The forward solve keeps each accepted step's start state (or, with a
    ``budget``, only the first) and backward replays the steps one at a
    time with autograd, in reverse, with the same stepper as the forward
    solve. Like backprop it finds the tensors ``func`` uses by itself: those
    its autograd graph at ``(t0, y0)`` leads to (pass ``adjoint_params``
    for tensors ``func`` only uses later).

    Parameters
    ----------
    budget : int, optional
        States held at once; the rest are recomputed on a binomial (revolve)
        schedule. Default: every step's (no recomputation).

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> a = torch.tensor(-1.0, requires_grad=True)
    >>> ys = ode_adjoint.odeint(lambda t, y: a * y, torch.ones(1), [0.0, 1.0],
    ...                         gradient=ode_adjoint.Checkpoint(budget=2))
    >>> ys[-1].sum().backward()
    >>> round(float(a.grad), 4)
    0.3679
    """

    name: ClassVar[str] = "checkpoint"
    budget: int | None = None

    def __post_init__(self) -> None:
        if self.budget is not None:
            ode_core.validation.check_count(self.budget, "budget")

    def find_parameters(self, func: FlatFunction, t0: float, y0: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The leaf tensors ``func``'s graph at ``(t0, y0)`` leads to (one evaluation).

        Parameters
        ----------
        func : FlatFunction
        t0 : float
        y0 : Tensor, shape (n,)

        Returns
        -------
        tuple of Tensor
        """
        return tensors_used_by(func, t0, y0)

    def differentiate(self, problem: Problem) -> Differentiated:
        """Solve without a graph, recording the steps; backward replays them.

        Parameters
        ----------
        problem : Problem

        Returns
        -------
        Differentiated

        Raises
        ------
        ValueError
            For a multistep method, whose steps cannot be replayed alone.
        """
        method = problem.settings.method
        if isinstance(method, (ode_core.AdamsMethod, ode_core.BDFMethod, ode_core.AutoMethod)):
            raise ValueError(
                f"gradient: 'checkpoint' replays each step alone, from its start state, and method {method.name!r} "
                "is a multistep method whose steps use the slopes of the steps before; use gradient='backprop' "
                "(exact for its steps) or 'adjoint'"
            )
        return _differentiate_in_function(problem, _CheckpointRun(problem, self.budget))


def tensors_used_by(
    func: Callable[[float, torch.Tensor], torch.Tensor], t: float, y: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The leaf tensors requiring grad that ``func(t, y)`` depends on, found from its graph.

    One evaluation of ``func`` with autograd on.
    """
    with torch.enable_grad():
        value = func(t, y.detach())
    found: list[torch.Tensor] = []
    seen: set[int] = set()
    stack = [value.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)
        if isinstance(variable, torch.Tensor):
            found.append(variable)
        stack.extend(next_node for next_node, _ in node.next_functions)
    return tuple(found)


class _CheckpointRun(_Run):
    def __init__(self, problem: Problem, budget: int | None) -> None:
        self.problem = problem
        self.budget = budget
        self.records: list[AcceptedStep] = []

    def forward(self, y0: torch.Tensor) -> ode_core.Solution:
        records = self.records
        keep_states = self.budget is None

        def record(step: AcceptedStep) -> None:
            # With a budget only y0 is kept: backward rebuilds states on the
            # revolve schedule holding at most `budget` of them.
            records.append(step if keep_states or not records else step._replace(y=None))

        with torch.no_grad():
            self.solution = self.problem.integrate(y0, on_step=record)
        return self.solution

    def _replay(
        self, stepper: Any, k: int, y: torch.Tensor, times: list[float]
    ) -> tuple[torch.Tensor, list[torch.Tensor], int]:
        """Redo step ``k`` from ``y``: its end state, the interpolant at
        ``times`` (inside the step) and the evaluations spent, with the
        forward solve's operations."""
        func = self.problem.func
        record = self.records[k]
        f0 = func(record.t if record.t_start_eval is None else record.t_start_eval, y)
        # As the loop did: one-sided steps start just inside.
        one_sided = self.problem.settings.one_sided_steps and record.t_start_eval is not None
        t_step = record.t_start_eval if one_sided else record.t
        y1, stages, evaluations = stepper.step(func, t_step, y, f0, record.h, record.t_end_eval)
        if y1 is None:
            raise RuntimeError(f"checkpoint replay: the step from t={record.t!r} did not converge as it did forward")
        evaluations += 1
        outputs: list[torch.Tensor] = []
        if times:
            f1 = None
            if stepper.fsal:
                f1 = stages[-1]
            elif not stepper.has_continuous_extension:
                f1 = func(record.t_next if record.t_end_eval is None else record.t_end_eval, y1)
                evaluations += 1
            thetas = [(time - record.t) / record.h for time in times]
            values, extra = stepper.interpolate(func, record.t, y, y1, f1, stages, record.h, thetas, f0=f0)
            evaluations += extra
            outputs = list(values.unbind(0))
        return y1, outputs, evaluations

    def backward(
        self, points: list[tuple[float, torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        problem = self.problem
        records = self.records
        parameters = problem.parameters
        direction = problem.direction
        n_steps = len(records)
        # Cotangents per step: strictly inside it, or at its end.
        interior: list[list[tuple[float, torch.Tensor]]] = [[] for _ in records]
        at_end: list[list[torch.Tensor]] = [[] for _ in records]
        at_start: list[torch.Tensor] = []
        ends = [direction * record.t_next for record in records]
        for time, _, grad in points:
            forward = direction * time
            if time == problem.times[0] or n_steps == 0:
                at_start.append(grad)
                continue
            k = bisect.bisect_left(ends, forward)  # the first step ending at or after the point
            if k < n_steps and records[k].t_next == time:
                at_end[k].append(grad)
            else:
                interior[min(k, n_steps - 1)].append((time, grad))
        y0 = problem.y0.detach()
        adjoint = torch.zeros_like(y0)
        parameter_grads = [torch.zeros_like(p) for p in parameters]
        counter = problem.backward
        settings = problem.settings

        # One stepper replays every step, as one served the forward solve.
        stepper = ode_core.make_stepper(settings.method, array_namespace(y0), y0, problem.func, settings)

        def backward_step(k: int, y_start: torch.Tensor) -> None:
            nonlocal adjoint
            for grad in at_end[k]:
                adjoint = adjoint + grad
            inside = interior[k]
            with torch.enable_grad():
                y = y_start.detach().requires_grad_(True)
                y_end, outputs, evaluations = self._replay(stepper, k, y, [time for time, _ in inside])
                counter.nfev += evaluations
                counter.n_steps += 1
                counter.n_accepted += 1
                roots = [y_end, *outputs]
                cotangents = [adjoint, *(grad for _, grad in inside)]
                used = [(root, cotangent) for root, cotangent in zip(roots, cotangents) if root.requires_grad]
                grads: Sequence[torch.Tensor | None] = (None,) * (1 + len(parameters))
                if used:
                    grads = torch.autograd.grad(
                        [root for root, _ in used], (y, *parameters), [c for _, c in used], allow_unused=True
                    )
            adjoint = _grads_or_zeros(grads[:1], (y,))[0]
            for index, parameter_grad in enumerate(grads[1:]):
                if parameter_grad is not None:
                    parameter_grads[index] += parameter_grad

        if self.budget is None:
            for k in range(n_steps - 1, -1, -1):
                backward_step(k, records[k].y)
        else:

            def advance(k: int, y: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    y_next, _, evaluations = self._replay(stepper, k, y, [])
                # Let go of the stage buffer (pooled if small): a budget is about memory.
                stepper.close()
                counter.nfev += evaluations
                return y_next

            revolve_schedule(n_steps, self.budget, records[0].y if records else y0, advance, backward_step)
        stepper.close()
        for grad in at_start:
            adjoint = adjoint + grad
        counter.runs += 1
        return adjoint, parameter_grads


# --- autograd glue -------------------------------------------------------------------


class _SolveFunction(torch.autograd.Function):
    """The forward solve of the adjoint or checkpointing engine as one autograd node."""

    @staticmethod
    def forward(ctx: Any, run: _Run, y0: torch.Tensor, *parameters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        solution = run.forward(y0)
        problem = run.problem
        occurrences = _occurrences(solution, problem.direction)
        states = _event_states(solution, occurrences)
        n = y0.shape[0]
        events = torch.stack(states) if states else y0.new_zeros((0, n))
        ctx.run = run
        ctx.occurrences = occurrences
        ctx.save_for_backward(solution.ys, events)
        run.occurrences = occurrences
        return solution.ys, events

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor, grad_events: torch.Tensor) -> tuple[Any, ...]:
        run: _Run = ctx.run
        ys, events = ctx.saved_tensors
        times = run.problem.times
        points = [(times[i], ys[i], grad_ys[i]) for i in range(ys.shape[0])]
        points += [(time, events[k], grad_events[k]) for k, (time, _, _) in enumerate(ctx.occurrences)]
        grad_y0, parameter_grads = run.backward(points)
        return (None, grad_y0, *parameter_grads)


class _DenseFunction(torch.autograd.Function):
    """The forward solution at given times, differentiated by the engine's backward pass."""

    @staticmethod
    def forward(ctx: Any, run: _Run, times: list[float], y0: torch.Tensor, *parameters: torch.Tensor) -> torch.Tensor:
        values = run.dense(times)
        ctx.run = run
        ctx.times = times
        ctx.save_for_backward(values)
        return values

    @staticmethod
    def backward(ctx: Any, grad_values: torch.Tensor) -> tuple[Any, ...]:
        (values,) = ctx.saved_tensors
        points = [(time, values[i], grad_values[i]) for i, time in enumerate(ctx.times)]
        grad_y0, parameter_grads = ctx.run.backward(points)
        return (None, None, grad_y0, *parameter_grads)


def _differentiate_in_function(problem: Problem, run: _Run) -> Differentiated:
    ys, events = _SolveFunction.apply(run, problem.y0, *problem.parameters)
    solution = run.solution
    occurrences = run.occurrences
    dense = None
    if solution.dense is not None:

        def dense(t: Any) -> torch.Tensor:
            scalar = not isinstance(t, (list, tuple)) and (not isinstance(t, torch.Tensor) or t.dim() == 0)
            times = [float(t)] if scalar else [float(v) for v in (t.tolist() if isinstance(t, torch.Tensor) else t)]
            values: torch.Tensor = _DenseFunction.apply(run, times, problem.y0, *problem.parameters)
            return values[0] if scalar else values

    return Differentiated(solution, ys, list(events.unbind(0)), occurrences, dense)


class EventTime(torch.autograd.Function):
    """``(T, y(T))`` of an event, with the implicit-function correction on backward.

    Forward passes the event time (a constant) and the state through; backward
    maps the cotangents ``(grad_T, grad_y)`` onto the state at the fixed time
    ``T``: ``grad_y - (grad_T + grad_y . f) / (g_t + g_y . f) g_y``, the same
    rerouting as torchdiffeq's ``odeint_event``.
    """

    @staticmethod
    def forward(
        ctx: Any, func: FlatFunction, event: Callable[..., Any], time: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ctx.func = func
        ctx.event = event
        ctx.save_for_backward(time, state)
        return time.detach().clone(), state.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad_time: torch.Tensor, grad_state: torch.Tensor) -> tuple[Any, ...]:
        time, state = ctx.saved_tensors
        with torch.enable_grad():
            t = time.detach().clone().requires_grad_(True)
            y = state.detach().clone().requires_grad_(True)
            value = ctx.event(t, y)
            g_t, g_y = torch.autograd.grad(value, (t, y), allow_unused=True)
        with torch.no_grad():
            f_value = ctx.func(float(time), state.detach())
            g_t = torch.zeros_like(time) if g_t is None else g_t
            g_y = torch.zeros_like(state) if g_y is None else g_y
            slope = g_t.to(state.dtype) + torch.dot(g_y, f_value)
            total_time = grad_time.to(state.dtype) + torch.dot(grad_state, f_value)
            correction = g_y * (-total_time / slope)
        return None, None, None, grad_state + correction
