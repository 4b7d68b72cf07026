"""``solve``: the one entry point, over every method in the registry."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from ._controllers import PIDController, PredictiveController
from ._loop import AcceptedStep, integrate
from ._solution import Solution
from ._tableau import ButcherTableau
from .validation import (
    check_callable,
    check_f_output,
    check_settings,
    check_span,
    check_state,
    check_times,
    flat_jacobian,
    working_dtype,
)

__all__ = ["solve"]


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
    accept_at_min_step: bool = False,
    max_steps: int = 100_000,
    controller: PIDController | PredictiveController | None = None,
    norm: Callable[[Any], float] | None = None,
    step_t: Any = None,
    jump_t: Any = None,
    dense_output: bool = True,
    jac: Callable[[float, Any], Any] | None = None,
    events: Any = None,
    on_step: Callable[[AcceptedStep], None] | None = None,
    progress: bool = False,
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
        Leading batch dimensions need no special treatment. Half precision
        states (float16, bfloat16) are integrated in float32 with ``f``
        evaluated in their dtype (see :func:`ode_core.validation.working_dtype`);
        ``ys`` and ``y_final`` come back in it, and an ``rtol`` below its
        resolution warns.
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
        control. A method without an error estimate given none steps from
        each output time (and ``step_t``, ``jump_t``) to the next, one step
        per interval, as torchdiffeq does on the grid of ``t``.
    first_step : float, optional
        First adaptive step; by default Hairer's heuristic (one extra
        evaluation of ``f``).
    max_step, min_step : float
        Bounds on the adaptive step size; a step below ``min_step`` (or below
        ten units in the last place of ``t``) ends the solve with
        ``Status.STEP_SIZE_UNDERFLOW``.
    accept_at_min_step : bool
        Instead, never step below ``min_step`` and accept a step there
        whatever its error, counting it in ``stats.n_forced``
        (torchdiffeq's ``min_step``).
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
    on_step : callable, optional
        ``on_step(step)`` after every accepted step, with an
        :class:`AcceptedStep` ``(t, t_next, h, y, t_start_eval, t_end_eval)``
        (``y`` flat, the state at the step's start).
    progress : bool
        Show a progress meter over time while solving (tqdm, when it is
        installed; a warning otherwise). Off by default, and free when off.

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
    xp, y0 = check_state(y0)
    times, _ = check_times(t)
    shape = tuple(y0.shape)
    n = math.prod(shape)
    state_dtype = y0.dtype
    dtype = working_dtype(xp, state_dtype)
    y = xp.reshape(y0, (n,))
    if dtype != state_dtype:
        y = xp.astype(y, dtype)
    if norm is not None:
        user_norm = check_callable(norm, "norm")

        def flat_norm(scaled: Any) -> float:
            return float(user_norm(xp.reshape(scaled, shape)))

    settings = check_settings(
        method,
        rtol,
        atol,
        xp=xp,
        y0=y,
        step_size=step_size,
        first_step=first_step,
        max_step=max_step,
        min_step=min_step,
        accept_at_min_step=accept_at_min_step,
        max_steps=max_steps,
        controller=controller,
        norm=None if norm is None else flat_norm,
        step_t=step_t,
        jump_t=jump_t,
        dense_output=dense_output,
        jac=flat_jacobian(jac, y0, xp, shape, n),
        progress=progress,
        state_dtype=state_dtype if dtype != state_dtype else None,
    )
    check_span(times, settings)
    first_value = f(times[0], y0)
    check_f_output(first_value, y0, xp)
    if len(shape) == 1 and dtype == state_dtype:
        fun: Callable[[float, Any], Any] = f
        f0 = first_value
    else:
        fun = ShapedFunction(f, shape, xp, state_dtype, dtype)
        f0 = fun.flatten(first_value)
    solution = integrate(fun, y, times, settings, f0=f0, shape=shape, events=events, on_step=on_step)
    if dtype == state_dtype:
        return solution
    return dataclasses.replace(
        solution,
        ys=xp.astype(solution.ys, state_dtype),
        y_final=xp.astype(solution.y_final, state_dtype),
        y_events=None if solution.y_events is None else [xp.astype(v, state_dtype) for v in solution.y_events],
    )


class ShapedFunction:
    """``f`` of the user's state shape and dtype, called by the loop on flat states.

    For a half precision state the loop computes in ``working`` (float32)
    and ``f`` sees its own dtype. Steppers may call ``f`` directly on shaped
    views (``shaped_call``) when no conversion is needed.

    Parameters
    ----------
    f : callable
        ``f(t, y)`` on states of ``shape`` and dtype ``state_dtype``.
    shape : tuple of int
    xp : array namespace
    state_dtype, working : dtype
    """

    __slots__ = ("f", "n", "shape", "shaped_call", "state_dtype", "working", "xp")

    def __init__(self, f: Callable[[float, Any], Any], shape: tuple[int, ...], xp: Any, state_dtype: Any, working: Any):
        self.f = f
        self.shape = shape
        self.n = math.prod(shape)
        self.xp = xp
        self.state_dtype = state_dtype
        self.working = working
        # (f, shape, the times f takes for a list of floats): a stepper may
        # call f on views of its own buffers.
        self.shaped_call = (f, shape, _same_times) if state_dtype == working else None

    def flatten(self, value: Any) -> Any:
        """A value of ``f`` as a flat array of the working dtype."""
        flat = self.xp.reshape(value, (self.n,))
        return flat if self.state_dtype == self.working else self.xp.astype(flat, self.working)

    def __call__(self, t: float, y: Any) -> Any:
        xp = self.xp
        state = xp.reshape(y, self.shape)
        if self.state_dtype != self.working:
            state = xp.astype(state, self.state_dtype)
        return self.flatten(self.f(t, state))


def _same_times(times: list[float]) -> list[float]:
    """ode-core's ``f`` takes time as a Python float."""
    return times
