"""The integration loop: every solve, of ode-core and of ode-adjoint, runs here.

:func:`integrate` owns every decision of a solve: the landing schedule
(output times it steps onto, ``step_t``, ``jump_t`` with one-sided limits of
``f``), the step-size bounds, acceptance through the controller, FSAL reuse,
outputs, dense output, events, the statuses and their messages, and the
statistics. A :class:`~ode_core.Stepper` does the arithmetic of one step;
a controller proposes step sizes. Nothing here depends on the array library
beyond the array API, and the per-step work is plain Python on floats, so a
fast stepper (ode-adjoint's for torch tensors) keeps the loop's cost small.

Host synchronisation, for accelerators: an adaptive step reads one float,
its error ratio (the controller's decision needs it on the host); a fixed
step reads nothing, and the state's finiteness is checked once at the end
(per step only when events are tracked, whose functions are read anyway,
and on NumPy arrays).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

from array_api_compat import array_namespace, is_numpy_namespace
from array_api_compat import device as device_of

from ._adams import AdamsMethod, AdamsStepper
from ._auto import AutoMethod, AutoStepper
from ._bdf import BDFMethod, BDFStepper
from ._collocation import FullyImplicitRungeKutta
from ._controllers import IController
from ._dense import DenseOutput, evaluate_polynomial
from ._differences import GroupedDifferences
from ._events import EventTracker
from ._explicit_rk import explicit_stepper
from ._implicit_rk import DiagonallyImplicitRungeKutta, NewtonStepper
from ._norms import flat_rms_norm
from ._progress import ProgressMeter
from ._radau import RadauIIA
from ._settings import Settings
from ._solution import Solution, Stats, Status
from ._stepper import Stepper, StepperBase, provided_stepper
from .validation import is_finite

__all__ = ["AcceptedStep", "StepObserver", "integrate", "make_stepper"]

RightHandSide = Callable[[float, Any], Any]

# A step that would leave less than this fraction of itself before a time the
# solver must land on is stretched to land there, rather than followed by a
# sliver of a step made of round-off (e.g. ten steps of 0.1 to reach 1.0).
_LANDING_SLACK = 1e-10

# scipy's and torchdiffeq's integral controller; frozen, so one serves every solve.
_DEFAULT_CONTROLLER = IController()


class StepObserver(Protocol):
    """What :func:`integrate` tells of every step it tries, for the caller's own bookkeeping.

    torchdiffeq's ``callback_step``, ``callback_accept_step`` and
    ``callback_reject_step`` on ode-adjoint's side. The loop's decisions
    never depend on the observer; it holds no state the loop reads.

    Attributes
    ----------
    attempt, accept, reject : callable
        ``(t, y, h) -> None``: before each step is tried, after it is
        accepted, after it is rejected (its error, or its stage equations).
    """

    def attempt(self, t: float, y: Any, h: float) -> None:
        """Before each step is tried.

        Parameters
        ----------
        t : float
            Where the step starts.
        y : array, shape (n,)
            The flat state there.
        h : float
            The step's signed size.
        """

    def accept(self, t: float, y: Any, h: float) -> None:
        """After a step is accepted, before the next is tried.

        Parameters
        ----------
        t : float
            Where the step started.
        y : array, shape (n,)
            The flat state there.
        h : float
            The step's signed size.
        """

    def reject(self, t: float, y: Any, h: float) -> None:
        """After a step is rejected, before it is retried with a smaller size.

        Parameters
        ----------
        t : float
            Where the step started.
        y : array, shape (n,)
            The flat state there.
        h : float
            The rejected size.
        """


class AcceptedStep(NamedTuple):
    """One accepted step, as ``on_step`` receives it: enough to redo it.

    Attributes
    ----------
    t : float
        Start of the step.
    t_next : float
        Its end (``t + h`` up to round-off; exactly the landing time when it
        landed on one). A terminal event may end the solve inside the step.
    h : float
        Signed size: the step's interpolant is in ``theta = (t' - t) / h``.
    y : array, shape (n,)
        The flat state at ``t``.
    t_start_eval : float or None
        Where ``f0`` was evaluated when not at ``t``: just past a jump of ``f``.
    t_end_eval : float or None
        Where the stages at ``t + h`` were evaluated when not there: just
        before a jump of ``f``.
    """

    t: float
    t_next: float
    h: float
    y: Any
    t_start_eval: float | None
    t_end_eval: float | None


def _namespace(array: Any) -> Any:
    """The array API namespace of ``array``, looked up once per array type."""
    kind = type(array)
    xp = _NAMESPACES.get(kind)
    if xp is None:
        xp = _NAMESPACES[kind] = array_namespace(array)
    return xp


_NAMESPACES: dict[type, Any] = {}


def _next_time(t: float, side: float) -> float:
    return math.nextafter(t, side * math.inf)


def make_stepper(tableau: Any, xp: Any, y0: Any, fun: RightHandSide, settings: Settings) -> Stepper:
    """The stepper one solve runs: a registered provider's for explicit
    methods on its array library (see :data:`ode_core.STEPPER_ENTRY_POINTS`),
    else ode-core's own.

    Parameters
    ----------
    tableau : ButcherTableau or AdamsMethod
    xp : array namespace
    y0 : array, shape (n,)
        The flat initial state (dtype and device of the solve).
    fun : callable
        The flat right-hand side the loop calls.
    settings : Settings
        Tolerances, norm and Jacobian, for implicit methods.

    Returns
    -------
    Stepper
    """
    n = y0.shape[0]
    if tableau.explicit and not isinstance(tableau, AdamsMethod):
        stepper = provided_stepper(tableau, xp, y0, fun)
        if stepper is not None:
            return stepper
        return explicit_stepper(tableau, xp, y0.dtype, device_of(y0), n)
    norm = settings.norm
    if norm is None:
        norm = flat_rms_norm(xp, n, y0.dtype)

    if isinstance(tableau, AdamsMethod):
        return AdamsStepper(tableau, xp, y0, fun, settings.atol, settings.rtol, norm)
    jac: Callable[[float, Any], Any] | GroupedDifferences | None = settings.jac
    if jac is None and settings.jac_sparsity is not None:
        jac = GroupedDifferences(fun, settings.jac_sparsity, float(xp.finfo(y0.dtype).eps))
    common = (xp, y0.dtype, device_of(y0), n, jac, settings.atol, settings.rtol, norm)
    if isinstance(tableau, BDFMethod):
        bdf = BDFStepper(tableau, *common)
        if settings.linear_solver == "krylov":
            bdf.use_krylov(settings.jvp, settings.differentiable_solve)
        bdf.columns = settings.columns
        return bdf
    if isinstance(tableau, AutoMethod):
        stiff = make_stepper(tableau.stiff, xp, y0, fun, settings)
        assert isinstance(stiff, BDFStepper)
        return AutoStepper(tableau, make_stepper(tableau.nonstiff, xp, y0, fun, settings), stiff, xp)
    newton: NewtonStepper
    if tableau.diagonally_implicit:
        newton = DiagonallyImplicitRungeKutta(tableau, *common, fixed_step=not settings.adaptive)
    # Coupled stages: RADAU5's split system where the tableau has its
    # structure (the adaptive radau5), the whole system for the rest.
    elif tableau.adaptive:
        newton = RadauIIA(tableau, *common, fixed_step=not settings.adaptive)
    else:
        return FullyImplicitRungeKutta(tableau, *common)
    if settings.linear_solver == "krylov":
        newton.use_krylov(settings.jvp, settings.differentiable_solve)
    newton.columns = settings.columns
    return newton


def integrate(
    f: RightHandSide,
    y0: Any,
    times: list[float],
    settings: Settings,
    *,
    f0: Any = None,
    shape: tuple[int, ...] | None = None,
    events: Any = None,
    on_step: Callable[[AcceptedStep], None] | None = None,
    observer: StepObserver | None = None,
    first_step: float | None = None,
    stepper: Stepper | None = None,
    impulses: Mapping[float, Callable[[Any], Any]] | None = None,
) -> Solution:
    """Integrate the flat system ``dy/dt = f(t, y)`` through every output time.

    The loop behind :func:`ode_core.solve` and every solve of ode-adjoint.
    It trusts its arguments: :func:`ode_core.solve` checks a user's (with
    :mod:`ode_core.validation`, which also builds ``settings``).

    Parameters
    ----------
    f : callable
        ``f(t, y) -> dy/dt`` on flat states, ``t`` a Python float. It may
        offer ``f.one_sided_time(t, side) -> float``, the time nearest ``t``
        on the side ``side`` (+1 after, -1 before) that it tells apart from
        ``t`` (where it sees time in less than float64), for the one-sided
        limits at ``jump_t``; default ``math.nextafter``.
    y0 : array, shape (n,)
        Initial state, flat, finite.
    times : list of float, length m >= 1
        Output times, strictly monotonic. A single time returns the initial
        state without evaluating ``f`` (nothing to integrate).
    settings : Settings
    f0 : array, shape (n,), optional
        ``f(times[0], y0)`` when the caller has it (counted in ``nfev``).
    shape : tuple of int, optional
        Shape of the user's state, for ``ys``, ``y_final``, the dense
        output and the event functions; default ``(n,)``.
    events : callable or sequence of callables, optional
        Event functions ``g(t, y)`` on states of ``shape``, as for
        :func:`ode_core.solve`.
    on_step : callable, optional
        ``on_step(step)`` after every accepted step, with an
        :class:`AcceptedStep` (ode-adjoint's checkpointing engine records
        the steps to replay).
    observer : StepObserver, optional
        Told of every step tried, accepted and rejected.
    first_step : float, optional
        For this solve instead of ``settings.first_step``: a solve that
        continues another starts from its ``step_proposal`` (ode-adjoint's
        backward solves, interval after interval).
    stepper : Stepper, optional
        The stepper to run, from :func:`make_stepper` for the same method,
        state and function; default a new one. Solves one after the other
        may share one (an implicit method then keeps its Jacobian across
        them); the loop closes it at the end, which leaves it usable again.
    impulses : mapping of float to callable, optional
        Jumps of the state: the solve lands on each time ``tau`` strictly
        inside the span and continues from ``impulses[tau](y)`` (flat, in
        and out), evaluating ``f`` afresh there and restarting the step-size
        control from the size it had before cutting the step to land (as a
        new solve from there with that ``first_step`` would). An output at
        ``tau`` holds the state before the jump. ode-adjoint's backward
        solve adds each output's cotangent to the adjoint state this way.

    Returns
    -------
    Solution
    """
    xp = _namespace(y0)
    n = y0.shape[0]
    shape = (n,) if shape is None else tuple(shape)
    tableau = settings.method
    # A fixed-step method without a step size steps from each landing time
    # (output times, step_t, jump_t) to the next: torchdiffeq's grid of t.
    adaptive, gridded = settings.adaptive, settings.gridded
    t0, t_end = times[0], times[-1]
    direction = 1.0 if t_end > t0 else -1.0
    rtol, atol, norm = settings.rtol, settings.atol, settings.norm
    max_step, min_step, max_steps = settings.max_step, settings.min_step, settings.max_steps
    one_sided_time = getattr(f, "one_sided_time", None) or _next_time
    if len(times) == 1 or t_end == t0:  # one time, or a span of zero length: nothing to integrate
        return _initial_state_only(xp, y0, t0, len(times), shape, settings, events, f0 is not None)

    one_sided = settings.one_sided_steps
    nfev = 1
    if one_sided:  # f0 is the limit from inside the first step; a caller's f(t0, y0) was spent too
        nfev += f0 is not None
        f0 = f(one_sided_time(t0, direction), y0)
    elif f0 is None:
        f0 = f(t0, y0)
    f_current = f0
    if stepper is None:
        stepper = make_stepper(tableau, xp, y0, f, settings)
    controller = settings.controller or getattr(stepper, "default_controller", None) or _DEFAULT_CONTROLLER

    # Output times are stepped onto or interpolated as the tableau says
    # (ButcherTableau.steps_onto_outputs holds the rule and why).
    step_times = list(settings.step_t)
    if (gridded or (adaptive and tableau.steps_onto_outputs)) and len(times) > 2:
        step_times += times[1:-1]
    # Times the solver must land on, in order; the last is t_end.
    landings = [t_end]
    impulses = impulses or {}
    if step_times or settings.jump_t or impulses:
        inside = {
            v
            for v in (*step_times, *settings.jump_t, *impulses)
            if direction * (v - t0) > 0 and direction * (t_end - v) > 0
        }
        landings = [*sorted(inside, key=lambda v: direction * v), t_end]
    jumps = set(settings.jump_t)

    tracker = None if events is None else EventTracker(events, xp, shape, t0, y0, direction)
    # Fixed steps take no decision on the state, so they never read it (on an
    # accelerator, never wait for it): their finiteness is checked once, at
    # the end, and a blow-up ends the solution at the last finite output.
    # NumPy arrays (where reading is free, and every operation on an inf
    # warns) and solves with events (whose values are read anyway) check each
    # step and stop at the first that is not finite.
    check_each_fixed_step = tracker is not None or is_numpy_namespace(xp)
    dense = DenseOutput(xp, shape, t0, direction) if settings.dense_output else None
    meter = ProgressMeter(t0, t_end) if settings.progress else None
    # Outputs in order: states (n,) at step ends, interpolated blocks (k, n).
    outputs = [y0]
    interpolated = False
    n_outputs = 1
    status: Status | None = None
    message = ""
    y = y0
    t_current = t0
    n_steps = n_accepted = n_rejected = n_forced = 0
    step_proposal = math.nan
    # Whether f(t0, y0) is finite is asked only when the first step fails:
    # a solve that goes well pays no read of it (no wait on an accelerator).
    # NumPy arrays, free to read and warning at every operation on an inf,
    # are checked at once.
    f0_unchecked = True
    try:
        if is_numpy_namespace(xp) and not is_finite(xp, f0):
            status, message = Status.NON_FINITE, _NON_FINITE_F0.format(t0=t0)
        elif adaptive:
            control_state: Any = controller.init(stepper.error_order)
            if first_step is None:
                first_step = settings.first_step
            if first_step is not None:
                h_abs = min(first_step, max_step)
            else:
                h_abs = stepper.initial_step(
                    f, t0, y0, f_current, direction, rtol, atol, norm, max_step, abs(t_end - t0)
                )
                nfev += 1
            h = direction * h_abs
        elif gridded:
            h = landings[0] - t0  # every step is set afresh below
        else:
            h = direction * settings.step_size  # type: ignore[operator]

        landing_index = 0
        t_land = landings[0]
        t_start_eval: float | None = one_sided_time(t0, direction) if one_sided else None
        last_rejection_non_finite = False
        forward_infinity = direction * math.inf
        # Bound once: the loop is plain Python over floats, and these are its
        # calls per step.
        step, error_ratio, adapt = stepper.step, stepper.error_ratio, controller.adapt
        adjusts = getattr(type(stepper), "adjust_step", StepperBase.adjust_step) is not StepperBase.adjust_step
        adjust_step = stepper.adjust_step if adjusts else None
        # Steppers that keep slopes from earlier steps (Adams) forget them
        # where f or the state jumps.
        restart = getattr(stepper, "restart", None)
        snap_to_outputs = not adaptive and not gridded
        forced_floor = settings.accept_at_min_step and min_step > 0.0
        while status is None:
            if n_steps >= max_steps:
                status = Status.MAX_STEPS_REACHED
                message = f"max_steps={max_steps} steps attempted; stopped at t={t_current!r} before t={t_end!r}"
                break
            if gridded:
                h = t_land - t_current
            h_abs = abs(h)
            if adaptive:
                smallest = 10.0 * abs(math.nextafter(t_current, forward_infinity) - t_current)
                if smallest < min_step:
                    smallest = min_step
                    if forced_floor and h_abs < min_step and not last_rejection_non_finite:
                        # The step never shrinks below min_step; it is accepted there (below).
                        h_abs = min_step
                        h = direction * min_step
                if h_abs < smallest:
                    if last_rejection_non_finite:
                        status = Status.NON_FINITE
                        message = (
                            f"f or the state became inf or nan near t={t_current!r}, and shrinking the step "
                            f"to {h_abs:.3g} did not help"
                        )
                    else:
                        status = Status.STEP_SIZE_UNDERFLOW
                        message = (
                            f"step size {h_abs:.3g} fell below the smallest allowed {smallest:.3g} at t={t_current!r}"
                        )
                    break
                if h_abs > max_step:
                    h = direction * max_step
                    h_abs = max_step
            step_proposal = h_abs
            landed = direction * (t_current + h - t_land) > -_LANDING_SLACK * h_abs
            if landed:
                h = t_land - t_current
                t_new = t_land
            else:
                t_new = t_current + h
                if snap_to_outputs and n_outputs < len(times):
                    # Fixed steps of step_size drift off the output times that
                    # lie on their grid by an ulp a step; ending the step on
                    # such an output saves interpolating there.
                    t_out = times[n_outputs]
                    if abs(t_new - t_out) <= _LANDING_SLACK * h_abs:
                        h, t_new = t_out - t_current, t_out
            # Landing on a jump of f: the step must see f's left-hand limit.
            t_end_eval = one_sided_time(t_new, -direction) if (landed and t_new in jumps) or one_sided else None
            if observer is not None:
                observer.attempt(t_current, y, h)
            # One-sided steps start just inside too (an implicit method's Jacobian is taken there).
            t_step = t_start_eval if one_sided and t_start_eval is not None else t_current
            y_new, stages, evaluations = step(f, t_step, y, f_current, h, t_end_eval)
            nfev += evaluations
            n_steps += 1
            if y_new is None:  # the stage equations were not solved
                if f0_unchecked and n_accepted == 0:
                    f0_unchecked = False
                    if not is_finite(xp, f0):
                        status, message = Status.NON_FINITE, _NON_FINITE_F0.format(t0=t0)
                        break
                if not adaptive:
                    status = Status.NONLINEAR_SOLVE_FAILED
                    message = (
                        f"Newton's iteration did not converge in the fixed step from t={t_current!r} to "
                        f"t={t_new!r}; use a smaller step_size or an adaptive method"
                    )
                    break
                n_rejected += 1
                if observer is not None:
                    observer.reject(t_current, y, h)
                last_rejection_non_finite = False
                h = 0.5 * h
                # As after any rejection, the next accepted step may not grow.
                control_state = control_state._replace(last_rejected=True)
                continue
            if adaptive:
                ratio = error_ratio(h, y, y_new, stages, atol, rtol, norm)
                accepted, h_next, control_state = adapt(h, ratio, control_state)
                if not accepted and forced_floor and h_abs <= min_step and math.isfinite(ratio):
                    accepted = True
                    n_forced += 1
                if not accepted:
                    n_rejected += 1
                    if observer is not None:
                        observer.reject(t_current, y, h)
                    last_rejection_non_finite = not math.isfinite(ratio)
                    if last_rejection_non_finite and f0_unchecked and n_accepted == 0:
                        f0_unchecked = False
                        if not is_finite(xp, f0):
                            status, message = Status.NON_FINITE, _NON_FINITE_F0.format(t0=t0)
                            break
                    h = h_next
                    continue
                if adjust_step is not None:
                    h_next = adjust_step(h, h_next)
            else:
                # The sum is finite only if every element is: one cheap read.
                if check_each_fixed_step and not is_finite(xp, y_new):
                    status = Status.NON_FINITE
                    message = f"the state became inf or nan in the fixed step from t={t_current!r} to t={t_new!r}"
                    if n_accepted == 0 and not is_finite(xp, f0):
                        message = _NON_FINITE_F0.format(t0=t0)
                    break
                h_next = h if gridded else direction * settings.step_size  # type: ignore[operator]
            n_accepted += 1
            last_rejection_non_finite = False
            if observer is not None:
                observer.accept(t_current, y, h)
            if on_step is not None:
                on_step(AcceptedStep(t_current, t_new, h, y, t_start_eval, t_end_eval))

            finished = landed and landing_index == len(landings) - 1
            first_pending = n_outputs
            while n_outputs < len(times) and direction * (times[n_outputs] - t_new) <= 0:
                n_outputs += 1
            interior = [times[i] for i in range(first_pending, n_outputs) if times[i] != t_new]
            need_coefficients = dense is not None or tracker is not None

            if stepper.fsal:
                f_new = stages[-1] if not finished or need_coefficients or interior else None
            # One-sided steps start the next from the limit inside it (evaluated below): the
            # left-hand one here only serves the interpolant.
            elif (not finished and not one_sided) or (
                (need_coefficients or interior) and not stepper.has_continuous_extension
            ):
                f_new = f(t_new if t_end_eval is None else t_end_eval, y_new)
                nfev += 1
            else:
                f_new = None

            stop = None
            coefficients = None
            if need_coefficients:
                coefficients = stepper.dense_coefficients(f, t_current, y, y_new, f_new, stages, h, f_current)
                nfev += stepper.extra_evaluations
                if tracker is not None:
                    stop = tracker.step(t_current, t_new, y_new, _step_interpolant(xp, t_current, h, y, coefficients))
                    if stop is not None:
                        # A terminal event ends the solve inside this step: drop
                        # the outputs past it and end there.
                        t_new, y_new = stop
                        while n_outputs > first_pending and direction * (times[n_outputs - 1] - t_new) > 0:
                            n_outputs -= 1
                        interior = [times[i] for i in range(first_pending, n_outputs) if times[i] != t_new]
                if dense is not None:
                    dense.append(t_current, h, y, coefficients, t_end=t_new)
            if interior:
                thetas = [(time - t_current) / h for time in interior]
                values, evaluations = stepper.interpolate(
                    f, t_current, y, y_new, f_new, stages, h, thetas, f0=f_current, coefficients=coefficients
                )
                nfev += evaluations
                outputs.append(values)
                interpolated = True
            if n_outputs > first_pending and times[n_outputs - 1] == t_new:
                outputs.append(y_new)

            t_current, y = t_new, y_new
            t_start_eval = None
            if one_sided and stop is None and not (landed and finished):
                # The next step starts from the limit inside it, as after a jump of f.
                t_start_eval = one_sided_time(t_new, direction)
                if not (landed and (t_new in jumps or t_new in impulses)):
                    f_new = f(t_start_eval, y_new)
                    nfev += 1
            if meter is not None:
                meter.update(t_current)
            if stop is not None:
                status = Status.EVENT
                message = "A termination event occurred."  # scipy's words: code compares them
                break
            if landed:
                if finished:
                    status = Status.SUCCESS
                    message = "the solver reached the last output time"
                    break
                impulse = impulses.get(t_new)
                if impulse is not None:
                    y = y_new = impulse(y_new)
                    if tracker is not None:
                        tracker.restart(t_new, y_new)
                    if adaptive:
                        # The state jumped: the error history says nothing of
                        # what follows. Restart the control from the size the
                        # step had before it was cut to land here, as a new
                        # solve continuing from here would.
                        h_next = direction * step_proposal
                        control_state = controller.init(stepper.error_order)
                if restart is not None and (impulse is not None or t_new in jumps):
                    restart()
                if t_new in jumps or (one_sided and impulse is not None):
                    # f jumps here: the next step starts from its right-hand limit.
                    t_start_eval = one_sided_time(t_new, direction)
                    f_new = f(t_start_eval, y_new)
                    nfev += 1
                elif impulse is not None:
                    f_new = f(t_new, y_new)
                    nfev += 1
                landing_index += 1
                t_land = landings[landing_index]
            f_current = f_new
            h = h_next
    finally:
        stepper.close()
        if meter is not None:
            meter.close()

    if interpolated:
        ys = xp.concat([o if o.ndim == 2 else o[None] for o in outputs], axis=0)
    else:
        ys = xp.stack(outputs)
    if (
        not adaptive
        and not check_each_fixed_step
        and status in (Status.SUCCESS, Status.MAX_STEPS_REACHED)
        and not is_finite(xp, y)
    ):
        # Where the state went bad is not known; the outputs before it are.
        finite_rows = [bool(v) for v in xp.all(xp.isfinite(ys), axis=1)]
        n_outputs = finite_rows.index(False) if False in finite_rows else n_outputs
        ys = ys[:n_outputs]
        t_current, y = times[n_outputs - 1], ys[n_outputs - 1]
        status = Status.NON_FINITE
        message = (
            f"the state became inf or nan in the fixed steps after t={t_current!r}, the last output time "
            "where it was finite"
        )
        if not is_finite(xp, f0):
            message = _NON_FINITE_F0.format(t0=t0)
    return Solution(
        ts=xp.asarray(times[:n_outputs], dtype=xp.float64, device=device_of(y0)),
        ys=ys if len(shape) == 1 else xp.reshape(ys, (n_outputs, *shape)),
        status=status,
        message=message,
        stats=Stats(
            nfev=nfev,
            n_steps=n_steps,
            n_accepted=n_accepted,
            n_rejected=n_rejected,
            njev=stepper.njev,
            nlu=stepper.nlu,
            n_forced=n_forced,
            nfev_jacobian=getattr(stepper, "nfev_jacobian", 0),
        ),
        dense=dense,
        t_final=t_current,
        y_final=y if len(shape) == 1 else xp.reshape(y, shape),
        t_events=None if tracker is None else tracker.t_events,
        y_events=None if tracker is None else tracker.y_events,
        step_proposal=step_proposal,
    )


_NON_FINITE_F0 = "f(t0, y0) is not finite at t={t0!r}"


def _initial_state_only(
    xp: Any, y0: Any, t0: float, m: int, shape: tuple[int, ...], settings: Settings, events: Any, had_f0: bool
) -> Solution:
    """The solution at ``m`` output times all ``t0``: ``y0``, no step taken (``f`` evaluated only if the caller
    did); the dense output is ``y0`` at every time."""
    n_events = 0 if events is None else (1 if callable(events) else len(events))
    dense = None
    if settings.dense_output:
        dense = DenseOutput(xp, shape, t0, 1.0)
        dense.hold(y0)
    message = "a single output time" if m == 1 else "a span of zero length"
    return Solution(
        ts=xp.asarray([t0] * m, dtype=xp.float64, device=device_of(y0)),
        ys=xp.concat([xp.reshape(y0, (1, *shape))] * m),
        status=Status.SUCCESS,
        message=f"{message}: the initial state, no step taken",
        stats=Stats(nfev=int(had_f0), n_steps=0, n_accepted=0, n_rejected=0, njev=0, nlu=0),
        dense=dense,
        t_final=t0,
        y_final=xp.reshape(y0, shape),
        t_events=None if events is None else [xp.zeros((0,), dtype=xp.float64, device=device_of(y0))] * n_events,
        y_events=None if events is None else [xp.zeros((0, *shape), dtype=y0.dtype, device=device_of(y0))] * n_events,
        step_proposal=math.nan,
    )


def _step_interpolant(xp: Any, t_start: float, h: float, y_start: Any, coefficients: Any) -> Callable[[float], Any]:
    """``t -> y(t)`` on one step's polynomial (flat state)."""

    def interpolate(time: float) -> Any:
        return evaluate_polynomial(xp, y_start, coefficients, [(time - t_start) / h])[0]

    return interpolate
