"""The per-sample mode: a batch of independent problems, each with its own steps.

When the rows of a batch are independent problems (trajectories, irregular
time series, a latent ODE's samples), a joint solve steps all of them at the
pace of the hardest and rejects a step for all when one fails. Here each
sample has its own time, step size, acceptance, status and statistics; ``f``
is still called once per stage on the whole batch, with one time per sample.

Every decision is an array operation: a rejected sample keeps its state
(``where``), a finished one rides along with a step of zero whose result is
discarded (or, with ``compact``, leaves the batch at the next read).
Nothing inside a step reads a value on the host, so on an accelerator the
host waits for the device only once every ``sync_every``
steps, to learn whether every sample is done (adaptive steps), or once at the
end (fixed steps, whose count is known from the times beforehand). One step,
:func:`per_sample_step`, is a pure function of arrays, so ``torch.compile`` can
capture it whole (``compile_step``).

Why a loop of its own beside :func:`ode_core.integrate`: that loop takes its
decisions as Python branches on floats (cheap on the host, one read per step
on a device); here they are masks over the batch. The rules are shared, not
restated: the tableaux, the controller (:meth:`PIDController.adapt_per_sample`
beside :meth:`PIDController.adapt`), the first step
(:func:`select_initial_steps` beside :func:`select_initial_step`), the cubic
Hermite interpolant, the landing slack; the tests hold each sample to the
step sequence and evaluation count of solving it alone.

Events: each step flags, on the device, a possible event (a sign change of
``g`` over the step, or a zero at its start); a flagged sample pauses, and at
the next read the host locates it with that sample's own
``EventTracker`` (the joint loop's rules, on the step's
interpolant), then resumes the sample or stops it at a terminal event.

What it does not do (refused by name where it is asked for): implicit and
multistep methods, ``step_t``/``jump_t``, dense output, the predictive
controller, one-sided steps.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np
from array_api_compat import device as device_of

from ._arrays import detached
from ._controllers import ControllerState, IController, PIDController
from ._dense import hermite_coefficients
from ._events import EventTracker
from ._initial_step import select_initial_steps
from ._loop import _LANDING_SLACK, _namespace, _step_interpolant
from ._settings import Settings
from ._solution import Solution, Stats, Status
from ._tableau import ButcherTableau

__all__ = [
    "DEFAULT_SYNC_EVERY",
    "BatchShapedFunction",
    "PerSampleRun",
    "PerSampleRungeKutta",
    "integrate_per_sample",
    "per_sample_step",
]

DEFAULT_SYNC_EVERY = 8
"""Adaptive steps between two host reads of "is every sample done?"."""

# A sample's state, as a code that stays on the device until the end.
_RUNNING, _SUCCESS, _UNDERFLOW, _NON_FINITE, _MAX_STEPS, _PAUSED, _EVENT = 0, 1, 2, 3, 4, 5, 6
_STATUSES = {
    _SUCCESS: Status.SUCCESS,
    _EVENT: Status.EVENT,
    _UNDERFLOW: Status.STEP_SIZE_UNDERFLOW,
    _NON_FINITE: Status.NON_FINITE,
    _MAX_STEPS: Status.MAX_STEPS_REACHED,
}

PerSampleFunction = Callable[[Any, Any], Any]


def _as_array(xp: Any, rows: list[list[float]], dtype: Any, device: Any) -> Any:
    return xp.asarray(rows, dtype=dtype, device=device)


class PerSampleRungeKutta:
    """An explicit tableau's steps on a batch ``(B, n)``, one time and step size per sample.

    Works on every array API library and under torch's autograd (nothing
    is written in place): a stage sum of one or two terms is that many
    scalar products, a longer one a product of the coefficient row with the
    stages so far (which saves only the row for backward). Built once per tableau,
    namespace, dtype and device (:meth:`get`).

    Parameters
    ----------
    tableau : ButcherTableau
        Explicit, ``c[0] == 0``.
    xp : array namespace
    dtype, device
        Of the state.
    """

    _cache: dict[tuple[int, str, str, str], tuple[ButcherTableau, PerSampleRungeKutta]] = {}  # noqa: RUF012

    def __init__(self, tableau: ButcherTableau, xp: Any, dtype: Any, device: Any) -> None:
        if not tableau.explicit or tableau.c[0] != 0:
            raise ValueError(f"method: {tableau.name!r} is not an explicit tableau with c[0] == 0")
        self.tableau = tableau
        s = tableau.n_stages
        self.n_stages = s
        self.fsal = tableau.fsal
        self.dtype, self.device = dtype, device
        self.nodes_column = xp.asarray([[float(c)] for c in tableau.c], dtype=xp.float64, device=device)
        self.rows = [_as_array(xp, [[float(a) for a in tableau.a[i][:i]]], dtype, device) for i in range(s)]
        nonzero = [[(j, float(a)) for j, a in enumerate(tableau.a[i][:i]) if a != 0] for i in range(s)]
        self.short_rows = [terms if 0 < len(terms) <= 2 else None for terms in nonzero]
        self.weights = _as_array(xp, [[float(b) for b in tableau.b]], dtype, device)
        self.error_order = tableau.controller_order
        # What is read off a step's stages, in one product: the error
        # weights (DOP853: two rows), then the interpolant's columns where it
        # needs no stages beyond the step's (with extra stages every step
        # would pay for them, interpolating or not, since no step can skip
        # work on the device: such methods step onto the output times).
        readout = [list(w) for w in (tableau.error_weights, tableau.error_weights_secondary) if w is not None]
        self.n_error_rows = len(readout)
        dense = tableau.dense
        self.has_interpolant = dense is not None and not tableau.c_extra
        if dense is not None and self.has_interpolant:
            readout += [[row[k] for row in dense] for k in range(len(dense[0]))]
        self.readout = None if not readout else _as_array(xp, [[float(v) for v in r] for r in readout], dtype, device)

    @classmethod
    def get(cls, tableau: ButcherTableau, xp: Any, dtype: Any, device: Any) -> PerSampleRungeKutta:
        """The stepper of ``tableau`` on this namespace, dtype and device, made once."""
        key = (id(tableau), xp.__name__, str(dtype), str(device))
        entry = cls._cache.get(key)
        if entry is None or entry[0] is not tableau:
            if len(cls._cache) > 256:
                cls._cache.clear()
            entry = cls._cache[key] = (tableau, cls(tableau, xp, dtype, device))
        return entry[1]

    def step(self, xp: Any, fun: PerSampleFunction, t: Any, y: Any, f0: Any, h: Any, column: Any) -> tuple[Any, Any]:
        """One step per sample.

        Parameters
        ----------
        xp : array namespace
        fun : callable
            ``fun(t, y)``, ``t`` of shape (B,), ``y`` of shape (B, n).
        t, h : array, shape (B,)
            Float64, for the stages' times.
        y, f0 : array, shape (B, n)
        column : array, shape (B, 1)
            ``h`` in the state's dtype, for the stage arithmetic.

        Returns
        -------
        y1 : array, shape (B, n)
        stages : array, shape (s, B, n)
            ``stages[i] = f(t + c_i h, Y_i)``; for an FSAL tableau the last
            is ``f(t + h, y1)``.
        """
        batch, n = y.shape
        s = self.n_stages
        stages = [f0]
        # Every stage's time in one product: (s, B).
        times = t[None, :] + self.nodes_column * h[None, :]
        y1 = None
        for i in range(1, s):
            terms = self.short_rows[i]
            if terms is not None:  # one or two terms: cheaper than a product
                increment = terms[0][1] * stages[terms[0][0]]
                for j, a in terms[1:]:
                    increment = increment + a * stages[j]
            else:
                so_far = xp.reshape(xp.stack(stages), (i, batch * n))
                increment = xp.reshape(self.rows[i] @ so_far, (batch, n))
            argument = y + column * increment
            if self.fsal and i == s - 1:
                y1 = argument
            stages.append(fun(times[i], argument))
        stacked = xp.stack(stages)
        if y1 is None:
            y1 = y + column * xp.reshape(self.weights @ xp.reshape(stacked, (s, batch * n)), (batch, n))
        return y1, stacked

    def read(self, xp: Any, stages: Any, column: Any) -> Any:
        """The readout rows applied to a step's stages, each times ``h``: (r, B, n).

        Rows ``:n_error_rows`` are the error estimates, the rest the
        interpolant's coefficients ``C_j`` (``y(t + theta h) = y + sum theta^j C_j``).
        """
        s, batch, n = stages.shape
        rows = xp.reshape(self.readout @ xp.reshape(stages, (s, batch * n)), (-1, batch, n))
        return column * rows

    def error_ratios(self, xp: Any, y: Any, y1: Any, errors: Any, atol: Any, rtol: Any, norm: Any) -> Any:
        """Each sample's error ratio, shape (B,): ``norm(error / (atol + rtol max(|y|, |y1|)))``.

        ``errors`` are the first :attr:`n_error_rows` rows of :meth:`read`.
        """
        y, y1, errors = detached(y), detached(y1), detached(errors)
        scale = atol + rtol * xp.maximum(xp.abs(y), xp.abs(y1))
        if self.n_error_rows == 1:
            return norm(errors[0] / scale)
        # DOP853's combined estimate, as ExplicitRungeKutta.error_ratio (the
        # |h| there is in both rows here: |h| e5^2 / sqrt(e5^2 + 0.01 e3^2)).
        error5 = norm(errors[0] / scale)
        error3 = norm(errors[1] / scale)
        denominator = xp.sqrt(error5 * error5 + 0.01 * error3 * error3)
        zero = denominator == 0.0
        return xp.where(zero, 0.0, error5 * error5 / xp.where(zero, 1.0, denominator))

    def interpolant(self, xp: Any, y: Any, y1: Any, f1: Any, stages: Any, column: Any, readout: Any) -> Any:
        """The step's polynomial coefficients (d, B, n): ``y(t + theta h) = y + sum_j theta^j C_j``."""
        if self.has_interpolant:
            return readout[self.n_error_rows :]
        return hermite_coefficients(xp, y, y1, stages[0], f1, column)


def _rms_rows(xp: Any) -> Callable[[Any], Any]:
    def rms(scaled: Any) -> Any:
        return xp.sqrt(xp.vecdot(scaled, scaled) * (1.0 / scaled.shape[1]))

    return rms


class _Problem(NamedTuple):
    """What every step of one per-sample solve shares (the constants of :func:`per_sample_step`)."""

    xp: Any
    fun: PerSampleFunction
    stepper: PerSampleRungeKutta
    controller: PIDController | None
    times: Any  # (B, m)
    output_index: Any  # (1, m) integers
    t_end: Any  # (B,)
    infinity: Any  # (B,) of inf, for nextafter
    zero: Any  # constants as arrays: a scalar in where() costs a conversion every step
    one: Any
    success: Any
    underflow: Any
    non_finite: Any
    paused: Any
    rtol: Any
    atol: Any
    norm: Any
    adaptive: bool
    step_sizes: Any  # (B,); inf: step from landing to landing (the grid of t)
    max_step: float
    min_step: float
    forced_floor: bool  # accept_at_min_step with a min_step
    lands_on_outputs: bool
    snaps_to_outputs: bool
    counts_final_f: bool
    m: int
    events: tuple[Callable[[Any, Any], Any], ...] = ()
    time_sign: float = 1.0  # the real time is time_sign * t (a backward solve runs in tau = -t)
    state_shape: tuple[int, ...] = ()


class _Carry(NamedTuple):
    """The per-sample state from step to step: arrays only."""

    t: Any
    h: Any
    y: Any
    f: Any
    ys: Any  # (B, m, n)
    code: Any
    next_output: Any
    n_steps: Any
    n_accepted: Any
    n_final_f: Any  # non-FSAL methods: the evaluations of f(t1, y1) that count
    n_forced: Any  # steps accepted at min_step whatever their error (accept_at_min_step)
    control: ControllerState | None
    last_ratio: Any  # the last attempted step's error ratio (adaptive)
    # Events: g at the state (E, B), and the last accepted step (start, size, state, interpolant).
    g: Any = None
    step_start: Any = None
    step_size: Any = None
    step_state: Any = None
    step_coefficients: Any = None


def per_sample_step(problem: _Problem, carry: _Carry) -> _Carry:
    """One attempted step of every running sample: a pure function of arrays (nothing read on the host).

    Time runs forward here (a backward solve runs in reversed time,
    ``tau = -t``), so every step size is positive. A sample that
    is not running steps by zero (its stages are ``f`` at its own, finite
    state, so no inf or nan reaches a gradient through the masks) and keeps
    everything it had. Every operation here is paid by every step, so the
    count is kept low (the statistics that follow from others are derived
    at the end).

    Parameters
    ----------
    problem : named tuple
        ``PerSampleRun.problem``: what every step of the solve shares.
    carry : named tuple
        ``PerSampleRun.carry``: the per-sample state before the step.

    Returns
    -------
    named tuple
        The carry after the step.
    """
    xp = problem.xp
    t, y, code, next_output = carry.t, carry.y, carry.code, carry.next_output
    running = code == _RUNNING
    if problem.lands_on_outputs or problem.snaps_to_outputs:
        pending = xp.clip(next_output, None, problem.m - 1)[:, None]
        t_output = xp.take_along_axis(problem.times, pending, axis=1)[:, 0]
    if problem.adaptive:
        h_abs = carry.h
        smallest = 10.0 * (xp.nextafter(t, problem.infinity) - t)
        if problem.min_step > 0.0:
            smallest = xp.clip(smallest, problem.min_step, None)
        if problem.forced_floor:
            # Steps never shrink below min_step, and are accepted there (below),
            # unless the last rejection was not finite (the loop's rule).
            floor = (smallest == problem.min_step) & (h_abs < problem.min_step) & (carry.last_ratio < math.inf)
            h_abs = xp.where(floor, problem.min_step, h_abs)
        too_small = running & (h_abs < smallest)
        # Told apart from a non-finite failure at the end (last_ratio).
        code = xp.where(too_small, problem.underflow, code)
        running = running & ~too_small
        if problem.max_step < math.inf:
            h_abs = xp.clip(h_abs, None, problem.max_step)
    else:
        h_abs = problem.step_sizes
    target = t_output if problem.lands_on_outputs else problem.t_end
    reach = t + h_abs
    landed = reach - target > -_LANDING_SLACK * h_abs
    # The step is h_abs itself unless it lands (t_new - t would round it,
    # and the controller's next proposal with it).
    t_new = xp.where(landed, target, reach)
    h = xp.where(landed, target - t, h_abs)
    if problem.snaps_to_outputs:
        # Fixed steps end on an output time they reach up to round-off (as the loop's).
        snap = (xp.abs(t_new - t_output) <= _LANDING_SLACK * h_abs) & (next_output < problem.m)
        t_new = xp.where(snap, t_output, t_new)
        h = xp.where(snap, t_output - t, h)
    h = xp.where(running, h, problem.zero)
    stepper = problem.stepper
    column = xp.astype(h, y.dtype, copy=False)[:, None]
    y_new, stages = stepper.step(xp, problem.fun, t, y, carry.f, h, column)
    readout = None if stepper.readout is None else stepper.read(xp, stages, column)
    control = carry.control
    last_ratio = carry.last_ratio
    n_forced = carry.n_forced
    if problem.adaptive:
        # An adaptive method has error rows, and its solve a controller and its state.
        errors = cast(Any, readout)[: stepper.n_error_rows]
        ratio = stepper.error_ratios(xp, y, y_new, errors, problem.atol, problem.rtol, problem.norm)
        controller = cast(PIDController, problem.controller)
        accepted, h_next, control = controller.adapt_per_sample(xp, h, ratio, cast(ControllerState, control), running)
        if problem.forced_floor:
            forced = running & ~accepted & (h_abs <= problem.min_step) & (ratio < math.inf)
            accepted = accepted | forced
            n_forced = n_forced + xp.astype(forced, n_forced.dtype)
        last_ratio = xp.where(running, ratio, last_ratio)
    else:
        # Fixed steps: a state gone inf or nan ends that sample where it was finite.
        finite = xp.all(xp.isfinite(detached(y_new)), axis=1)
        code = xp.where(running & ~finite, problem.non_finite, code)
        accepted = running & finite
        h_next = carry.h
    finished = accepted & landed
    if problem.lands_on_outputs:
        finished = finished & (target == problem.t_end)
    f_new = stages[-1] if stepper.fsal else problem.fun(t_new, y_new)
    keep = accepted[:, None]
    # The step's interpolant (d, B, n), for the outputs inside it and the events' location.
    coefficients = None
    if problem.events or not problem.lands_on_outputs:
        coefficients = stepper.interpolant(xp, y, y_new, f_new, stages, column, readout)
    event_fields: dict[str, Any] = {}
    if problem.events:
        # A possible event: g changed sign over the step or is zero at its start (a superset of
        # what EventTracker fires on). The sample pauses; the host locates it at the next read.
        real_times = t_new if problem.time_sign > 0 else -t_new
        state = xp.reshape(y_new, (y_new.shape[0], *problem.state_shape))
        g_new = xp.stack([xp.reshape(xp.asarray(g(real_times, state)), (-1,)) for g in problem.events])
        g_old = carry.g
        changed = (g_old == 0) | ((g_old > 0) != (g_new > 0)) | ((g_old < 0) != (g_new < 0))
        flagged = accepted & xp.any(changed, axis=0)
        event_fields = {
            "g": xp.where(accepted[None, :], g_new, g_old),
            "step_start": xp.where(accepted, t, carry.step_start),
            "step_size": xp.where(accepted, h, carry.step_size),
            "step_state": xp.where(keep, y, carry.step_state),
            "step_coefficients": xp.where(
                accepted[:, None, None], xp.permute_dims(coefficients, (1, 0, 2)), carry.step_coefficients
            ),
        }
    ys = carry.ys
    interior = None
    if problem.lands_on_outputs:
        hit = accepted & landed
        put = hit[:, None] & (problem.output_index == next_output[:, None])
        ys = xp.where(put[:, :, None], y_new[:, None, :], ys)
        next_output = next_output + xp.astype(hit, next_output.dtype)
    else:
        times = problem.times
        offsets = times - t[:, None]
        at_end = times == t_new[:, None]
        inside = keep & (offsets > 0.0) & (times <= t_new[:, None])
        theta = xp.astype(offsets / xp.where(running, h, problem.one)[:, None], y.dtype, copy=False)
        # y + sum_j theta^j C_j for every output time of every sample, one
        # batched product (B, m, d) @ (B, d, n); an output at the step's end is y_new itself.
        coefficients = cast(Any, coefficients)
        degree = coefficients.shape[0]
        powers = xp.cumulative_prod(xp.broadcast_to(theta[:, :, None], (*theta.shape, degree)), axis=2)
        values = y[:, None, :] + powers @ xp.permute_dims(coefficients, (1, 0, 2))
        values = xp.where(at_end[:, :, None], y_new[:, None, :], values)
        ys = xp.where(inside[:, :, None], values, ys)
        next_output = next_output + xp.sum(xp.astype(inside, next_output.dtype), axis=1)
        if problem.counts_final_f:
            interior = inside & ~at_end
    n_final_f = carry.n_final_f
    if not stepper.fsal:
        # The loop evaluates f(t1, y1) after an accepted step unless the solve
        # ends there (and then only for the Hermite interpolant of outputs inside the step).
        counted = accepted & ~finished
        if interior is not None:
            counted = counted | (finished & xp.any(interior, axis=1))
        n_final_f = n_final_f + xp.astype(counted, n_final_f.dtype)
    if problem.events:
        # A paused sample keeps its step size for when it resumes (a stepping-by-zero proposes zero).
        h_next = xp.where(running, h_next, carry.h)
    return _Carry(
        t=xp.where(accepted, t_new, t),
        h=h_next,
        y=xp.where(keep, y_new, y),
        f=xp.where(keep, f_new, carry.f),
        ys=ys,
        code=xp.where(finished, problem.success, code)
        if not problem.events
        else xp.where(flagged, problem.paused, xp.where(finished, problem.success, code)),
        next_output=next_output,
        n_steps=carry.n_steps + xp.astype(running, carry.n_steps.dtype),
        n_accepted=carry.n_accepted + xp.astype(accepted, carry.n_steps.dtype),
        n_final_f=n_final_f,
        n_forced=n_forced,
        control=control,
        last_ratio=last_ratio,
        **event_fields,
    )


class _ReversedTime:
    """``f`` in reversed time, ``tau = -t``: ``dy/dtau = -f(-tau, y)``.

    A backward solve runs forward in ``tau``, so the per-sample step sees
    positive steps only (fewer operations a step). Negation is exact in
    floating point, so every stage, step and state is the one the backward
    solve would compute.
    """

    __slots__ = ("f",)

    def __init__(self, f: PerSampleFunction) -> None:
        self.f = f

    def __call__(self, tau: Any, y: Any) -> Any:
        return -self.f(-tau, y)


def _planned_fixed_steps(times: np.ndarray, settings: Settings, lands_on_outputs: bool) -> int:
    """How many steps the longest sample takes with fixed steps: known before the solve, so it reads nothing.

    A step lands on its target once it would end within the landing slack of
    it: step ``k`` of an interval of length ``d`` lands once ``k > d / h - slack``.
    """
    if settings.gridded:
        return int(times.shape[1]) - 1
    step = float(settings.step_size)  # type: ignore[arg-type]
    lengths = np.abs(np.diff(times, axis=1)) if lands_on_outputs else np.abs(times[:, -1:] - times[:, :1])
    counts = np.floor(lengths / step - _LANDING_SLACK) + 1
    return int(np.max(np.sum(counts, axis=1)))


def integrate_per_sample(
    f: PerSampleFunction,
    y0: Any,
    times: np.ndarray,
    settings: Settings,
    *,
    shape: tuple[int, ...] | None = None,
    f0: Any = None,
    sync_every: int = DEFAULT_SYNC_EVERY,
    compile_step: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    namespace: Any = None,
    compact: bool = False,
    events: Any = (),
) -> Solution:
    """Integrate ``B`` independent systems ``dy_b/dt = f(t, y)_b``, each with its own steps.

    The loop of the per-sample mode (``ode_core.solve(..., batch_dims=k)``;
    ode-adjoint's ``solve(..., batch_dims=k)``). It trusts its arguments.

    Parameters
    ----------
    f : callable
        ``f(t, y) -> dy/dt`` with ``t`` an array of shape (B,) (float64, the
        state's namespace and device) and ``y`` of shape (B, n); row ``b``
        of the result may depend on row ``b`` of ``y`` and ``t[b]`` only.
    y0 : array, shape (B, n)
    times : ndarray of float64, shape (B, m), m >= 2
        Each sample's output times, strictly monotonic, all in one direction.
    settings : Settings
        An explicit method; ``rtol``/``atol`` scalars or of shape (n,),
        shared by the samples; ``norm``, if given, maps scaled errors
        (B, n) to (B,).
    shape : tuple of int, optional
        One sample's state shape, for ``ys`` and ``y_final``; default (n,).
    f0 : array, shape (B, n), optional
        ``f(times[:, 0], y0)`` when the caller has it.
    sync_every : int
        Adaptive steps between the host's reads of whether every sample is
        done (the only reads inside the solve). Larger: fewer waits on an
        accelerator, up to ``sync_every - 1`` wasted steps at the end.
    compile_step : callable, optional
        Applied once to the step function before the solve, e.g.
        ``functools.partial(torch.compile, fullgraph=True)``.
    namespace : array namespace, optional
        What the loop computes with; default array_api_compat's for ``y0``.
        A library may pass one of its own with the same meaning and less
        overhead per call (ode-adjoint does for torch tensors).
    compact : bool
        At the reads between blocks, take finished samples out of the batch
        once a quarter of its rows are done, so that ``f`` is evaluated on
        the running samples only. ``f`` must then work on any subset of the
        rows, in order (no per-sample data of its own: carry per-sample
        parameters in the state, with zero derivative); so must the events'
        functions.
    events : sequence of callables
        ``g(t, y) -> (B,)`` on the batch (``t`` (B,), ``y`` (B, *shape)),
        with scipy's ``terminal`` and ``direction``: each sample's events are
        found by an event tracker of its own (``ode_core._events``), on
        its own steps (the joint loop's rules), at the read after the step
        (a sample with a possible event waits there); a terminal one stops
        that sample (``Status.EVENT``, outputs past it NaN).

    Returns
    -------
    Solution
        ``ts`` (B, m), ``ys`` (m, B, *shape) (NaN at outputs a failed sample
        did not reach), ``t_final`` (B,), ``y_final`` (B, *shape),
        ``sample_status`` (one :class:`Status` per sample), ``stats`` with
        arrays (B,) of integers, and ``status``: ``SUCCESS`` when every
        sample succeeded, else the first failed sample's, its message
        naming how many failed.
    """
    run = PerSampleRun(f, y0, times, settings, shape=shape, f0=f0, namespace=namespace, compact=compact, events=events)
    step = per_sample_step if compile_step is None else compile_step(per_sample_step)
    return run.run(step, sync_every)


class PerSampleRun:
    """One per-sample solve, step by step: the state between steps, for callers that drive the steps themselves.

    :func:`integrate_per_sample` is ``PerSampleRun(...).run(step, sync_every)``.
    Driving it by hand is how a whole block of steps is captured, e.g. in
    one CUDA graph: ``run.carry = step(run.problem, run.carry)`` any number
    of times reads nothing on the host; :meth:`running` reads whether any
    sample is still going, :meth:`solution` ends the solve.

    Parameters
    ----------
    f, y0, times, settings, shape, f0, namespace, compact, events
        As :func:`integrate_per_sample`.

    Attributes
    ----------
    problem
        What every step shares (a named tuple of arrays and settings).
    carry
        The per-sample state (a named tuple of arrays), the argument and
        the result of :func:`per_sample_step`.
    steps : int
        Steps taken so far (by :meth:`run`; a caller driving the steps
        counts its own).
    """

    def __init__(
        self,
        f: PerSampleFunction,
        y0: Any,
        times: np.ndarray,
        settings: Settings,
        *,
        shape: tuple[int, ...] | None = None,
        f0: Any = None,
        namespace: Any = None,
        compact: bool = False,
        events: Any = (),
    ) -> None:
        xp = _namespace(y0) if namespace is None else namespace
        batch, n = y0.shape
        shape = (n,) if shape is None else tuple(shape)
        m = times.shape[1]
        device = device_of(y0)
        tableau = settings.method
        adaptive, gridded = settings.adaptive, settings.gridded
        # The direction of the samples that move (one with a zero span says none).
        spans = times[:, -1] - times[:, 0]
        moving = spans[spans != 0]
        direction = -1.0 if moving.size and moving[0] < 0 else 1.0
        stepper = PerSampleRungeKutta.get(tableau, xp, y0.dtype, device)  # type: ignore[arg-type]
        # Outputs are stepped onto where the loop steps onto them (the grid of t;
        # ButcherTableau.steps_onto_outputs), and where the interpolant needs
        # extra stages (PerSampleRungeKutta says why); else interpolated.
        lands_on_outputs = (
            gridded or (adaptive and tableau.steps_onto_outputs) or bool(cast(ButcherTableau, tableau).c_extra)
        )
        times_x = xp.asarray(np.array(times, dtype=np.float64), dtype=xp.float64, device=device)
        if f0 is None:
            f0 = f(times_x[:, 0], y0)
        fun = f
        if direction < 0:
            fun, f0 = _ReversedTime(f), -f0
        forward_times = times_x if direction > 0 else -times_x
        t0 = forward_times[:, 0]
        t_end = forward_times[:, -1]
        int_zeros = xp.zeros((batch,), dtype=xp.int64, device=device)
        start_evaluations = 1
        norm = settings.norm or _rms_rows(xp)
        controller = None
        control = None
        if adaptive:
            controller = settings.controller or IController()
            if settings.first_step is not None:
                h_abs = xp.full((batch,), min(settings.first_step, settings.max_step), dtype=xp.float64, device=device)
            else:
                h_abs = select_initial_steps(
                    xp,
                    fun,
                    t0,
                    y0,
                    f0,
                    1.0,
                    stepper.error_order,
                    settings.rtol,
                    settings.atol,
                    norm,
                    settings.max_step,
                    xp.abs(t_end - t0),
                )
                h_abs = xp.astype(detached(h_abs), xp.float64)
                start_evaluations += 1
            control = controller.init_per_sample(xp, stepper.error_order, h_abs)
        else:
            h_abs = xp.zeros((batch,), dtype=xp.float64, device=device)
        nan = xp.full((batch, m - 1, n), math.nan, dtype=y0.dtype, device=device)
        problem = _Problem(
            xp=xp,
            fun=fun,
            stepper=stepper,
            controller=controller,
            times=forward_times,
            output_index=xp.reshape(xp.arange(m, device=device), (1, m)),
            t_end=t_end,
            infinity=xp.full((batch,), math.inf, dtype=xp.float64, device=device),
            zero=xp.asarray(0.0, dtype=xp.float64, device=device),
            one=xp.asarray(1.0, dtype=xp.float64, device=device),
            success=xp.asarray(_SUCCESS, dtype=xp.int64, device=device),
            underflow=xp.asarray(_UNDERFLOW, dtype=xp.int64, device=device),
            non_finite=xp.asarray(_NON_FINITE, dtype=xp.int64, device=device),
            paused=xp.asarray(_PAUSED, dtype=xp.int64, device=device),
            rtol=settings.rtol,
            atol=settings.atol,
            norm=norm,
            adaptive=adaptive,
            step_sizes=xp.full(
                (batch,), math.inf if gridded else float(settings.step_size or 0.0), dtype=xp.float64, device=device
            ),
            max_step=settings.max_step,
            min_step=settings.min_step,
            forced_floor=settings.accept_at_min_step and settings.min_step > 0.0,
            lands_on_outputs=lands_on_outputs,
            snaps_to_outputs=not adaptive and not gridded,
            counts_final_f=not stepper.has_interpolant,
            m=m,
            events=tuple(events),
            time_sign=direction,
            state_shape=shape,
        )
        # Every array of the carry its own (no view of the caller's, none shared
        # between fields): a caller may write into them, as a CUDA graph's replay does.
        # (x * 1 copies, and keeps autograd's history.)
        # A sample whose span is zero (every time its first: the backward solves
        # of the adjoint pad a sample's intervals so) is done before its first
        # step, its outputs its initial state; it never steps, so its step size
        # (none to choose over no span) is never read.
        empty = t_end == t0
        ys = xp.concat((y0[:, None, :], nan), axis=1)
        ys = xp.where(empty[:, None, None], y0[:, None, :], ys)
        carry = _Carry(
            t=t0 * 1,
            h=h_abs * 1,
            y=y0 * 1,
            f=f0 * 1,
            ys=ys,
            code=xp.where(empty, xp.asarray(_SUCCESS, dtype=xp.int64, device=device), int_zeros),
            next_output=xp.where(empty, m, int_zeros + 1),
            n_steps=int_zeros * 1,
            n_accepted=int_zeros * 1,
            n_final_f=int_zeros * 1,
            n_forced=int_zeros * 1,
            control=control,
            last_ratio=xp.zeros((batch,), dtype=y0.dtype, device=device),
        )
        if events:
            state = xp.reshape(y0, (batch, *shape))
            carry = carry._replace(
                g=xp.stack(
                    [_event_values(xp, g, index, times_x[:, 0], state, batch) for index, g in enumerate(events)]
                ),
                step_start=t0 * 1,
                step_size=xp.zeros((batch,), dtype=xp.float64, device=device),
                step_state=y0 * 1,
                step_coefficients=xp.zeros((batch, _degree(stepper), n), dtype=y0.dtype, device=device),
            )
        # One EventTracker per sample (by its row in y0), made when it first pauses (EventTracker holds the rules).
        self.events = tuple(events)
        self.trackers: dict[int, EventTracker] = {}
        self.first_states = y0
        self.xp, self.settings, self.times, self.shape = xp, settings, times_x, shape
        self.direction, self.start_evaluations = direction, start_evaluations
        self.problem, self.carry = problem, carry
        self.steps = 0
        # Compaction: the original rows of the carry's rows, and the finished rows set aside.
        self.compact = compact
        self.rows = np.arange(batch)
        self.parked: list[tuple[np.ndarray, _Carry]] = []
        # Fixed steps: the count is known, so the solve reads nothing until the end.
        self.planned = (
            None if adaptive else min(_planned_fixed_steps(times, settings, lands_on_outputs), settings.max_steps)
        )

    def running(self) -> bool:
        """Whether any sample is still stepping: the one read of the host (a synchronisation on a device).

        With events, the read is of every sample's code, and the samples
        paused at a possible event are resolved first (:meth:`resolve_events`).

        Returns
        -------
        bool
        """
        if not self.events:
            return bool(self.xp.any(self.carry.code == _RUNNING))
        return bool(self._running_rows().any())

    def _running_rows(self) -> np.ndarray:
        """Which rows of the carry still step (one read), the paused ones resolved first."""
        codes = _to_host(self.carry.code)
        if self.events and (codes == _PAUSED).any():
            self.resolve_events(np.flatnonzero(codes == _PAUSED))
            codes = _to_host(self.carry.code)
        return np.asarray(codes == _RUNNING)

    def run(self, step: Callable[[Any, Any], Any], sync_every: int) -> Solution:
        """Step until every sample is done, reading once every ``sync_every`` steps (fixed steps: once).

        Parameters
        ----------
        step : callable
            :func:`per_sample_step`, or a compiled version of it.
        sync_every : int
            Adaptive steps between two reads of :meth:`running`.

        Returns
        -------
        Solution
            :meth:`solution`.
        """
        max_steps = self.settings.max_steps
        block = sync_every if self.planned is None else self.planned
        while True:
            count = min(block, max_steps - self.steps)
            for _ in range(count):
                self.carry = step(self.problem, self.carry)
            self.steps += count
            if self.compact:
                # The same one read, of every sample's code: the finished ones leave the batch.
                still = self._running_rows()
                if not still.any() or self.steps >= max_steps:
                    break
                if still.sum() <= _COMPACTION * still.size:
                    self.set_aside(~still)
            elif not self.running() or self.steps >= max_steps:
                break
            block = sync_every
        return self.solution()

    def resolve_events(self, rows: np.ndarray) -> None:
        """Locate the possible events of the paused samples ``rows`` with each sample's EventTracker on its
        last step: a terminal one stops the sample there, else it steps on.

        Parameters
        ----------
        rows : ndarray of int
            Rows of the carry whose code is paused.
        """
        xp, carry, problem = self.xp, self.carry, self.problem
        sign = problem.time_sign
        starts, sizes = _to_host(carry.step_start), _to_host(carry.step_size)
        ends, t_end = _to_host(carry.t), _to_host(problem.t_end)
        code, t, y, ys = carry.code, carry.t, carry.y, carry.ys
        device = device_of(y)
        for row in rows:
            b = int(row)
            # The sample's own row in y0 (its row here, unless finished samples left the batch).
            sample = int(self.rows[b])
            tracker = self.trackers.get(sample)
            if tracker is None:
                functions = [_one_sample_event(xp, g, b, carry, self.shape, sign) for g in self.events]
                t0 = float(sign * _to_host(problem.times[:, 0])[b])
                tracker = EventTracker(functions, xp, self.shape, t0, self.first_states[sample], sign)
                self.trackers[sample] = tracker
            t_old = float(sign * starts[b])
            tracker.restart(t_old, carry.step_state[b])
            interpolant = self.last_step_interpolant(carry, b, starts[b], sizes[b])
            stop = tracker.step(t_old, float(sign * ends[b]), y[b], interpolant)
            one = xp.asarray(np.arange(len(ends)) == b, device=device)
            if stop is None:
                resumed = _SUCCESS if ends[b] == t_end[b] else _RUNNING
                code = xp.where(one, xp.asarray(resumed, dtype=code.dtype, device=device), code)
                continue
            t_stop, y_stop = stop
            tau = sign * t_stop
            code = xp.where(one, xp.asarray(_EVENT, dtype=code.dtype, device=device), code)
            t = xp.where(one, xp.asarray(tau, dtype=t.dtype, device=device), t)
            y = xp.where(one[:, None], y_stop[None, :], y)
            past = one[:, None] & (problem.times > tau)
            ys = xp.where(past[:, :, None], xp.asarray(math.nan, dtype=ys.dtype, device=device), ys)
        self.carry = carry._replace(code=code, t=t, y=y, ys=ys)

    def last_step_interpolant(
        self, carry: _Carry, b: int, start: float | None = None, size: float | None = None
    ) -> Callable[[float], Any]:
        """Sample ``b``'s state on the last step it took before ``carry`` (a solve with events), as a function
        of the real time: what its event tracker locates events on, and the events' states are.

        Parameters
        ----------
        carry : named tuple
            A carry of this solve (its fields ``step_state``, ``step_coefficients``, ``step_start`` and
            ``step_size`` hold each sample's last accepted step; differentiable when they are).
        b : int
            The sample's row.
        start, size : float, optional
            That step's start and size in the loop's time, when read already (else read here).

        Returns
        -------
        callable
            ``t -> y(t)``, shape (n,).
        """
        sign = self.problem.time_sign
        start = float(carry.step_start[b]) if start is None else float(start)
        size = float(carry.step_size[b]) if size is None else float(size)
        return _step_interpolant(self.xp, sign * start, sign * size, carry.step_state[b], carry.step_coefficients[b])

    def set_aside(self, finished: np.ndarray) -> None:
        """Take the rows ``finished`` (a host mask over the carry's rows) out of the batch: later steps
        evaluate ``f`` on the others only; :meth:`solution` puts every sample back in its place.

        Parameters
        ----------
        finished : ndarray of bool, shape (rows,)
        """
        xp, device = self.xp, device_of(self.carry.y)
        keep = xp.asarray(np.flatnonzero(~finished), device=device)
        done = xp.asarray(np.flatnonzero(finished), device=device)
        self.parked.append((self.rows[finished], _rows(xp, self.carry, done, _RESULT_FIELDS)))
        self.carry = _rows(xp, self.carry, keep)
        self.rows = self.rows[~finished]
        problem = self.problem
        self.problem = problem._replace(
            **{name: xp.take(getattr(problem, name), keep, axis=0) for name in _PER_SAMPLE_CONSTANTS}
        )

    def solution(self) -> Solution:
        """End the solve: statuses and statistics, read once.

        Returns
        -------
        Solution
            As :func:`integrate_per_sample`'s; a sample still running is
            reported as having reached ``max_steps``.
        """
        xp, carry, stepper = self.xp, self.carry, self.problem.stepper
        if self.parked:
            pieces = [*self.parked, (self.rows, carry)]
            order = np.argsort(np.concatenate([rows for rows, _ in pieces]))
            back = xp.asarray(order, device=device_of(carry.y))
            carry = carry._replace(
                **{
                    name: xp.take(xp.concat([getattr(part, name) for _, part in pieces], axis=0), back, axis=0)
                    for name in _RESULT_FIELDS
                }
            )
        code = xp.where(carry.code == _RUNNING, _MAX_STEPS, carry.code)
        # Underflows after a non-finite rejection are non-finite failures (the loop's rule).
        code = xp.where((code == _UNDERFLOW) & ~(carry.last_ratio < math.inf), _NON_FINITE, code)
        nfev = self.start_evaluations + (stepper.n_stages - 1) * carry.n_steps + carry.n_final_f
        carry = carry._replace(code=code, t=carry.t if self.direction > 0 else -carry.t)
        solution = _solution(xp, carry, self.times, self.shape, self.settings.max_steps, self.problem.adaptive, nfev)
        if not self.events:
            return solution
        # Per event function, per sample, the times (k,) and states (k, *shape) found.
        empty_t = xp.zeros((0,), dtype=xp.float64, device=device_of(carry.y))
        empty_y = xp.zeros((0, *self.shape), dtype=carry.y.dtype, device=device_of(carry.y))
        batch = carry.y.shape[0]
        t_events, y_events = [], []
        for e in range(len(self.events)):
            t_events.append([self.trackers[b].t_events[e] if b in self.trackers else empty_t for b in range(batch)])
            y_events.append([self.trackers[b].y_events[e] if b in self.trackers else empty_y for b in range(batch)])
        return dataclasses.replace(solution, t_events=t_events, y_events=y_events)


def _event_values(xp: Any, g: Callable[[Any, Any], Any], index: int, t: Any, state: Any, batch: int) -> Any:
    """``g(t, y)`` for the whole batch, checked to be one value per sample (naming ``events[index]``)."""
    value = xp.asarray(g(t, state))
    if tuple(value.shape) not in ((batch,), (batch, 1)):
        raise ValueError(
            f"events[{index}]: returned shape {tuple(value.shape)}, expected one value per sample, ({batch},)"
        )
    return xp.reshape(value, (batch,))


def _one_sample_event(
    xp: Any, g: Callable[[Any, Any], Any], b: int, carry: _Carry, shape: tuple[int, ...], sign: float
) -> Any:
    """Event function ``g`` of sample ``b`` alone, for its EventTracker: ``g`` on the batch with row ``b``
    replaced (so ``g`` may hold per-sample data), the value of row ``b``; ``terminal`` and ``direction``
    as ``g``'s."""
    rows = carry.y.shape[0]
    one = xp.asarray(np.arange(rows) == b, device=device_of(carry.y))
    base_t = carry.t if sign > 0 else -carry.t
    base_y = xp.reshape(carry.y, (rows, *shape))
    mask = xp.reshape(one, (rows,) + (1,) * len(shape))

    def sample(t: float, y: Any) -> Any:
        times = xp.where(one, xp.asarray(t, dtype=base_t.dtype, device=device_of(base_t)), base_t)
        return xp.reshape(xp.asarray(g(times, xp.where(mask, y[None, ...], base_y))), (-1,))[b]

    for attribute in ("terminal", "direction"):
        if hasattr(g, attribute):
            setattr(sample, attribute, getattr(g, attribute))
    return sample


def _degree(stepper: PerSampleRungeKutta) -> int:
    """Degree in theta of a step's interpolant (cubic Hermite without a continuous extension)."""
    if stepper.has_interpolant:
        return len(stepper.tableau.dense[0])  # type: ignore[index]
    return 3


# Compaction: once at most this fraction of the rows still runs, the finished rows leave the batch.
_COMPACTION = 0.75
# What a finished row keeps for the solution, and the problem's arrays with a row per sample.
_RESULT_FIELDS = ("t", "y", "ys", "code", "n_steps", "n_accepted", "n_final_f", "n_forced", "last_ratio")
_PER_SAMPLE_CONSTANTS = ("times", "t_end", "infinity", "step_sizes")


def _rows(xp: Any, carry: _Carry, index: Any, fields: tuple[str, ...] | None = None) -> _Carry:
    """The carry's rows ``index`` (every field, or those of ``fields``; the others kept as they are)."""
    names = fields or tuple(name for name in _Carry._fields if name != "control" and getattr(carry, name) is not None)
    # The events' values g are (E, B): a sample is a column there.
    taken = carry._replace(
        **{name: xp.take(getattr(carry, name), index, axis=1 if name == "g" else 0) for name in names}
    )
    control = carry.control
    if fields is None and control is not None:
        exponents, *arrays = control
        taken = taken._replace(control=ControllerState(exponents, *(xp.take(a, index, axis=0) for a in arrays)))
    return taken


def _solution(
    xp: Any, carry: _Carry, times: Any, shape: tuple[int, ...], max_steps: int, adaptive: bool, nfev: Any
) -> Solution:
    """The batch's :class:`Solution`: per-sample statuses and statistics read once."""
    codes = [int(c) for c in _to_host(carry.code)]
    statuses = tuple(_STATUSES[c] for c in codes)
    failed = [i for i, s in enumerate(statuses) if s not in (Status.SUCCESS, Status.EVENT)]
    stopped = statuses.count(Status.EVENT)
    if not failed and stopped:
        status = Status.EVENT
        message = f"{stopped} of {len(codes)} samples stopped at a terminal event, the others at their last output time"
    elif not failed:
        status, message = Status.SUCCESS, f"every one of the {len(codes)} samples reached its last output time"
        if len(codes) == 1:  # one problem on the device (ode-adjoint's device_control): the joint loop's words
            message = "the solver reached the last output time"
    else:
        first = failed[0]
        status = statuses[first]
        t_first = float(_to_host(carry.t)[first])
        reason = {
            Status.STEP_SIZE_UNDERFLOW: "its step size fell below the smallest allowed",
            Status.NON_FINITE: (
                "f or the state became inf or nan and shrinking the step did not help"
                if adaptive
                else "the state became inf or nan in the fixed step from there"
            ),
            Status.MAX_STEPS_REACHED: f"max_steps={max_steps} steps attempted",
        }[status]
        message = f"{len(failed)} of {len(codes)} samples failed; the first, sample {first}, at t={t_first!r}: {reason}"
        if len(codes) == 1:
            message = f"stopped at t={t_first!r}: {reason}"
    batch = len(codes)
    ys = xp.permute_dims(carry.ys, (1, 0, 2))
    return Solution(
        ts=times,
        ys=xp.reshape(ys, (ys.shape[0], batch, *shape)),
        status=status,
        message=message,
        stats=Stats(
            nfev=nfev,
            n_steps=carry.n_steps,
            n_accepted=carry.n_accepted,
            n_rejected=carry.n_steps - carry.n_accepted,
            n_forced=carry.n_forced,
        ),
        dense=None,
        t_final=carry.t,
        y_final=xp.reshape(carry.y, (batch, *shape)),
        step_proposal=math.nan,
        sample_status=statuses,
    )


def _to_host(array: Any) -> np.ndarray:
    """An array's values as NumPy (from any device)."""
    to = getattr(array, "cpu", None)
    return np.asarray(to() if callable(to) else array)


class BatchShapedFunction:
    """The user's ``f`` on (*batch,) times and (*batch, *state) states, as the per-sample loop calls it:
    on (B,) float64 times and (B, n) states, returning (B, n).

    The one wrapper of ``f`` for the per-sample mode (ode-core's ``solve`` and
    ode-adjoint's, with its torch namespace).

    Parameters
    ----------
    f : callable
    batch_shape, state_shape : tuple of int
    xp : array namespace
    state_dtype, working : dtype
        The user's dtype, and the one the loop computes in (float32 for half
        precision states): ``f`` sees its states in ``state_dtype``.
    time_dtype : dtype, optional
        The dtype ``f`` sees its times in; default the loop's float64.
    """

    __slots__ = ("batch", "batch_shape", "f", "n", "shape", "state_dtype", "time_dtype", "working", "xp")

    def __init__(
        self,
        f: Callable[[Any, Any], Any],
        batch_shape: tuple[int, ...],
        state_shape: tuple[int, ...],
        xp: Any,
        state_dtype: Any,
        working: Any,
        time_dtype: Any = None,
    ) -> None:
        self.f = f
        self.batch_shape = batch_shape
        self.shape = (*batch_shape, *state_shape)
        self.batch = math.prod(batch_shape)
        self.n = math.prod(state_shape)
        self.xp = xp
        self.state_dtype = state_dtype
        self.working = working
        self.time_dtype = time_dtype

    def rows(self, y: Any) -> tuple[int, ...]:
        """The batch dimensions of (B, n) states: one batch dimension keeps any number of rows (compaction).

        Parameters
        ----------
        y : array, shape (B, n)

        Returns
        -------
        tuple of int
        """
        return (y.shape[0],) if len(self.batch_shape) == 1 else self.batch_shape

    def sample_times(self, t: Any, rows: tuple[int, ...] | None = None) -> Any:
        """Times (B,) as ``f`` takes them: (*batch,) in ``time_dtype``.

        Parameters
        ----------
        t : array, shape (B,)
        rows : tuple of int, optional
            The batch dimensions (:meth:`rows`); default from ``t``.

        Returns
        -------
        array, shape (*batch,)
        """
        if self.time_dtype is not None and t.dtype != self.time_dtype:
            t = self.xp.astype(t, self.time_dtype)
        if rows is None:
            rows = (t.shape[0],) if len(self.batch_shape) == 1 else self.batch_shape
        return t if len(rows) == 1 else self.xp.reshape(t, rows)

    def sample_states(self, y: Any, rows: tuple[int, ...]) -> Any:
        """States (B, n) as ``f`` takes them: (*batch, *state) in ``state_dtype``.

        Parameters
        ----------
        y : array, shape (B, n)
        rows : tuple of int
            The batch dimensions (:meth:`rows`).

        Returns
        -------
        array, shape (*rows, *state)
        """
        state = self.xp.reshape(y, (*rows, *self.shape[len(self.batch_shape) :]))
        return state if self.state_dtype == self.working else self.xp.astype(state, self.state_dtype)

    def flatten(self, value: Any) -> Any:
        """A value of ``f`` as (B, n) in the working dtype.

        Parameters
        ----------
        value : array, shape (*batch, *state)

        Returns
        -------
        array, shape (B, n)
        """
        flat = self.xp.reshape(value, (-1, self.n))
        return flat if self.state_dtype == self.working else self.xp.astype(flat, self.working)

    def __call__(self, t: Any, y: Any) -> Any:
        rows = self.rows(y)
        return self.flatten(self.f(self.sample_times(t, rows), self.sample_states(y, rows)))

    def events(self, events: Any, guard: Callable[[], Any] | None = None) -> tuple[Callable[[Any, Any], Any], ...]:
        """The user's event functions as the per-sample loop calls them: on (B,) times and (B, n) states, one
        value per sample (B,), each seeing times and states as ``f`` does.

        Parameters
        ----------
        events : callable or sequence of callables or None
        guard : callable, optional
            A context manager factory each call runs inside (ode-adjoint:
            ``torch.no_grad``; where an event is decides where to look, its
            gradient is found otherwise).

        Returns
        -------
        tuple of callable
            Empty without events.
        """
        if events is None:
            return ()
        functions = [events] if callable(events) else events
        if isinstance(functions, (str, bytes)) or not isinstance(functions, (list, tuple)):
            raise TypeError(f"events: expected a callable or a sequence of callables, got {type(events).__name__}")
        wrapped = []
        for index, g in enumerate(functions):
            if not callable(g):
                raise TypeError(f"events[{index}]: expected a callable, got {type(g).__name__}")

            def on_rows(t: Any, y: Any, g: Any = g) -> Any:
                rows = self.rows(y)
                # Detached: where an event is decides where to look, not what is differentiated.
                state = self.sample_states(detached(y), rows)
                if guard is None:
                    value = g(self.sample_times(t, rows), state)
                else:
                    with guard():
                        value = g(self.sample_times(t, rows), state)
                return self.xp.reshape(value if hasattr(value, "shape") else self.xp.asarray(value), (-1,))

            for attribute in ("terminal", "direction"):
                if hasattr(g, attribute):
                    setattr(on_rows, attribute, getattr(g, attribute))
            wrapped.append(on_rows)
        return tuple(wrapped)
