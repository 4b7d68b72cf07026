"""ode-adjoint's per-sample mode: :func:`ode_adjoint.solve` with ``batch_dims``, on ode-core's per-sample loop.

The loop (:func:`ode_core.integrate_per_sample`) works on torch tensors as
on any array library; this module turns torchdiffeq-style arguments into its
settings, calls ``func`` with one time per sample in the state's dtype, and
differentiates by backprop through the steps (every decision there is a
mask, so autograd records the accepted values only), by replaying kept steps
(checkpointing) or by each sample's adjoint equations solved backwards.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from array_api_compat import array_namespace
from ode_core import (
    DEFAULT_SYNC_EVERY,
    BatchShapedFunction,
    PerSampleRun,
    Stats,
    Status,
    integrate_per_sample,
    per_sample_step,
)
from ode_core.validation import check_count, check_per_sample, check_sample_times, check_state, working_dtype

from ._engines import Adjoint, Backprop, BackwardCounter, Checkpoint, EventTime, GradientEngine, tensors_used_by
from ._namespace import TORCH
from ._solution import Solution, SolverError
from ._state import FlatState

__all__ = ["solve_per_sample"]


class _TimesIn:
    """``func`` with the per-sample times converted to the state's dtype."""

    __slots__ = ("dtype", "func")

    def __init__(self, func: Callable[..., Any], dtype: torch.dtype) -> None:
        self.func = func
        self.dtype = dtype

    def __call__(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        value: torch.Tensor = self.func(t.to(self.dtype), y)
        return value


def _tuple_state(
    func: Callable[..., Any], y0: tuple[torch.Tensor, ...], t: Any, batch_dims: int, **arguments: Any
) -> Solution:
    """A tuple state in the per-sample mode: each sample's tensors side by side in one (*batch, N) tensor.

    ``func`` sees the tuple, with the batch dimensions first in every tensor;
    the default norm is torchdiffeq's for tuples, per sample: the largest of
    the tensors' RMS norms (:class:`ode_core.MixedNorm`'s rule).
    """
    FlatState(y0)  # one dtype and device, floating point: the joint solve's checks and messages
    batch_shape = tuple(y0[0].shape[:batch_dims])
    for index, part in enumerate(y0):
        if tuple(part.shape[:batch_dims]) != batch_shape:
            raise ValueError(
                f"y0[{index}]: expected the batch dimensions {batch_shape} first (batch_dims={batch_dims}), "
                f"got shape {tuple(part.shape)}"
            )
    shapes = [tuple(part.shape[batch_dims:]) for part in y0]
    sizes = [math.prod(shape) for shape in shapes]

    def split(flat: torch.Tensor) -> tuple[torch.Tensor, ...]:
        lead = tuple(flat.shape[:-1])
        return tuple(p.reshape(*lead, *shape) for p, shape in zip(torch.split(flat, sizes, dim=-1), shapes))

    def join(parts: Any, lead: tuple[int, ...]) -> torch.Tensor:
        return torch.cat([part.reshape(*lead, -1) for part in parts], dim=-1)

    def flat_func(t_batch: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return join(func(t_batch, split(y)), tuple(y.shape[:-1]))

    options = dict(arguments.pop("options"))
    user_norm = options.get("norm")

    def norm(scaled: torch.Tensor) -> torch.Tensor:
        if user_norm is not None:
            value: torch.Tensor = user_norm(split(scaled))
            return value
        parts = torch.split(scaled, sizes, dim=-1)
        return torch.stack([part.square().mean(dim=-1).sqrt() for part in parts]).amax(dim=0)

    options["norm"] = norm
    solution = solve_per_sample(flat_func, join(y0, batch_shape), t, batch_dims, options=options, **arguments)
    return dataclasses.replace(solution, ys=split(solution.ys), y_final=split(solution.y_final))


def _joint_on_device(func: Callable[..., Any], y0: torch.Tensor, t: Any, **arguments: Any) -> Solution:
    """One problem as a batch of one sample: the joint solve's result, with the per-sample loop's decisions."""
    shape = tuple(y0.shape)

    def one_sample(t_batch: torch.Tensor, y_batch: torch.Tensor) -> torch.Tensor:
        value: torch.Tensor = func(t_batch.reshape(()), y_batch.reshape(shape))
        return value.reshape(1, *shape)

    options = dict(arguments.pop("options"))
    user_norm = options.get("norm")
    if user_norm is not None:

        def norm(scaled: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(user_norm(scaled.reshape(shape)), dtype=scaled.dtype, device=scaled.device)[None]

        options["norm"] = norm
    if (isinstance(t, torch.Tensor) and t.ndim != 1) or (not isinstance(t, torch.Tensor) and np.ndim(t) != 1):
        raise ValueError(f"t: device_control solves one problem; expected 1-D times, got shape {np.shape(t)}")
    on_failure = arguments.pop("on_failure")
    batch = solve_per_sample(one_sample, y0[None], t, 1, options=options, on_failure="return", joint=False, **arguments)
    if batch.status is not Status.SUCCESS and on_failure == "raise":
        raise SolverError(batch.status, batch.message)
    stats = batch.stats
    return Solution(
        ts=batch.ts,
        ys=batch.ys[:, 0],
        status=batch.status,
        message=batch.message,
        stats=Stats(
            **{
                name: int(getattr(stats, name)[0])
                for name in ("nfev", "n_steps", "n_accepted", "n_rejected", "n_forced")
            }
        ),
        dense=None,
        t_final=float(batch.t_final[0]),
        y_final=batch.y_final[0],
        step_proposal=math.nan,
    )


def _compiler(compile_step: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]] | None:
    """``compile``: False, True (``torch.compile(fullgraph=True)``) or a callable applied to the step function."""
    if compile_step is False or compile_step is None:
        return None
    if compile_step is True:
        return functools.partial(torch.compile, fullgraph=True)
    if callable(compile_step):
        return compile_step  # type: ignore[no-any-return]
    raise TypeError(f"compile: expected True, False or a callable (e.g. torch.compile), got {compile_step!r}")


def solve_per_sample(
    func: Callable[..., Any],
    y0: Any,
    t: Any,
    batch_dims: int,
    *,
    engine: GradientEngine,
    settings_of: Callable[..., Any],
    options: Mapping[str, Any],
    on_failure: str,
    sync_every: Any = DEFAULT_SYNC_EVERY,
    compile_step: Any = False,
    compact: bool = False,
    joint: bool = False,
    adjoint_params: Any = None,
    refused: Mapping[str, Any],
) -> Solution:
    """:func:`ode_adjoint.solve` in the per-sample mode.

    Parameters
    ----------
    func : callable
        ``func(t, y)``: ``t`` of shape ``y0.shape[:batch_dims]`` in y0's
        dtype (one time per sample), ``y`` of y0's shape.
    y0 : Tensor
    t : Tensor or sequence, shape (m,) or (*batch, m)
    batch_dims : int
    engine : GradientEngine
        :class:`Backprop`, :class:`Checkpoint` (without a budget) or :class:`Adjoint` (the seminorm).
    settings_of : callable
        ``settings_of(y_sample, norm, dtype) -> Settings`` from the caller's
        checked torchdiffeq arguments.
    options : mapping
        torchdiffeq's options (for ``norm``).
    on_failure : {"raise", "return"}
    sync_every : int
    compile_step : bool or callable
    compact : bool
        Finished samples leave the batch (one batch dimension; backprop).
    joint : bool
        ``device_control``: ``y0`` is one problem, solved as a batch of one
        (``batch_dims`` ignored), its result that of a joint solve.
    adjoint_params : sequence of Tensor, optional
        The tensors ``func`` uses, for the adjoint engine (default: an
        ``nn.Module``'s parameters, else those its graph leads to).
    refused : mapping
        Arguments the mode cannot take, by name, refused when given.

    Returns
    -------
    Solution
    """
    # What the tuple and one-problem forms pass on to this function again.
    passed_on = {
        "engine": engine,
        "settings_of": settings_of,
        "options": options,
        "on_failure": on_failure,
        "sync_every": sync_every,
        "compile_step": compile_step,
        "adjoint_params": adjoint_params,
        "refused": refused,
    }
    if isinstance(y0, tuple) and not joint:
        return _tuple_state(func, y0, t, batch_dims, compact=compact, **passed_on)
    if not isinstance(y0, torch.Tensor):
        raise TypeError(
            f"y0: the per-sample mode takes a tensor or a tuple of tensors whose first dimensions are the batch, "
            f"got {type(y0).__name__}"
        )
    if not isinstance(engine, (Backprop, Checkpoint, Adjoint)):
        raise ValueError(f"gradient: the per-sample mode takes backprop, checkpoint or adjoint, got {engine!r}")
    if isinstance(engine, Adjoint) and engine.norm not in (None, "seminorm"):
        raise ValueError(
            "gradient: the per-sample adjoint keeps the parameter adjoint out of error control (the seminorm); "
            f"got a norm of its own, {engine.norm!r}"
        )
    if isinstance(engine, Checkpoint) and engine.budget is not None:
        raise ValueError(
            f"gradient: the per-sample mode's checkpointing keeps every step's state; got a budget of {engine.budget}"
        )
    if joint and isinstance(t, torch.Tensor) and t.requires_grad:
        raise ValueError("t: gradients with respect to the output times need batch_dims, not device_control")
    if joint:
        return _joint_on_device(func, y0, t, **passed_on)
    sync_every = check_count(sync_every, "sync_every")
    if not isinstance(compact, bool):
        raise TypeError(f"compact: expected True or False, got {compact!r}")
    if compact and batch_dims != 1:
        raise ValueError(f"compact: takes rows out of one batch dimension; got batch_dims={batch_dims}")
    compiler = _compiler(compile_step)
    _, y0 = check_state(y0)
    batch_shape = tuple(y0.shape[:batch_dims])
    state_shape = tuple(y0.shape[batch_dims:])
    batch, n = math.prod(batch_shape), math.prod(state_shape)
    times, _ = check_sample_times(t, batch_shape)
    state_dtype = y0.dtype
    working = working_dtype(array_namespace(y0), state_dtype)
    y = y0.reshape(batch, n).to(working)
    user_norm = options.get("norm")
    norm = None
    if user_norm is not None:

        def norm(scaled: torch.Tensor) -> torch.Tensor:
            value: torch.Tensor = user_norm(scaled.reshape(y0.shape).to(state_dtype))
            return value.reshape(batch).to(scaled.dtype)

    settings = settings_of(y[0], norm, state_dtype if working != state_dtype else None)
    refused = dict(refused)
    events = refused.pop("events", None)
    check_per_sample(settings, names={"step_size": "options['step_size']"}, **refused)
    shaped = BatchShapedFunction(func, batch_shape, state_shape, TORCH, state_dtype, working, state_dtype)
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = shaped
    if batch_dims == 1 and len(state_shape) == 1 and working == state_dtype:
        # Already (B, n) states: only the times change dtype (a wrapper a call
        # costs a tenth of a small field's evaluation).
        fun = func if state_dtype == torch.float64 else _TimesIn(func, state_dtype)
    differentiable_times = isinstance(t, torch.Tensor) and t.requires_grad
    if differentiable_times:
        if t.device != y.device:
            raise ValueError(f"t: on {t.device}, expected y0's device {y.device}")
        # As the joint solve does (see solve): shifting a sample's start is the
        # perturbation -f0 dt0 of its initial state, a zero-valued term that
        # carries that derivative; each output's own time, f there.
        rows = t.to(torch.float64).expand(*batch_shape, times.shape[1]).reshape(batch, times.shape[1])
        shift = rows - rows.detach()
        with torch.no_grad():
            start_slopes = fun(rows[:, 0].detach(), y.detach())
        unshifted = y
        y = y - shift[:, :1].to(y.dtype) * start_slopes
    counter = BackwardCounter()
    loop_events = shaped.events(events, guard=torch.no_grad)
    if isinstance(engine, Checkpoint):
        solution = _replayed(
            fun, y, times, settings, state_shape, sync_every, compiler, counter, loop_events, compact=compact
        )
    elif isinstance(engine, Adjoint):
        backward_settings = settings_of(torch.cat((y[0], y[0])), None, None, True)
        check_per_sample(backward_settings, names={"method": "adjoint_method"})
        parameters = _adjoint_parameters(func, adjoint_params, fun, times, y)
        solution = _adjointed(
            fun,
            y,
            times,
            settings,
            backward_settings,
            state_shape,
            sync_every,
            counter,
            parameters,
            loop_events,
            compact=compact,
        )
    else:
        solution = integrate_per_sample(
            fun,
            y,
            times,
            settings,
            shape=state_shape,
            sync_every=sync_every,
            compile_step=compiler,
            namespace=TORCH,
            compact=compact,
            events=loop_events,
        )
    if events is not None:
        solution = _differentiable_sample_events(solution, fun, events, batch_shape, state_shape, state_dtype)
    if solution.status not in (Status.SUCCESS, Status.EVENT) and on_failure == "raise":
        raise SolverError(solution.status, solution.message)
    if differentiable_times:
        ys_flat = solution.ys.reshape(times.shape[1], batch, n)
        with torch.no_grad():
            slopes = [fun(rows[:, i].detach(), ys_flat[i].detach()) for i in range(1, times.shape[1])]
        shifted = [ys_flat[i] + shift[:, i : i + 1].to(ys_flat.dtype) * slopes[i - 1] for i in range(1, times.shape[1])]
        # The output at a sample's first time is its initial state, whatever that time.
        ys_flat = torch.stack([unshifted, *shifted])
        succeeded = torch.tensor([s is Status.SUCCESS for s in solution.sample_status], device=y.device)
        final = torch.where(succeeded[:, None], ys_flat[-1], solution.y_final.reshape(batch, n))
        solution = dataclasses.replace(solution, ys=ys_flat, y_final=final)
    stats = solution.stats
    m = times.shape[1]
    shared = not isinstance(t, torch.Tensor) or t.ndim == 1
    if isinstance(t, (list, tuple)):
        shared = not isinstance(t[0], (list, tuple)) if t else True
    return Solution(
        ts=solution.ts[0] if shared else solution.ts.reshape(*batch_shape, m),
        ys=solution.ys.reshape(m, *y0.shape).to(state_dtype),
        status=solution.status,
        message=solution.message,
        stats=Stats(
            **{
                name: getattr(stats, name).reshape(batch_shape)
                for name in ("nfev", "n_steps", "n_accepted", "n_rejected", "n_forced")
            }
        ),
        dense=None,
        t_final=cast(torch.Tensor, solution.t_final).reshape(batch_shape),
        y_final=solution.y_final.reshape(y0.shape).to(state_dtype),
        step_proposal=math.nan,
        t_events=solution.t_events,
        y_events=solution.y_events,
        sample_status=solution.sample_status,
        backward_counter=counter,
    )


def _occurrences(solution: Any) -> list[tuple[int, int, int]]:
    """Every event a per-sample solve found, as ``(event function, sample, occurrence)``: the order in
    which the checkpoint and adjoint engines return the events' states."""
    if solution.t_events is None:
        return []
    return [
        (e, b, j)
        for e, samples in enumerate(solution.t_events)
        for b, found in enumerate(samples)
        for j in range(len(found))
    ]


def _event_time(solution: Any, occurrence: tuple[int, int, int]) -> float:
    e, b, j = occurrence
    return float(solution.t_events[e][b][j])


def _event_rows(solution: Any, occurrences: list[tuple[int, int, int]], n: int) -> torch.Tensor:
    """The events' states, (K, n) in the order of ``occurrences``."""
    rows = [solution.y_events[e][b][j].reshape(n) for e, b, j in occurrences]
    return torch.stack(rows) if rows else solution.y_final.new_zeros((0, n))


def _with_event_states(solution: Any, occurrences: list[tuple[int, int, int]], states: torch.Tensor) -> Any:
    """The solution with its events' states the rows of ``states`` (K, n), as differentiable as they are."""
    y_events = [list(samples) for samples in solution.y_events]
    grouped: dict[tuple[int, int], list[torch.Tensor]] = {}
    for k, (e, b, _) in enumerate(occurrences):
        grouped.setdefault((e, b), []).append(states[k])
    for (e, b), rows in grouped.items():
        y_events[e][b] = torch.stack(rows).reshape(solution.y_events[e][b].shape)
    return dataclasses.replace(solution, y_events=y_events)


def _dropped_outputs(solution: Any, occurrences: list[tuple[int, int, int]], times: np.ndarray) -> np.ndarray:
    """The outputs past each sample's terminal event, shape (B, m): never computed (NaN), so their
    cotangents are dropped, as backprop through the masks drops them. (A stopped sample's final state is
    its event's state, which :func:`_differentiable_sample_events` puts in its row.)"""
    dropped = np.zeros(times.shape, dtype=bool)
    t_final = _to_numpy(solution.t_final).reshape(-1)
    for occurrence in occurrences:
        b = occurrence[1]
        t_event = _event_time(solution, occurrence)
        if _stopped_there(solution, b, t_event, float(t_final[b])):
            dropped[b] = (times[b] - t_event) * (times[b, -1] - times[b, 0]) > 0
    return dropped


def _stopped_there(solution: Any, b: int, time: float, t_final: float) -> bool:
    """Whether sample ``b`` stopped at a terminal event at ``time`` (then its final state is that event's)."""
    return solution.sample_status[b] is Status.EVENT and time == t_final


def _to_numpy(array: Any) -> np.ndarray:
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def _replayed(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    times: Any,
    settings: Any,
    shape: tuple[int, ...],
    sync_every: int,
    compiler: Callable[[Callable[..., Any]], Callable[..., Any]] | None,
    counter: BackwardCounter,
    events: tuple[Callable[..., Any], ...] = (),
    compact: bool = False,
) -> Any:
    """The checkpointing engine on the per-sample loop: solve without a graph, keeping every step's state;
    ``backward()`` replays the steps one at a time with autograd, in reverse.

    A replayed step is the forward step by construction (the same function on
    the same arrays, so the same masks); its outputs' gradients need only the
    step's state, not the outputs written before it, so the kept states are
    (B, n) arrays per step, not the (B, m, n) outputs. An event's state is
    its step's interpolant there (:meth:`PerSampleRun.last_step_interpolant`,
    what the event tracker located it on), differentiated in that step's replay.
    With ``compact``, each kept step keeps its problem and rows too (the
    samples still in the batch then), and is replayed on those rows.
    """
    with torch.no_grad():
        run = PerSampleRun(
            fun, y.detach(), times, settings, shape=shape, namespace=TORCH, events=events, compact=compact
        )
    step = per_sample_step if compiler is None else compiler(per_sample_step)
    kept: list[_Kept] = []

    def keeping(problem: Any, carry: Any) -> Any:
        kept.append(_Kept(problem, carry._replace(ys=None), run.rows))
        return step(problem, carry)

    # The tensors func uses, from its graph at the first state (tensors_used_by's times are its loop's floats).
    parameters = tensors_used_by(cast(Any, fun), cast(Any, run.problem.times[:, 0]), y)
    with torch.no_grad():
        solution = run.run(keeping, sync_every)
    occurrences = _occurrences(solution)
    replay = (run, kept, step, solution, counter, occurrences, times)
    ys, y_final, event_states = _Replay.apply(replay, y, *parameters)
    solution = dataclasses.replace(solution, ys=ys, y_final=y_final)
    return _with_event_states(solution, occurrences, event_states) if occurrences else solution


class _Kept(NamedTuple):
    """One step of a checkpointed per-sample solve, as the replay needs it."""

    problem: Any
    carry: Any
    rows: np.ndarray  # the samples (rows of y0) of the carry's rows


def _by_sample(kept: list[_Kept], field: str, final: np.ndarray) -> np.ndarray:
    """A (B,) field of every kept carry by sample, (S, B), read in one transfer: a sample out of the batch
    (finished) has its final value."""
    values = np.tile(final, (len(kept), 1))
    if kept:
        flat = _to_numpy(torch.cat([getattr(entry.carry, field) for entry in kept]))
        offsets = np.cumsum([0, *(len(entry.rows) for entry in kept)])
        for index, entry in enumerate(kept):
            values[index, entry.rows] = flat[offsets[index] : offsets[index + 1]]
    return values


def _increments(kept: list[_Kept], field: str, final: np.ndarray) -> np.ndarray:
    """Whether each kept step raised a sample's count ``field`` (``n_steps``, ``n_accepted``), (S, B)."""
    return np.diff(np.concatenate([_by_sample(kept, field, final), final[None]]), axis=0) > 0


def _event_steps(kept: list[_Kept], solution: Any, occurrences: list[tuple[int, int, int]], sign: float) -> Any:
    """Per kept step, the events found on it: each sample's last accepted step that began before the event
    (an event at a step's end belongs to that step, as the event tracker counts it)."""
    if not occurrences:
        return {}
    starts = _by_sample(kept, "t", np.full(len(solution.sample_status), np.inf))
    accepted = _increments(kept, "n_accepted", _to_numpy(solution.stats.n_accepted).reshape(-1))
    found: dict[int, list[int]] = {}
    for k, occurrence in enumerate(occurrences):
        b = occurrence[1]
        steps = np.flatnonzero(accepted[:, b] & (starts[:, b] < sign * _event_time(solution, occurrence)))
        if not steps.size:
            raise RuntimeError(f"the checkpoint engine found no step of sample {b} before its event")
        found.setdefault(int(steps[-1]), []).append(k)
    return found


class _Replay(torch.autograd.Function):
    """Outputs ``(ys, y_final, event states)`` of a per-sample solve already taken, differentiated by
    replaying its steps."""

    @staticmethod
    def forward(ctx: Any, replay: Any, y0: torch.Tensor, *parameters: Any) -> tuple[torch.Tensor, ...]:
        solution, occurrences = replay[3], replay[5]
        ctx.replay = replay
        ctx.save_for_backward(y0, *parameters)
        events = _event_rows(solution, occurrences, y0.shape[1])
        return solution.ys.clone(), solution.y_final.clone(), events.clone()

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor, grad_final: torch.Tensor, grad_events: torch.Tensor) -> Any:
        y0, *parameters = ctx.saved_tensors
        run, kept, step, solution, counter, occurrences, times = ctx.replay
        batch, m = times.shape
        n = y0.shape[1]
        # The cotangents by sample, in the carry's layout: outputs (B, m, n), the final state (B, n);
        # copies, since a step replayed on fewer rows (compacted) writes its own into them.
        grad_outputs = grad_ys.reshape(m, batch, n).permute(1, 0, 2).clone()
        grad_y = grad_final.reshape(batch, n).clone()
        if occurrences:
            dropped = torch.as_tensor(_dropped_outputs(solution, occurrences, times), device=y0.device)
            grad_outputs = torch.where(dropped[:, :, None], 0.0, grad_outputs)
        grad_f = torch.zeros_like(grad_y)
        grad_parameters = [torch.zeros_like(p) for p in parameters]
        event_steps = _event_steps(kept, solution, occurrences, run.problem.time_sign)
        # Steps no sample took (the rest of the block in which the last one finished) change nothing:
        # not replayed.
        taken = _increments(kept, "n_steps", _to_numpy(solution.stats.n_steps).reshape(-1)).any(axis=1)
        with torch.enable_grad():
            for index in reversed(np.flatnonzero(taken).tolist()):
                problem, carry, rows = kept[index]
                every = len(rows) == batch
                at = torch.as_tensor(rows, device=y0.device)
                y = carry.y.detach().requires_grad_()
                f = carry.f.detach().requires_grad_()
                # The outputs before the step pass through it unchanged where it writes none:
                # their values do not matter, only the mask does.
                before = torch.zeros(len(rows), m, n, dtype=y.dtype, device=y.device, requires_grad=True)
                after = step(problem, carry._replace(y=y, f=f, ys=before))
                outputs = [after.y, after.f, after.ys]
                cotangents = [grad_y, grad_f, grad_outputs] if every else [grad_y[at], grad_f[at], grad_outputs[at]]
                for k in event_steps.get(index, ()):
                    row = int(np.flatnonzero(rows == occurrences[k][1])[0])
                    interpolant = run.last_step_interpolant(after, row)
                    outputs.append(interpolant(_event_time(solution, occurrences[k])))
                    cotangents.append(grad_events[k])
                grads = torch.autograd.grad(outputs, (y, f, before, *parameters), cotangents, allow_unused=True)
                found = [
                    grads[i] if grads[i] is not None else torch.zeros_like(like)
                    for i, like in enumerate((y, f, before))
                ]
                if every:
                    grad_y, grad_f, grad_outputs = found
                else:
                    grad_y[at], grad_f[at], grad_outputs[at] = found
                for i, g in enumerate(grads[3:]):
                    if g is not None:
                        grad_parameters[i] = grad_parameters[i] + g
            # The first state: y0 itself (and the first output), f(t0, y0) from it.
            problem = kept[0].problem if kept else run.problem
            start = y0.detach().requires_grad_()
            f0 = problem.fun(problem.times[:, 0], start)
            grads = torch.autograd.grad((f0,), (start, *parameters), (grad_f,), allow_unused=True)
        grad_y0 = grad_y + grad_outputs[:, 0] + (grads[0] if grads[0] is not None else 0)
        for i, g in enumerate(grads[1:]):
            if g is not None:
                grad_parameters[i] = grad_parameters[i] + g
        stats = solution.stats
        # Every kept step replayed: its stages again, and f(t0, y0) once.
        evaluations = stats.nfev - int(run.start_evaluations) + 1
        counter.add(Stats(evaluations, stats.n_steps, stats.n_accepted, stats.n_rejected))
        counter.runs += 1
        return (None, grad_y0, *grad_parameters)


def _adjoint_parameters(
    func: Any, adjoint_params: Any, fun: Callable[..., Any], times: Any, y: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """The tensors the per-sample adjoint differentiates: ``adjoint_params``, else an ``nn.Module``'s
    parameters, else the leaves ``func``'s graph at the first state leads to."""
    if adjoint_params is not None:
        return tuple(adjoint_params)
    if isinstance(func, torch.nn.Module):
        return tuple(p for p in func.parameters() if p.requires_grad)
    first = torch.as_tensor(times[:, 0], dtype=torch.float64, device=y.device)
    return tensors_used_by(cast(Any, fun), cast(Any, first), y)


def _adjointed(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    times: Any,
    settings: Any,
    backward_settings: Any,
    shape: tuple[int, ...],
    sync_every: int,
    counter: BackwardCounter,
    parameters: tuple[torch.Tensor, ...],
    events: tuple[Callable[..., Any], ...] = (),
    compact: bool = False,
) -> Any:
    """The adjoint engine on the per-sample loop: solve without a graph; ``backward()`` solves the adjoint
    equations back in time, each sample with its own steps, interval by interval between its outputs
    and events.

    Each sample's backward state is ``[z, a_z]``: ``z`` reconstructed backwards from the forward solution
    at each output and event, ``a_z`` jumping by their cotangents there. The parameter adjoint, a sum over
    the samples, is each accepted step's quadrature of ``a_z df/dtheta`` with the step's own weights:
    outside error control, as the seminorm (Kidger, Chen & Lyons 2021) leaves it. With ``compact``, the
    forward solve and every backward one compact.
    """
    with torch.no_grad():
        solution = integrate_per_sample(
            fun,
            y.detach(),
            times,
            settings,
            shape=shape,
            sync_every=sync_every,
            namespace=TORCH,
            events=events,
            compact=compact,
        )
    occurrences = _occurrences(solution)
    context = (fun, times, backward_settings, sync_every, compact, counter, solution, occurrences)
    ys, y_final, event_states = _AdjointSolve.apply(context, y, *parameters)
    solution = dataclasses.replace(solution, ys=ys, y_final=y_final)
    return _with_event_states(solution, occurrences, event_states) if occurrences else solution


def _adjoint_points(
    solution: Any,
    occurrences: list[tuple[int, int, int]],
    times: np.ndarray,
    grad_outputs: torch.Tensor,
    grad_final: torch.Tensor,
    grad_events: torch.Tensor,
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Where each sample's backward solve resets ``z`` and adds a cotangent to ``a_z``: its outputs up to
    where it stopped and its events, in time order, the last taking the final state's cotangent too.

    Samples with fewer points than others start with copies of their first
    (cotangent zero): intervals of no length, done before their first step.

    Returns
    -------
    times : ndarray, shape (B, P)
    states, cotangents : Tensor, shape (P, B, n)
    """
    m, batch, n = grad_outputs.shape
    ys = solution.ys.reshape(m, batch, n)
    states = _event_rows(solution, occurrences, n)
    dropped = _dropped_outputs(solution, occurrences, times)
    points: list[list[tuple[float, torch.Tensor, torch.Tensor]]] = [
        [(float(times[b, i]), ys[i, b], grad_outputs[i, b]) for i in range(m) if not dropped[b, i]]
        for b in range(batch)
    ]
    for k, occurrence in enumerate(occurrences):
        points[occurrence[1]].append((_event_time(solution, occurrence), states[k], grad_events[k]))
    direction = 1.0 if times[0, -1] > times[0, 0] else -1.0
    size = max(len(found) for found in points)
    for b, found in enumerate(points):
        found.sort(key=lambda point: direction * point[0])
        last_time, last_state, last_cotangent = found[-1]
        found[-1] = (last_time, last_state, last_cotangent + grad_final[b])
        first_time, first_state, first_cotangent = found[0]
        found[:0] = [(first_time, first_state, torch.zeros_like(first_cotangent))] * (size - len(found))
    return (
        np.array([[time for time, _, _ in found] for found in points]),
        torch.stack([torch.stack([found[p][1] for found in points]) for p in range(size)]),
        torch.stack([torch.stack([found[p][2] for found in points]) for p in range(size)]),
    )


class _AdjointSolve(torch.autograd.Function):
    """Outputs ``(ys, y_final, event states)`` of a per-sample solve already taken, differentiated by the
    adjoint equations."""

    @staticmethod
    def forward(ctx: Any, context: Any, y0: torch.Tensor, *parameters: Any) -> tuple[torch.Tensor, ...]:
        ctx.context = context
        ctx.save_for_backward(*parameters)
        solution, occurrences = context[-2:]
        events = _event_rows(solution, occurrences, y0.shape[1])
        return solution.ys.clone(), solution.y_final.clone(), events.clone()

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor, grad_final: torch.Tensor, grad_events: torch.Tensor) -> Any:
        fun, times, settings, sync_every, compact, counter, solution, occurrences = ctx.context
        parameters = ctx.saved_tensors
        if solution.status not in (Status.SUCCESS, Status.EVENT):
            raise SolverError(solution.status, "the adjoint needs every sample's forward solve; " + solution.message)
        m, batch = grad_ys.shape[0], grad_ys.shape[1]
        grad_outputs = grad_ys.reshape(m, batch, -1)
        n = grad_outputs.shape[2]
        point_times, point_states, cotangents = _adjoint_points(
            solution, occurrences, times, grad_outputs, grad_final.reshape(batch, n), grad_events
        )
        adjoint = cotangents[-1]
        grads = [torch.zeros_like(p) for p in parameters]
        weights = [float(b) for b in settings.method.b]
        records: list[tuple[torch.Tensor, torch.Tensor]] = []

        def augmented(t: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
            z, a = state[:, :n], state[:, n:]
            with torch.enable_grad():
                z_graph = z.detach().requires_grad_()
                value = fun(t, z_graph)
                (slope,) = torch.autograd.grad(value, z_graph, a, retain_graph=bool(parameters))
            records.append((value, a.detach()))
            return torch.cat((value.detach(), -slope), dim=1)

        evaluations = steps = accepted_steps = 0
        for k in range(point_times.shape[1] - 1, 0, -1):
            interval = point_times[:, k - 1 : k + 1][:, ::-1].copy()
            run = PerSampleRun(
                augmented,
                torch.cat((point_states[k], adjoint), dim=1),
                interval,
                settings,
                namespace=TORCH,
                compact=compact,
            )

            def step(problem: Any, before: Any, direction: float = run.direction) -> Any:
                records.clear()
                after = per_sample_step(problem, before)
                if parameters:
                    _parameter_quadrature(fun, direction, before, after, records, weights, n, parameters, grads)
                return after

            interval_solution = run.run(step, sync_every)
            if interval_solution.status is not Status.SUCCESS:
                raise SolverError(
                    interval_solution.status, "the adjoint's backward solve: " + interval_solution.message
                )
            stats = interval_solution.stats
            # Each step's quadrature evaluates f at its start once more (every attempted step).
            evaluations = evaluations + stats.nfev + (stats.n_steps if parameters else 0)
            steps = steps + stats.n_steps
            accepted_steps = accepted_steps + stats.n_accepted
            adjoint = interval_solution.y_final[:, n:] + cotangents[k - 1]
        counter.add(Stats(evaluations, steps, accepted_steps, steps - accepted_steps))
        counter.runs += 1
        return (None, adjoint, *grads)


def _parameter_quadrature(
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    direction: float,
    before: Any,
    after: Any,
    records: list[tuple[torch.Tensor, torch.Tensor]],
    weights: list[float],
    n: int,
    parameters: tuple[torch.Tensor, ...],
    grads: list[torch.Tensor],
) -> None:
    """Add one step's ``sum_i b_i |h| a_i df/dtheta(Z_i)`` over its accepted samples to ``grads``.

    The stages after the first are the step's own evaluations (their graphs
    kept); the first, the slope at the step's start, is evaluated again.
    """
    accepted = (after.n_accepted - before.n_accepted).to(torch.bool)
    # The step's real size, signed so that the sum is the integral from the first output time to the
    # last: positive for the usual backward solve (direction -1), negative for a forward one.
    size = torch.where(accepted, (after.t - before.t).abs() * -direction, 0.0).to(before.y.dtype)[:, None]
    start_time = before.t if direction > 0 else -before.t
    with torch.enable_grad():
        first = fun(start_time, before.y[:, :n].detach())
    stages = [(first, before.y[:, n:]), *records[: len(weights) - 1]]
    outputs, cotangents = [], []
    for weight, (value, a) in zip(weights, stages, strict=True):
        if weight != 0.0:
            outputs.append(value)
            cotangents.append(weight * size * a)
    found = torch.autograd.grad(outputs, parameters, cotangents, allow_unused=True)
    for i, g in enumerate(found):
        if g is not None:
            grads[i] += g


def _differentiable_sample_events(
    solution: Any,
    fun: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    events: Any,
    batch_shape: tuple[int, ...],
    state_shape: tuple[int, ...],
    dtype: torch.dtype,
) -> Any:
    """Each sample's event times and states with the joint solve's implicit-function gradient
    (:class:`EventTime`), and a stopped sample's final state the corrected one at its event."""
    functions = [events] if callable(events) else list(events)
    y_final = solution.y_final.reshape(solution.y_final.shape[0], -1)
    batch, n = y_final.shape
    base_t = torch.as_tensor(solution.t_final, dtype=torch.float64, device=y_final.device).reshape(batch)
    base_y = y_final.detach()
    t_events, y_events = [], []
    stopped: dict[int, torch.Tensor] = {}
    for e, event in enumerate(functions):
        times_e, states_e = [], []
        for b in range(batch):
            one = torch.arange(batch, device=y_final.device) == b

            def f_b(t: float, state: torch.Tensor, one: torch.Tensor = one, b: int = b) -> torch.Tensor:
                times = torch.where(one, torch.tensor(t, dtype=torch.float64, device=base_t.device), base_t)
                return fun(times, torch.where(one[:, None], state[None, :], base_y))[b]

            def g_b(
                t: torch.Tensor, state: torch.Tensor, one: torch.Tensor = one, b: int = b, event: Any = event
            ) -> Any:
                times = torch.where(one, t.to(torch.float64), base_t).to(dtype)
                states = torch.where(one[:, None], state[None, :].to(base_y.dtype), base_y).to(dtype)
                rows = (batch,) if len(batch_shape) == 1 else batch_shape
                value = event(times.reshape(rows), states.reshape(*rows, *state_shape))
                return torch.as_tensor(value).reshape(-1)[b]

            found_t, found_y = [], []
            for time, state in zip(solution.t_events[e][b], solution.y_events[e][b]):
                event_time, event_state = torch.as_tensor(time, dtype=torch.float64), state.reshape(n)
                if event_state.requires_grad:
                    event_time, event_state = EventTime.apply(f_b, g_b, event_time, event_state)
                found_t.append(event_time)
                found_y.append(event_state)
                if _stopped_there(solution, b, float(time), float(base_t[b])):
                    stopped.setdefault(b, event_state)
            empty_t = torch.zeros(0, dtype=torch.float64, device=y_final.device)
            times_e.append(torch.stack(found_t) if found_t else empty_t)
            states_e.append(torch.stack(found_y).reshape(-1, *state_shape) if found_y else solution.y_events[e][b])
        t_events.append(times_e)
        y_events.append(states_e)
    for b, state in stopped.items():
        one = (torch.arange(batch, device=y_final.device) == b)[:, None]
        y_final = torch.where(one, state[None, :], y_final)
    return dataclasses.replace(
        solution, t_events=t_events, y_events=y_events, y_final=y_final.reshape(solution.y_final.shape)
    )
