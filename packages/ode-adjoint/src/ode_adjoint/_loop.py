"""A torch-specialised loop for explicit Runge--Kutta methods.

Host-device synchronisation (CUDA): an adaptive step synchronises once, to
read its error ratio for the accept/reject decision (twice for ``dopri8``,
whose estimate combines two norms); fixed steps never do, until a final
finiteness check. Besides, a solve synchronises a few times at its start
(5 for adaptive methods on an H200: input checks and the first step's
size). ``benchmarks/cuda_syncs.py`` counts them, and
``tests/test_synchronisations.py`` holds the loop to these numbers: on a GPU,
and on the CPU (in CI) by counting the same reads of tensor values.

Time is a Python float; ``func`` receives it as a 0-d tensor made by
``torch.full``, which needs no copy from the host.

ode-core's ``solve`` runs on tensors too, but through the array API layer and
with a flat NumPy-style stage buffer. This loop does the same work with torch
operations directly (``addmv`` for the stage sums, one fused expression for the
error), keeps the autograd graph only where a gradient can flow (the error
estimate and step-size decisions run under ``no_grad``), and can record the
accepted steps so the checkpointing engine can replay them. The tableau,
controller and initial-step rule all come from ode-core.

All states are flat 1-D tensors here; ``_state.py`` maps user shapes and
tuples onto them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from ode_core import ButcherTableau, PIDController, Status, select_initial_step

from ._state import FlatFunction

__all__ = ["LoopResult", "StepRecord", "TorchTableau", "integrate", "replay_step"]

FlatFunc = Callable[[float, torch.Tensor], torch.Tensor]

_NO_STATE = torch.empty(0)

# A step that would leave less than this fraction of itself before a time the
# solver must land on is stretched to land there (as in ode-core).
_LANDING_SLACK = 1e-10

# scipy's integral controller; frozen, so one instance serves every solve.
_DEFAULT_CONTROLLER = PIDController()


class TorchTableau:
    """An explicit tableau's coefficients as tensors of one dtype and device."""

    _cache: ClassVar[dict[tuple[int, torch.dtype, torch.device], tuple[ButcherTableau, TorchTableau]]] = {}
    dense_t: torch.Tensor | None

    def __init__(self, tableau: ButcherTableau, dtype: torch.dtype, device: torch.device) -> None:
        if not tableau.explicit:
            raise ValueError(f"method: {tableau.name!r} is implicit; the torch loop runs explicit methods")
        self.tableau = tableau
        s = tableau.n_stages
        self.n_stages = s
        self.fsal = tableau.fsal
        self.nodes = [float(c) for c in tableau.c]

        def tensor(rows: Any) -> torch.Tensor:
            return torch.tensor([[float(v) for v in row] for row in rows], dtype=dtype, device=device)

        def vector(values: Any) -> torch.Tensor:
            return torch.tensor([float(v) for v in values], dtype=dtype, device=device)

        # Row i's first i entries, for torch.addmv(y, K[:i].T, row, alpha=h).
        self.rows = [vector(tableau.a[i][:i]) for i in range(s)]
        self.b = vector(tableau.b)
        self.error_weights = None if tableau.error_weights is None else vector(tableau.error_weights)
        secondary = tableau.error_weights_secondary
        self.error_weights_secondary = None if secondary is None else vector(secondary)
        self.error_order = tableau.controller_order
        if tableau.dense is not None:
            self.dense_t = tensor(tableau.dense).T.contiguous()  # (d, s + extra)
            self.dense_rows = [[float(v) for v in row] for row in tableau.dense]
            self.extra_nodes = [float(c) for c in tableau.c_extra]
            self.extra_rows = [vector(row) for row in tableau.a_extra]
        else:
            self.dense_t = None
            self.dense_rows = []
            self.extra_nodes = []
            self.extra_rows = []

    @classmethod
    def get(cls, tableau: ButcherTableau, dtype: torch.dtype, device: torch.device) -> TorchTableau:
        key = (id(tableau), dtype, device)
        entry = cls._cache.get(key)
        if entry is None or entry[0] is not tableau:
            entry = (tableau, cls(tableau, dtype, device))
            cls._cache[key] = entry
        return entry[1]


class StageBuffer:
    """The stage matrix ``K`` (s, n) and its views, for solves without autograd.

    Without autograd the same buffer serves every step, and the views
    ``K[i]`` and ``K[:i].T`` cost nothing per step. With autograd each step
    needs its own stages, since the graph keeps those of every step.

    Making the views costs more than a small solve (tens of microseconds),
    so small buffers are pooled across solves: :meth:`acquire` takes one
    (or makes one) and :meth:`release` gives it back. A solve started inside
    ``f`` of another (nested solves) takes a different one.
    """

    _pool: ClassVar[dict[tuple[Any, ...], list[StageBuffer]]] = {}
    # Pool only buffers up to this many elements (256 KiB in float32), and
    # only this many shapes, so the pool never holds much memory.
    _POOLED_ELEMENTS = 65536
    _POOLED_SHAPES = 16

    def __init__(self, n_stages: int, like: torch.Tensor, shape: tuple[int, ...] | None) -> None:
        self.stages = torch.empty((n_stages, like.shape[0]), dtype=like.dtype, device=like.device)
        self.rows = list(self.stages.unbind(0))
        self.prefixes = [self.stages[:i].T for i in range(n_stages + 1)]
        self.shape = shape
        self.shaped_rows = None if shape is None else [row.view(shape) for row in self.rows]
        self.direct: FlatFunction | None = None

    @classmethod
    def acquire(cls, n_stages: int, like: torch.Tensor, func: FlatFunc) -> StageBuffer:
        """A buffer for one solve. For a single-tensor user state the loop
        calls the user's function on shaped views and copies its values
        straight into shaped rows, saving the flat wrapper's reshapes on
        every evaluation (``direct``)."""
        direct = func if isinstance(func, FlatFunction) and func.checked and func.shape is not None else None
        shape = None if direct is None else direct.shape
        key = (n_stages, like.shape[0], like.dtype, like.device, shape)
        free = cls._pool.get(key)
        buffer = free.pop() if free else cls(n_stages, like, shape)
        buffer.direct = direct
        return buffer

    @classmethod
    def release(cls, buffer: StageBuffer) -> None:
        """Give a buffer back at the end of its solve."""
        buffer.direct = None
        stages = buffer.stages
        if stages.numel() > cls._POOLED_ELEMENTS:
            return
        key = (stages.shape[0], stages.shape[1], stages.dtype, stages.device, buffer.shape)
        free = cls._pool.get(key)
        if free is None:
            if len(cls._pool) >= cls._POOLED_SHAPES:
                cls._pool.clear()
            free = cls._pool[key] = []
        if len(free) < 2:
            free.append(buffer)


def _stage_times(coefficients: TorchTableau, t: float, h: float, end_time: float | None) -> list[float]:
    """``t + c_i h``, with ``end_time`` for the nodes ``c_i = 1`` when given
    (the float before a jump of f that the step lands on)."""
    times = [t + node * h for node in coefficients.nodes]
    if end_time is not None:
        for i, node in enumerate(coefficients.nodes):
            if node == 1.0:
                times[i] = end_time
    return times


def rk_step(
    func: FlatFunc,
    coefficients: TorchTableau,
    t: float,
    y: torch.Tensor,
    f0: torch.Tensor,
    h: float,
    buffer: StageBuffer | None = None,
    end_time: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One explicit step; returns ``y1`` (n,) and the stages (s, n).

    ``buffer``, for solves without autograd, is reused; the returned stages
    are then only valid until the next step. ``end_time`` replaces ``t + h``
    for the stages at the step's end (see ``_stage_times``).
    """
    s = coefficients.n_stages
    if buffer is None:
        return _rk_step_recorded(func, coefficients, t, y, f0, h, end_time)
    rows, prefixes = buffer.rows, buffer.prefixes
    weights = coefficients.rows
    rows[0].copy_(f0)
    times = _stage_times(coefficients, t, h, end_time)
    last = s - 1 if coefficients.fsal else s
    direct = buffer.direct
    if direct is not None:
        user, shape, shaped_rows = direct.func, direct.shape, buffer.shaped_rows
        assert shape is not None and shaped_rows is not None  # for mypy: set together
        for i in range(1, last):
            value = user(direct.time(times[i]), torch.addmv(y, prefixes[i], weights[i], alpha=h).view(shape))
            shaped_rows[i].copy_(value)
        if coefficients.fsal:
            y1 = torch.addmv(y, prefixes[s - 1], weights[s - 1], alpha=h)
            shaped_rows[s - 1].copy_(user(direct.time(times[s - 1]), y1.view(shape)))
            return y1, buffer.stages
    else:
        for i in range(1, last):
            rows[i].copy_(func(times[i], torch.addmv(y, prefixes[i], weights[i], alpha=h)))
        if coefficients.fsal:
            y1 = torch.addmv(y, prefixes[s - 1], weights[s - 1], alpha=h)
            rows[s - 1].copy_(func(times[s - 1], y1))
            return y1, buffer.stages
    y1 = torch.addmv(y, prefixes[s], coefficients.b, alpha=h)
    return y1, buffer.stages


def _rk_step_recorded(
    func: FlatFunc,
    coefficients: TorchTableau,
    t: float,
    y: torch.Tensor,
    f0: torch.Tensor,
    h: float,
    end_time: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The step for autograd: stage sums as chains of ``add(alpha=)``, which
    save no tensors for backward, so the graph holds the stages and f's own
    intermediates only."""
    s = coefficients.n_stages
    a = coefficients.tableau.a
    times = _stage_times(coefficients, t, h, end_time)
    stages = [f0]
    last = s - 1 if coefficients.fsal else s
    for i in range(1, last + (1 if coefficients.fsal else 0)):
        value = y
        for j in range(i):
            if a[i][j] != 0:
                value = value.add(stages[j], alpha=h * float(a[i][j]))
        if i == s - 1 and coefficients.fsal:
            y1 = value
            stages.append(func(times[i], y1))
        else:
            stages.append(func(times[i], value))
    if not coefficients.fsal:
        y1 = y
        for j, weight in enumerate(coefficients.tableau.b):
            if weight != 0:
                y1 = y1.add(stages[j], alpha=h * float(weight))
    return y1, torch.stack(stages)


def _error_ratio(
    coefficients: TorchTableau,
    h: float,
    abs_y: torch.Tensor,
    abs_y1: torch.Tensor,
    stages: torch.Tensor,
    rtol: float,
    atol: float,
    norm: Callable[[torch.Tensor], float] | None,
) -> float:
    """Norm of the local error over ``atol + rtol max(|y|, |y1|)`` (no graph)."""
    if torch.is_grad_enabled():
        with torch.no_grad():
            return _error_ratio(coefficients, h, abs_y, abs_y1, stages.detach(), rtol, atol, norm)
    # error / (atol + rtol m) = (error / rtol) / (m + atol / rtol), with
    # m = max(|y|, |y1|): two kernels for the scale instead of three, and the
    # factor |h| / rtol applied to the RMS norm as a float.
    scale = torch.maximum(abs_y, abs_y1).add_(atol / rtol)
    stages_t = stages.T
    error = torch.mv(stages_t, coefficients.error_weights).div_(scale)  # type: ignore[arg-type]
    factor = abs(h) / rtol
    if coefficients.error_weights_secondary is None:
        if norm is None:
            return factor * math.sqrt(float(torch.dot(error, error)) / error.shape[0])
        return abs(h) * norm(error.div_(rtol))
    secondary = torch.mv(stages_t, coefficients.error_weights_secondary).div_(scale)
    if norm is None:
        error5 = math.sqrt(float(torch.dot(error, error)) / error.shape[0])
        error3 = math.sqrt(float(torch.dot(secondary, secondary)) / secondary.shape[0])
    else:
        error5, error3 = norm(error.div_(rtol)), norm(secondary.div_(rtol))
        factor = abs(h)
    if error5 == 0.0 and error3 == 0.0:
        return 0.0
    # DOP853's combined estimate (Hairer, Norsett & Wanner, II.10), as in ode-core.
    return factor * error5 * error5 / math.sqrt(error5 * error5 + 0.01 * error3 * error3)


def _interpolate(
    func: FlatFunc,
    coefficients: TorchTableau,
    t: float,
    y: torch.Tensor,
    y1: torch.Tensor,
    f1: torch.Tensor,
    stages: torch.Tensor,
    h: float,
    thetas: Sequence[float],
) -> tuple[torch.Tensor, int]:
    """The step's interpolant at ``t + theta h`` for each theta: ``(len(thetas), n)``,
    and the evaluations of ``f`` spent (DOP853's extra stages).

    With a continuous extension ``y(t + theta h) = y + h sum_i b_i(theta)
    k_i``, where ``b_i(theta) = sum_j dense[i][j] theta^(j+1)``. On the CPU
    the small matrix ``h b_i(theta)`` (outputs x stages) is formed in Python
    and applied in one ``addmm``; on an accelerator the powers of theta are
    built on the device (``full`` then ``cumprod``) rather than copied from
    the host, which would wait for the stream. Without an extension: the
    cubic Hermite interpolant through ``y, y1`` with slopes ``k_0, f1``.
    """
    count = len(thetas)
    if coefficients.dense_t is None:
        delta = y1 - y
        slope0 = stages[0] * h
        slope1 = f1 * h
        interpolant = torch.stack((slope0, 3.0 * delta - 2.0 * slope0 - slope1, slope0 + slope1 - 2.0 * delta))
        return _evaluate(y, interpolant, thetas), 0
    evaluations = 0
    if coefficients.extra_nodes:
        extra: list[torch.Tensor] = []
        for node, row in zip(coefficients.extra_nodes, coefficients.extra_rows):
            extended = torch.cat((stages, *[e[None] for e in extra])) if extra else stages
            extra.append(func(t + node * h, torch.addmv(y, extended.T, row, alpha=h)))
            evaluations += 1
        stages = torch.cat((stages, torch.stack(extra)))
    if y.device.type == "cpu":
        dense = coefficients.dense_rows
        weights = []
        for theta in thetas:
            powers = [h * theta ** (j + 1) for j in range(len(dense[0]))]
            weights.append([sum(p * d for p, d in zip(powers, row)) for row in dense])
        matrix = torch.tensor(weights, dtype=y.dtype, device=y.device)
        return torch.addmm(y.expand(count, -1), matrix, stages), evaluations
    return _evaluate(y, torch.mm(coefficients.dense_t, stages).mul_(h), thetas), evaluations


def _evaluate(y: torch.Tensor, interpolant: torch.Tensor, thetas: Sequence[float]) -> torch.Tensor:
    """``y + sum_j theta^j C_j`` for each theta: (len(thetas), n), powers built on y's device."""
    degree = interpolant.shape[0]
    powers = torch.stack([torch.full((degree,), theta, dtype=y.dtype, device=y.device) for theta in thetas])
    return torch.addmm(y.expand(len(thetas), -1), powers.cumprod_(dim=1), interpolant)


@dataclass
class StepRecord:
    """One accepted step, enough to replay it: start time, size, start state,
    and the times f was evaluated at the ends when the step touched a jump."""

    t: float
    h: float
    y: torch.Tensor
    start_time: float | None = None
    """Where f0 was evaluated, if not ``t`` (just past a jump)."""
    end_time: float | None = None
    """Where the stages at ``t + h`` were evaluated, if not there (just
    before a jump)."""


@dataclass
class LoopResult:
    ys: list[torch.Tensor]
    """States at the output times reached (flat, each (n,))."""
    n_outputs: int
    status: Status
    message: str
    nfev: int
    n_steps: int
    n_accepted: int
    n_rejected: int
    t_final: float
    y_final: torch.Tensor
    steps: list[StepRecord] = field(default_factory=list)
    step_proposal: float = math.nan
    """Size of the last attempted step before it was cut to land on the end
    (unsigned): a good first step for a solve that continues from here."""


def integrate(
    func: FlatFunc,
    y0: torch.Tensor,
    times: Sequence[float],
    tableau: ButcherTableau,
    *,
    rtol: float,
    atol: float,
    step_size: float | None = None,
    first_step: float | None = None,
    max_step: float = math.inf,
    max_steps: int = 2**31 - 1,
    controller: PIDController | None = None,
    norm: Callable[[torch.Tensor], float] | None = None,
    step_t: Sequence[float] = (),
    jump_t: Sequence[float] = (),
    record_steps: bool = False,
    record_states: bool = True,
) -> LoopResult:
    """Integrate the flat system from ``times[0]`` through every output time.

    ``norm``, when given, receives the scaled error vector (n,) and returns
    its size; the default is the RMS norm. Outputs between steps come from
    the tableau's continuous extension, or the cubic Hermite interpolant.
    """
    coefficients = TorchTableau.get(tableau, y0.dtype, y0.device)
    adaptive = step_size is None
    if adaptive and coefficients.error_weights is None:
        raise ValueError(f"options: method {tableau.name!r} has no error estimate; give options={{'step_size': h}}")
    t0, t_end = float(times[0]), float(times[-1])
    direction = 1.0 if t_end > t0 else -1.0
    if adaptive and tableau.steps_onto_outputs:
        # As in ode-core: ButcherTableau.steps_onto_outputs holds the rule.
        step_t = [*step_t, *times[1:-1]]
    jumps = {float(v) for v in jump_t}
    inside = sorted(
        {float(v) for v in [*step_t, *jumps] if direction * (v - t0) > 0 and direction * (t_end - v) > 0},
        key=lambda v: direction * v,
    )
    landings = [*inside, t_end]
    f_current = func(t0, y0)
    nfev = 1
    if controller is None:
        controller = _DEFAULT_CONTROLLER
    if adaptive:
        control_state = controller.init(coefficients.error_order)
        if first_step is not None:
            h_abs = min(first_step, max_step)
        else:

            def rms(vector: torch.Tensor) -> float:
                return math.sqrt(float(vector @ vector) / vector.shape[0])

            with torch.no_grad():
                h_abs = select_initial_step(
                    func,
                    t0,
                    y0.detach(),
                    f_current.detach(),
                    direction,
                    coefficients.error_order,
                    rtol,
                    atol,
                    norm or rms,
                    max_step,
                    abs(t_end - t0),
                )
            nfev += 1
        h = direction * h_abs
    else:
        h = direction * float(step_size)  # type: ignore[arg-type]

    outputs = [y0]
    n_outputs = 1
    steps: list[StepRecord] = []
    landing_index = 0
    t_land = landings[0]
    t_current, y = t0, y0
    abs_y = y0.detach().abs()
    reuse_buffer = not torch.is_grad_enabled()
    buffer = StageBuffer.acquire(coefficients.n_stages, y0, func) if reuse_buffer else None
    n_steps = n_accepted = n_rejected = 0
    step_proposal = math.nan
    start_time: float | None = None
    status: Status | None = None
    message = ""
    while status is None:
        if n_steps >= max_steps:
            status = Status.MAX_STEPS_REACHED
            message = f"max_num_steps={max_steps} steps attempted; stopped at t={t_current!r} before t={t_end!r}"
            break
        h_abs = abs(h)
        if adaptive:
            smallest = 10.0 * abs(math.nextafter(t_current, direction * math.inf) - t_current)
            if h_abs < smallest:
                status = Status.STEP_SIZE_UNDERFLOW
                message = f"step size {h_abs:.3g} fell below {smallest:.3g} at t={t_current!r}"
                break
            if h_abs > max_step:
                h = direction * max_step
                h_abs = max_step
        step_proposal = h_abs
        landed = direction * (t_current + h - t_land) > -_LANDING_SLACK * h_abs
        if landed:
            h = t_land - t_current
        t_new = t_land if landed else t_current + h
        # Landing on a jump of f: the step sees f's left-hand limit there.
        end_time = math.nextafter(t_new, -direction * math.inf) if landed and t_new in jumps else None
        y_new, stages = rk_step(func, coefficients, t_current, y, f_current, h, buffer, end_time)
        if buffer is not None:
            # f0 now sits in row 0, which this step leaves alone; a retry
            # after a rejection must not read the last row, which the
            # rejected attempt overwrote.
            f_current = buffer.rows[0]
        nfev += coefficients.n_stages - 1
        n_steps += 1
        if adaptive:
            # |y| of the accepted state is kept from the step that reached it.
            abs_y_new = (y_new.detach() if y_new.requires_grad else y_new).abs()
            ratio = _error_ratio(coefficients, h, abs_y, abs_y_new, stages, rtol, atol, norm)
            accepted, h_next, control_state = controller.adapt(h, ratio, control_state)
            if not accepted:
                n_rejected += 1
                h = h_next
                continue
        else:
            # Fixed steps take no decision on the state: no synchronisation
            # per step; finiteness is checked once, at the end.
            h_next = direction * float(step_size)  # type: ignore[arg-type]
        n_accepted += 1
        if record_steps:
            # Without states (a checkpoint budget) only y0 is kept.
            steps.append(
                StepRecord(
                    t_current,
                    h,
                    y if record_states or not steps else _NO_STATE,
                    start_time=start_time,
                    end_time=end_time,
                )
            )
        finished = landed and landing_index == len(landings) - 1
        first_pending = n_outputs
        while n_outputs < len(times) and direction * (times[n_outputs] - t_new) <= 0:
            n_outputs += 1
        interior = [times[i] for i in range(first_pending, n_outputs) if times[i] != t_new]
        if coefficients.fsal:
            # With a reused buffer the last row is overwritten by the next
            # step, but copied into row 0 first: a view is enough.
            f_new = stages[-1]
        elif not finished or (interior and coefficients.dense_t is None):
            f_new = func(t_new if end_time is None else end_time, y_new)
            nfev += 1
        else:
            f_new = stages[0]  # unused: the solve ends here
        if interior:
            thetas = [(time - t_current) / h for time in interior]
            values, extra = _interpolate(func, coefficients, t_current, y, y_new, f_new, stages, h, thetas)
            nfev += extra
            outputs.extend(values.unbind(0))
        if n_outputs > first_pending and times[n_outputs - 1] == t_new:
            outputs.append(y_new)
        t_current, y = t_new, y_new
        start_time = None
        if adaptive:
            abs_y = abs_y_new
        if landed:
            if finished:
                status = Status.SUCCESS
                message = "the solver reached the last output time"
                break
            if end_time is not None:
                # Past the jump: the next step starts from f's right-hand limit.
                start_time = math.nextafter(t_new, direction * math.inf)
                f_new = func(start_time, y_new)
                nfev += 1
            landing_index += 1
            t_land = landings[landing_index]
        f_current = f_new
        h = h_next
    if buffer is not None:
        # Nothing returned is a view of it (outputs and states are fresh
        # tensors). After an exception in f it is simply not pooled.
        StageBuffer.release(buffer)
    if not adaptive and status is Status.SUCCESS:
        with torch.no_grad():
            finite = bool(torch.isfinite(y).all())
        if not finite:
            status = Status.NON_FINITE
            message = f"the state became inf or nan in the fixed steps before t={t_current!r}"
    return LoopResult(
        ys=outputs,
        n_outputs=n_outputs,
        status=status,
        message=message,
        nfev=nfev,
        n_steps=n_steps,
        n_accepted=n_accepted,
        n_rejected=n_rejected,
        t_final=t_current,
        step_proposal=step_proposal,
        y_final=y,
        steps=steps,
    )


def replay_step(
    func: FlatFunc,
    tableau: ButcherTableau,
    record: StepRecord,
    y: torch.Tensor,
    interior_times: Sequence[float],
) -> tuple[torch.Tensor, list[torch.Tensor], int]:
    """Redo one recorded step from ``y`` (which may require grad).

    Returns the step's end state, the interpolated outputs at
    ``interior_times`` (strictly inside the step), and the evaluations spent,
    with exactly the operations of the forward pass, so that autograd
    through it gives the same gradient as backprop through the whole solve.
    """
    coefficients = TorchTableau.get(tableau, y.dtype, y.device)
    f0 = func(record.t if record.start_time is None else record.start_time, y)
    y1, stages = rk_step(func, coefficients, record.t, y, f0, record.h, end_time=record.end_time)
    evaluations = coefficients.n_stages
    outputs: list[torch.Tensor] = []
    if interior_times:
        end = record.t + record.h if record.end_time is None else record.end_time
        f1 = stages[-1] if coefficients.fsal else func(end, y1)
        if not coefficients.fsal:
            evaluations += 1
        thetas = [(time - record.t) / record.h for time in interior_times]
        values, extra = _interpolate(func, coefficients, record.t, y, y1, f1, stages, record.h, thetas)
        evaluations += extra
        outputs = list(values.unbind(0))
    return y1, outputs, evaluations
