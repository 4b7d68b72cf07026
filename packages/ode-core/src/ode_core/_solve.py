"""``solve``: the one entry point, over every method in the registry."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from array_api_compat import device as device_of

from ._controllers import IController, PIDController, PredictiveController
from ._dense import DenseOutput, evaluate_polynomial
from ._events import EventTracker
from ._explicit_rk import explicit_stepper
from ._implicit_rk import DiagonallyImplicitRungeKutta
from ._initial_step import select_initial_step
from ._radau import RadauIIA
from ._solution import Solution, Stats, Status
from ._tableau import ButcherTableau
from ._validation import (
    check_callable,
    check_f_output,
    check_method,
    check_optional_times,
    check_positive,
    check_state,
    check_times,
    check_tolerances,
    flat_jacobian,
)

__all__ = ["solve"]

# A step that would leave less than this fraction of itself before a time the
# solver must land on is stretched to land there, rather than followed by a
# sliver of a step made of round-off (e.g. ten steps of 0.1 to reach 1.0).
_LANDING_SLACK = 1e-10


def solve(
    f: Callable[[float, Any], Any],
    y0: Any,
    t: Any,
    *,
    method: str | ButcherTableau = "dopri5",
    rtol: Any = 1e-6,
    atol: Any = 1e-9,
    step_size: float | None = None,
    first_step: float | None = None,
    max_step: float = math.inf,
    min_step: float = 0.0,
    max_steps: int = 100_000,
    controller: PIDController | PredictiveController | None = None,
    norm: Callable[[Any], float] | None = None,
    step_t: Any = None,
    jump_t: Any = None,
    dense_output: bool = True,
    jac: Callable[[float, Any], Any] | None = None,
    events: Any = None,
) -> Solution:
    """Solve ``dy/dt = f(t, y)`` from ``y(t[0]) = y0`` and report ``y`` at ``t``.

    Parameters
    ----------
    f : callable
        ``f(t, y) -> dy/dt``: ``t`` a Python float, ``y`` and the result
        arrays of ``y0``'s shape, dtype, library and device.
    y0 : array, any shape
        Initial state: a NumPy array, a torch tensor or any array API array
        of a real floating dtype (a list of numbers becomes float64 NumPy).
        Leading batch dimensions need no special treatment.
    t : 1-D sequence of float, shape (m,), m >= 2
        Output times, strictly increasing or strictly decreasing; ``t[0]`` is
        the initial time. Times are float64 whatever the state's dtype.
        Output times between steps are interpolated (no evaluations of
        ``f``), except for adaptive methods whose interpolant is of lower
        order than the error their step-size control bounds (``cash_karp``,
        ``kvaerno5``): those step onto them.
    method : str or ButcherTableau
        A name from :data:`ode_core.METHODS` or a tableau of your own.
        Default ``"dopri5"``.
    rtol, atol : float or array of y0's shape
        Relative and absolute tolerances; a step passes when
        ``norm(error / (atol + rtol * max(|y|, |y_new|))) <= 1``. Defaults
        ``1e-6`` and ``1e-9`` (tighter than scipy's ``1e-3, 1e-6``, which are
        often too loose for learning; looser than torchdiffeq's).
    step_size : float, optional
        Fixed step: every method, adaptive ones included, takes steps of this
        size (the last before a landing time is shortened) with no error
        control. Required for methods without an error estimate.
    first_step : float, optional
        First adaptive step; by default Hairer's heuristic (one extra
        evaluation of ``f``).
    max_step, min_step : float
        Bounds on the adaptive step size; a step below ``min_step`` (or below
        ten units in the last place of ``t``) ends the solve with
        ``Status.STEP_SIZE_UNDERFLOW``.
    max_steps : int
        Attempted steps (accepted and rejected) before the solve returns with
        ``Status.MAX_STEPS_REACHED``. Default 100,000.
    controller : PIDController or PredictiveController, optional
        Step-size controller; default :class:`IController` (scipy's and
        torchdiffeq's rule: safety 0.9, factor in [0.2, 10]), and
        :class:`PredictiveController` for ``radau5`` (as RADAU5 and scipy's
        ``Radau``).
    norm : callable, optional
        ``norm(scaled_error) -> float`` on an array of y0's shape; default
        :func:`rms_norm`. Pass e.g. a seminorm that ignores some components.
    step_t : 1-D sequence of float, optional
        Times the solver must step onto (not across), e.g. where ``f``
        changes character.
    jump_t : 1-D sequence of float, optional
        Discontinuities of ``f`` in ``t``: the solver steps onto them and
        evaluates ``f`` afresh just past the jump.
    dense_output : bool
        Keep every step's interpolant in ``Solution.dense`` (memory grows
        with the number of steps). Output times between steps cost no
        evaluations of ``f`` either way.
    jac : callable, optional
        Implicit methods only: ``jac(t, y) -> df/dy`` as an array of shape
        ``(n, n)`` or ``(*y0.shape, *y0.shape)`` (``n = y0.size``). By default
        the Jacobian comes from forward differences (``n`` evaluations of
        ``f``, counted in ``nfev``). It is reused across steps until Newton
        converges slowly or fails (``stats.njev``, ``stats.nlu``). Newton's
        iteration stops at a fraction of ``rtol``/``atol``, also with fixed
        steps.
    events : callable or sequence of callables, optional
        Event functions ``g(t, y) -> scalar``, scipy's conventions: an event
        is a zero of ``g``, located on the step's interpolant (no
        evaluations of ``f``) to round-off in ``t``. ``g.terminal`` (bool or
        a count ``N``) stops the solve at the (N-th) occurrence with
        ``Status.EVENT``; ``g.direction`` (> 0, < 0, 0) keeps only crossings
        from negative to positive, positive to negative, or both, in the
        order the solver visits times. A zero exactly at ``t[0]`` is no
        event.

    Returns
    -------
    Solution
        ``ts`` (m,), ``ys`` (m, *y0.shape), ``status``, ``message``,
        ``stats``, ``dense``. On failure ``ts``/``ys`` hold the output times
        reached and ``t_final``/``y_final`` the last accepted state. With
        ``events``, ``t_events``/``y_events`` hold one array per event
        function of the times ``(k,)`` and states ``(k, *y0.shape)`` found.

    Raises
    ------
    ValueError, TypeError
        For bad arguments, naming the argument. Solver failures are never
        raised: they are the returned ``status``.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.array([1.0, 2.0]), [0.0, 1.0, 2.0])
    >>> sol.ys.shape, sol.status.value
    ((3, 2), 'success')
    >>> bool(np.allclose(sol.ys[-1], np.exp(-2.0) * np.array([1.0, 2.0]), rtol=1e-5))
    True
    """
    f = check_callable(f, "f")
    tableau = check_method(method)
    xp, y0 = check_state(y0)
    times, direction = check_times(t)
    rtol, atol = check_tolerances(rtol, atol, xp, y0)
    adaptive = step_size is None
    if adaptive and not tableau.adaptive:
        raise ValueError(
            f"step_size: method {tableau.name!r} has no error estimate; give step_size=h for fixed steps "
            "or choose an adaptive method"
        )
    fixed_step = 0.0 if step_size is None else check_positive(step_size, "step_size")
    if first_step is not None:
        first_step = check_positive(first_step, "first_step")
    max_step = check_positive(max_step, "max_step", allow_inf=True)
    min_step = check_positive(min_step, "min_step", allow_zero=True)
    if min_step > max_step:
        raise ValueError(f"min_step: {min_step} exceeds max_step={max_step}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps: expected a positive int, got {max_steps!r}")
    if controller is not None and not (
        callable(getattr(controller, "init", None)) and callable(getattr(controller, "adapt", None))
    ):
        raise TypeError(f"controller: expected a step-size controller (e.g. PIController()), got {controller!r}")
    if norm is not None:
        check_callable(norm, "norm")
    step_times = check_optional_times(step_t, "step_t")
    jump_times = check_optional_times(jump_t, "jump_t")

    t0, t_end = times[0], times[-1]
    shape = tuple(y0.shape)
    n = math.prod(shape)
    dtype = y0.dtype
    device = device_of(y0)
    y = xp.reshape(y0, (n,))

    first_value = f(t0, y0)
    check_f_output(first_value, y0, xp)
    if len(shape) == 1:
        fun = f
    else:

        def fun(time: float, state: Any) -> Any:
            return xp.reshape(f(time, xp.reshape(state, shape)), (n,))

    if norm is None:
        inverse_n = 1.0 / n

        def error_norm(scaled: Any) -> float:
            return math.sqrt(float(scaled @ scaled) * inverse_n)

    else:
        user_norm = norm

        def error_norm(scaled: Any) -> float:
            return float(user_norm(xp.reshape(scaled, shape)))

    stepper: Any
    if tableau.explicit:
        if jac is not None:
            raise ValueError(f"jac: method {tableau.name!r} is explicit and uses no Jacobian; pass jac=None")
        stepper = explicit_stepper(tableau, xp, dtype, device, n)
    else:
        stepper_class = DiagonallyImplicitRungeKutta if tableau.diagonally_implicit else RadauIIA
        stepper = stepper_class(
            tableau,
            xp,
            dtype,
            device,
            n,
            flat_jacobian(jac, y0, xp, shape, n),
            atol,
            rtol,
            error_norm,
            fixed_step=not adaptive,
        )
    implicit = not tableau.explicit
    if controller is None:
        # radau5's default is the predictive rule of RADAU5 and scipy's Radau;
        # every other method's, scipy's I controller.
        controller = getattr(stepper, "default_controller", None) or IController()
    f_current = xp.reshape(first_value, (n,))
    nfev = 1

    # Output times are stepped onto or interpolated as the tableau says
    # (ButcherTableau.steps_onto_outputs holds the rule and why).
    if adaptive and tableau.steps_onto_outputs:
        step_times = step_times + times[1:-1]
    # Times the solver must land on, in order; the last is t_end.
    inside = sorted(
        {v for v in step_times + jump_times if direction * (v - t0) > 0 and direction * (t_end - v) > 0},
        key=lambda v: direction * v,
    )
    landings = [*inside, t_end]
    jumps = set(jump_times)

    tracker = None if events is None else EventTracker(events, xp, shape, t0, y, direction)
    dense = DenseOutput(xp, shape, t0, direction) if dense_output else None
    blocks = [xp.reshape(y, (1, n))]
    n_outputs = 1
    status: Status | None = None
    message = ""

    if not bool(xp.all(xp.isfinite(f_current))):
        status = Status.NON_FINITE
        message = f"f(t0, y0) is not finite at t={t0!r}"

    if adaptive:
        control_state: Any = controller.init(stepper.error_order)
        if first_step is not None:
            h_abs = min(first_step, max_step)
        else:
            h_abs = select_initial_step(
                fun, t0, y, f_current, direction, stepper.error_order, rtol, atol, error_norm, max_step, abs(t_end - t0)
            )
            nfev += 1
        h = direction * h_abs
    else:
        h = direction * fixed_step

    landing_index = 0
    t_land = landings[0]
    t_current = t0
    n_steps = n_accepted = n_rejected = 0
    last_rejection_non_finite = False
    while status is None:
        if n_steps >= max_steps:
            status = Status.MAX_STEPS_REACHED
            message = f"max_steps={max_steps} steps attempted; stopped at t={t_current!r} before t={t_end!r}"
            break
        h_abs = abs(h)
        if adaptive:
            smallest = max(min_step, 10.0 * abs(math.nextafter(t_current, direction * math.inf) - t_current))
            if h_abs < smallest:
                if last_rejection_non_finite:
                    status = Status.NON_FINITE
                    message = (
                        f"f or the state became inf or nan near t={t_current!r}, and shrinking the step "
                        f"to {h_abs:.3g} did not help"
                    )
                else:
                    status = Status.STEP_SIZE_UNDERFLOW
                    message = f"step size {h_abs:.3g} fell below the smallest allowed {smallest:.3g} at t={t_current!r}"
                break
            if h_abs > max_step:
                h = direction * max_step
                h_abs = max_step
        landed = direction * (t_current + h - t_land) > -_LANDING_SLACK * h_abs
        if landed:
            h = t_land - t_current
        t_new = t_land if landed else t_current + h

        # Landing on a jump of f: the step must see f's left-hand limit.
        t_new_eval = math.nextafter(t_new, -direction * math.inf) if landed and t_new in jumps else t_new
        y_new, stages, evaluations = stepper.step(
            fun, t_current, y, f_current, h, None if t_new_eval == t_new else t_new_eval
        )
        nfev += evaluations
        n_steps += 1
        if y_new is None:  # the nonlinear stage equations were not solved
            if not adaptive:
                status = Status.NONLINEAR_SOLVE_FAILED
                message = (
                    f"Newton's iteration did not converge in the fixed step from t={t_current!r} to t={t_new!r}; "
                    "use a smaller step_size or an adaptive method"
                )
                break
            n_rejected += 1
            last_rejection_non_finite = False
            h = 0.5 * h
            # As after any rejection, the next accepted step may not grow.
            control_state = control_state._replace(last_rejected=True)
            continue
        if adaptive:
            ratio = stepper.error_ratio(h, y, y_new, stages, atol, rtol, error_norm)
            accepted, h_next, control_state = controller.adapt(h, ratio, control_state)
            if not accepted:
                n_rejected += 1
                last_rejection_non_finite = not math.isfinite(ratio)
                h = h_next
                continue
            if implicit:
                h_next = stepper.adjust_step(h, h_next)
        else:
            if not bool(xp.all(xp.isfinite(y_new))):
                status = Status.NON_FINITE
                message = f"the state became inf or nan in the fixed step from t={t_current!r} to t={t_new!r}"
                break
            h_next = direction * fixed_step
        n_accepted += 1
        last_rejection_non_finite = False

        finished = landed and landing_index == len(landings) - 1
        first_pending = n_outputs
        while n_outputs < len(times) and direction * (times[n_outputs] - t_new) <= 0:
            n_outputs += 1
        interior = [times[i] for i in range(first_pending, n_outputs) if times[i] != t_new]
        need_coefficients = dense is not None or bool(interior) or tracker is not None

        if stepper.fsal:
            f_new = stages[-1]
        elif not finished or (need_coefficients and not stepper.has_continuous_extension):
            f_new = fun(t_new_eval, y_new)
            nfev += 1
        else:
            f_new = None

        stop = None
        if need_coefficients:
            coefficients = stepper.dense_coefficients(fun, t_current, y, y_new, f_new, stages, h, f_current)
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
            if interior:
                thetas = [(time - t_current) / h for time in interior]
                blocks.append(evaluate_polynomial(xp, y, coefficients, thetas))
            if dense is not None:
                dense.append(t_current, h, y, coefficients, t_end=t_new)
        if n_outputs > first_pending and times[n_outputs - 1] == t_new:
            blocks.append(xp.reshape(y_new, (1, n)))

        t_current, y = t_new, y_new
        if stop is not None:
            status = Status.EVENT
            message = f"a terminal event occurred at t={t_new!r}"
            break
        if landed:
            if finished:
                status = Status.SUCCESS
                message = "the solver reached the last output time"
                break
            if t_new in jumps:
                # f jumps here: the next step starts from its right-hand limit.
                f_new = fun(math.nextafter(t_new, direction * math.inf), y_new)
                nfev += 1
            landing_index += 1
            t_land = landings[landing_index]
        f_current = f_new
        h = h_next

    ys = xp.concat(blocks, axis=0) if len(blocks) > 1 else blocks[0]
    return Solution(
        ts=xp.asarray(times[:n_outputs], dtype=xp.float64, device=device),
        ys=xp.reshape(ys, (n_outputs, *shape)),
        status=status,
        message=message,
        stats=Stats(
            nfev=nfev,
            n_steps=n_steps,
            n_accepted=n_accepted,
            n_rejected=n_rejected,
            njev=stepper.njev if implicit else 0,
            nlu=stepper.nlu if implicit else 0,
        ),
        dense=dense,
        t_final=t_current,
        y_final=xp.reshape(y, shape),
        t_events=None if tracker is None else tracker.t_events,
        y_events=None if tracker is None else tracker.y_events,
    )


def _step_interpolant(xp: Any, t_start: float, h: float, y_start: Any, coefficients: Any) -> Callable[[float], Any]:
    """``t -> y(t)`` on one step's polynomial (flat state)."""

    def interpolate(time: float) -> Any:
        return evaluate_polynomial(xp, y_start, coefficients, [(time - t_start) / h])[0]

    return interpolate
