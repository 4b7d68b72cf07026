"""``solve``: the one entry point, over every method in the registry."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from array_api_compat import array_namespace, is_array_api_obj
from array_api_compat import device as device_of

from ._controllers import PIDController, PredictiveController
from ._dense import DenseOutput
from ._linalg import is_sparse
from ._loop import AcceptedStep, integrate
from ._per_sample import DEFAULT_SYNC_EVERY, BatchShapedFunction, integrate_per_sample
from ._settings import Settings
from ._solution import Solution, Stats, Status
from ._tableau import ButcherTableau
from .validation import (
    check_batch_dims,
    check_callable,
    check_count,
    check_f_output,
    check_per_sample,
    check_sample_times,
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
    dense_output: bool | None = None,
    jac: Callable[[float, Any], Any] | Any | None = None,
    events: Any = None,
    jac_sparsity: Any = None,
    linear_solver: str = "direct",
    jvp: Callable[[float, Any, Any], Any] | None = None,
    args: Any = None,
    vectorized: bool = False,
    on_step: Callable[[AcceptedStep], None] | None = None,
    progress: bool = False,
    batch_dims: int = 0,
    sync_every: int = DEFAULT_SYNC_EVERY,
    compile_step: Callable[[Callable[..., Any]], Callable[..., Any]] | None = None,
    compact: bool = False,
) -> Solution:
    """Solve ``dy/dt = f(t, y)`` from ``y(t[0]) = y0`` and report ``y`` at ``t``.

    Parameters
    ----------
    f : callable
        ``f(t, y) -> dy/dt``: ``t`` a Python float, ``y`` and the result
        arrays of ``y0``'s shape, dtype, library and device.
    y0 : array, any shape
        Initial state: a NumPy array, a torch tensor or any array API array
        of a real or complex floating dtype (a list of numbers becomes
        float64 NumPy, or complex128 where it holds complex numbers; integer
        arrays become float64 of their library, as scipy converts them). A
        state with no elements is solved at once: success, no evaluation
        of ``f``. Complex states take the RMS norm of the errors' moduli;
        implicit methods difference ``f`` in real steps (as scipy).
        Leading batch dimensions need no special treatment. Half precision
        states (float16, bfloat16) are integrated in float32 with ``f``
        evaluated in their dtype (see :func:`ode_core.validation.working_dtype`);
        ``ys`` and ``y_final`` come back in it, and an ``rtol`` below its
        resolution warns.
    t : 1-D sequence of float, shape (m,), m >= 2
        Output times, strictly increasing or strictly decreasing; ``t[0]`` is
        the initial time. Times all equal to ``t[0]`` are a span of zero
        length (scipy's ``t_span=(a, a)``): ``y0`` at each, no step, and a
        dense output that is ``y0`` at every time. Times are float64 whatever the state's dtype.
        Output times between steps are interpolated (no evaluations of
        ``f``), except for adaptive methods whose interpolant is of lower
        order than the error their step-size control bounds (``cash_karp``,
        ``kvaerno5``): those step onto them.
    method : str or ButcherTableau
        A name from :data:`ode_core.METHODS` or a tableau of your own.
        Default ``"dopri5"``.
    rtol, atol : float or array of y0's shape
        Relative and absolute tolerances; a step passes when
        ``norm(error / (atol + rtol * max(|y|, |y_new|))) <= 1``. An
        ``rtol`` below 100 float64 epsilons is raised to that, with scipy's
        warning (below it the error estimate is round-off). Defaults
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
    dense_output : bool, optional
        Keep every step's interpolant in ``Solution.dense`` (memory grows
        with the number of steps). Output times between steps cost no
        evaluations of ``f`` either way. Default: on, except in the
        per-sample mode (which has none).
    jac : callable or array, optional
        Implicit methods: ``jac(t, y) -> df/dy`` as an array (or nested
        lists) of shape ``(n, n)`` or ``(*y0.shape, *y0.shape)``
        (``n = y0.size``), or that array itself when it is constant. An
        explicit method ignores it with a warning (as scipy). For NumPy
        states it may be (or return) a scipy.sparse matrix: the Newton
        matrices are then factorised by sparse LU. By default the Jacobian
        comes from forward differences (``n`` evaluations of ``f``, counted
        in ``nfev``; see ``jac_sparsity``). It is reused across steps until Newton
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
    jac_sparsity : array_like or scipy.sparse matrix, optional
        ``(n, n)``, nonzero where ``df/dy`` may be: without ``jac``, the
        finite-difference Jacobian perturbs structurally independent columns
        together (one evaluation of ``f`` per group, counted in ``nfev``)
        and is sparse. NumPy states, implicit methods.
    linear_solver : {"direct", "krylov"}
        How the implicit methods solve their Newton systems. ``"direct"``
        (default): LU factorisations of the iteration matrices.
        ``"krylov"``: matrix-free, for states too large for a Jacobian
        matrix: GMRES on Jacobian-vector products, from ``jvp``, else
        ``jac``, else forward differences (one evaluation of ``f`` each,
        counted in ``nfev``); no factorisation (``nlu`` 0). The diagonally
        implicit methods, ``radau5`` and ``bdf``, real states; without a
        preconditioner (see ``ode_core._krylov``). Under autograd, ode-adjoint
        differentiates each linear solve as ``(a I + b J)^{-1}``.
    jvp : callable, optional
        ``jvp(t, y, v) -> J v`` with ``J = df/dy`` at ``(t, y)``, all of
        y0's shape, for ``linear_solver="krylov"`` (ode-adjoint passes
        autograd's).
    args : tuple, optional
        Extra arguments: ``f(t, y, *args)``, and likewise ``jac`` and every
        event function (scipy's ``args``).
    vectorized : bool
        ``f`` works on columns, as scipy's ``vectorized=True``: it is called
        with ``y`` of shape ``(*y0.shape, k)``, ``k = 1`` for a step's
        stages and ``k = n`` for an implicit method's finite-difference
        Jacobian, all its columns in one call (counted as one evaluation).
        Default False.
    on_step : callable, optional
        ``on_step(step)`` after every accepted step, with an
        :class:`AcceptedStep` ``(t, t_next, h, y, t_start_eval, t_end_eval)``
        (``y`` flat, the state at the step's start).
    progress : bool
        Show a progress meter over time while solving (tqdm, when it is
        installed; a warning otherwise). Off by default, and free when off.
    batch_dims : int
        The per-sample mode when positive: the first ``batch_dims``
        dimensions of ``y0`` index independent problems, each solved with
        its own time, step sizes, acceptance, status and statistics (see
        ``docs/guide/per-sample.md``). ``f(t, y)`` then gets ``t`` as an array of
        shape ``y0.shape[:batch_dims]`` (float64, y0's namespace and
        device), one time per sample, and must keep the samples apart (row
        ``b`` of its value depends on row ``b`` of ``y`` and ``t[b]``
        only). ``t`` may be (m,), shared, or (*batch, m), one row of output
        times per sample. Explicit Runge--Kutta methods, fixed or adaptive;
        tolerances are shared by the samples (scalars or of one sample's
        shape), and ``norm`` maps scaled errors of y0's shape to an array
        of shape (*batch,). Default 0: one joint problem.
    sync_every : int
        Per-sample mode: adaptive steps between the host's reads of whether
        every sample is done, the only reads of values inside the solve
        (none with fixed steps). Default 8.
    compile_step : callable, optional
        Per-sample mode: applied once to the step function, e.g.
        ``functools.partial(torch.compile, fullgraph=True)``.
    compact : bool
        Per-sample mode, one batch dimension: finished samples leave the
        batch (at the reads between blocks), so ``f`` is evaluated on the
        running ones only; ``f`` must then work on any subset of the rows
        (no per-sample data of its own). See
        :func:`ode_core.integrate_per_sample`.

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
    if args is not None:
        f, jac, events = _with_arguments(args, f, jac, events)
    if not isinstance(vectorized, (bool, np.bool_)):
        raise TypeError(f"vectorized: expected True or False, got {vectorized!r}")
    xp, y0 = check_state(y0, convert_integers=True, allow_complex=True, allow_empty=True)
    columns = None
    if vectorized:
        columns = f
        f = _single_column(f)
    if check_batch_dims(batch_dims, y0):
        if jac_sparsity is not None:
            raise ValueError(f"jac_sparsity: the per-sample mode (batch_dims={batch_dims}) runs explicit methods")
        if xp.isdtype(y0.dtype, "complex floating") or math.prod(y0.shape) == 0:
            raise ValueError(
                f"y0: the per-sample mode (batch_dims={batch_dims}) takes non-empty real states, got "
                f"{y0.dtype} of shape {tuple(y0.shape)}"
            )
        return _solve_per_sample(
            f,
            xp,
            y0,
            t,
            batch_dims,
            sync_every=check_count(sync_every, "sync_every"),
            compact=compact,
            compile_step=None if compile_step is None else check_callable(compile_step, "compile_step"),
            norm=norm,
            events=events,
            on_step=on_step,
            jac=jac,
            settings_arguments={
                "method": method,
                "rtol": rtol,
                "atol": atol,
                "step_size": step_size,
                "first_step": first_step,
                "max_step": max_step,
                "min_step": min_step,
                "accept_at_min_step": accept_at_min_step,
                "max_steps": max_steps,
                "controller": controller,
                "step_t": step_t,
                "jump_t": jump_t,
                "dense_output": bool(dense_output),
                "progress": progress,
            },
        )
    if dense_output is None:
        dense_output = True
    times, _ = check_times(t, allow_zero_span=True)
    shape = tuple(y0.shape)
    n = math.prod(shape)
    if jac is not None and not callable(jac):
        jac = _constant_jacobian(xp, jac, y0)
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
        jac_sparsity=jac_sparsity,
        linear_solver=linear_solver,
        jvp=None if jvp is None else _flat_jvp(check_callable(jvp, "jvp"), xp, shape),
        progress=progress,
        state_dtype=state_dtype if dtype != state_dtype else None,
    )
    check_span(times, settings)
    settings = _floor_rtol(settings)
    if columns is not None and settings.method.implicit and jac is None:
        settings = dataclasses.replace(settings, columns=_flat_columns(columns, xp, shape))
    if n == 0:  # nothing to integrate: the empty state at every time
        return _empty_state(xp, y0, times, settings, events)
    first_value = f(times[0], y0)
    if not is_array_api_obj(first_value):
        # scipy's rule: f may return a list, a tuple or a number, converted to y0's dtype.
        f = _converted_output(f, xp, y0)
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


def _flat_columns(f: Any, xp: Any, shape: tuple[int, ...]) -> Callable[[float, Any], Any]:
    """A vectorized ``f`` of the user's shape on flat (n, k) columns."""

    def flat(t: float, columns: Any) -> Any:
        k = columns.shape[1]
        return xp.reshape(xp.asarray(f(t, xp.reshape(columns, (*shape, k)))), (-1, k))

    return flat


def _flat_jvp(jvp: Any, xp: Any, shape: tuple[int, ...]) -> Callable[[float, Any, Any], Any]:
    """``jvp`` of the user's shape on the loop's flat arrays."""

    def flat(t: float, y: Any, v: Any) -> Any:
        return xp.reshape(jvp(t, xp.reshape(y, shape), xp.reshape(v, shape)), (-1,))

    return flat


def _with_arguments(args: Any, f: Any, jac: Any, events: Any) -> tuple[Any, Any, Any]:
    """``f``, ``jac`` and the event functions with ``args`` passed after ``(t, y)``, as scipy's ``solve_ivp``."""
    try:
        args = tuple(args)
    except TypeError as exc:
        # scipy's words too, for code that matches them.
        raise TypeError(
            f"args: expected a tuple, got {type(args).__name__}; Supplied 'args' cannot be unpacked. Please "
            "supply `args` as a tuple (e.g. `args=(arg,)`)"
        ) from exc

    def with_args(function: Any) -> Any:
        def called(t: Any, y: Any) -> Any:
            return function(t, y, *args)

        for attribute in ("terminal", "direction"):
            if hasattr(function, attribute):
                setattr(called, attribute, getattr(function, attribute))
        return called

    if jac is not None and callable(jac):
        jac = with_args(jac)
    if events is not None:
        events = with_args(events) if callable(events) else [with_args(g) if callable(g) else g for g in events]
    return with_args(f), jac, events


def _single_column(f: Any) -> Any:
    """A vectorized ``f`` (scipy's: on states with a trailing axis of columns) called on one state."""

    def one(t: Any, y: Any) -> Any:
        return f(t, y[..., None])[..., 0]

    return one


def _converted_output(f: Any, xp: Any, y0: Any) -> Any:
    """``f`` with its value converted to an array of y0's dtype, library and device (a list, a tuple, a number)."""
    dtype, where = y0.dtype, device_of(y0)

    def converted(t: Any, y: Any) -> Any:
        return xp.asarray(f(t, y), dtype=dtype, device=where)

    return converted


def _constant_jacobian(xp: Any, jac: Any, y0: Any) -> Callable[[float, Any], Any]:
    """A Jacobian given as a constant array (or scipy.sparse matrix): the function that returns it."""
    if is_sparse(jac):
        sparse = jac.tocsc()

        def constant_sparse(t: float, y: Any) -> Any:
            return sparse

        constant_sparse.constant = True  # type: ignore[attr-defined]
        return constant_sparse
    try:
        matrix = xp.asarray(jac, dtype=y0.dtype, device=device_of(y0))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"jac: expected a callable or an array, got {type(jac).__name__}") from exc

    def constant(t: float, y: Any) -> Any:
        return matrix

    constant.constant = True  # type: ignore[attr-defined]
    return constant


# scipy's floor on rtol (solve_ivp's validate_tol): below it the error estimate is round-off.
_RTOL_FLOOR = 100 * float(np.finfo(np.float64).eps)


def _floor_rtol(settings: Settings) -> Settings:
    """``settings`` with ``rtol`` raised to 100 float64 epsilons where it is below, with scipy's warning."""
    rtol = settings.rtol
    smallest = rtol if isinstance(rtol, float) else float(np.min(np.asarray(rtol)))
    if smallest >= _RTOL_FLOOR:
        return settings
    warnings.warn(
        f"rtol: {smallest:g} is below 100 float64 epsilons, where the error estimate is round-off; raised to "
        f"{_RTOL_FLOOR:g} (At least one element of `rtol` is too small. Setting `rtol = np.maximum(rtol, "
        f"{_RTOL_FLOOR})`.)",
        UserWarning,
        stacklevel=3,
    )
    if isinstance(rtol, float):
        return dataclasses.replace(settings, rtol=_RTOL_FLOOR)
    xp = array_namespace(rtol)
    return dataclasses.replace(settings, rtol=xp.clip(rtol, min=_RTOL_FLOOR))


def _empty_state(xp: Any, y0: Any, times: list[float], settings: Settings, events: Any) -> Solution:
    """The solution of a state with no elements: success at every time, no evaluation of ``f``."""
    shape, where = tuple(y0.shape), device_of(y0)
    n_events = 0 if events is None else (1 if callable(events) else len(events))
    dense = None
    if settings.dense_output:
        dense = DenseOutput(xp, shape, times[0], 1.0)
        dense.hold(xp.reshape(y0, (0,)))
    finite = [v for v in times if math.isfinite(v)]
    return Solution(
        ts=xp.asarray(finite, dtype=xp.float64, device=where),
        ys=xp.zeros((len(finite), *shape), dtype=y0.dtype, device=where),
        status=Status.SUCCESS,
        message="the state has no elements: nothing to integrate",
        stats=Stats(nfev=0, n_steps=0, n_accepted=0, n_rejected=0),
        dense=dense,
        t_final=times[-1],
        y_final=y0,
        t_events=None if events is None else [xp.zeros((0,), dtype=xp.float64, device=where)] * n_events,
        y_events=None if events is None else [xp.zeros((0, *shape), dtype=y0.dtype, device=where)] * n_events,
        step_proposal=math.nan,
    )


def _solve_per_sample(
    f: Callable[..., Any],
    xp: Any,
    y0: Any,
    t: Any,
    batch_dims: int,
    *,
    sync_every: int,
    compile_step: Callable[[Callable[..., Any]], Callable[..., Any]] | None,
    compact: bool,
    norm: Callable[[Any], Any] | None,
    events: Any,
    on_step: Any,
    jac: Any,
    settings_arguments: dict[str, Any],
) -> Solution:
    """:func:`solve` in the per-sample mode (``batch_dims > 0``)."""
    if not isinstance(compact, bool):
        raise TypeError(f"compact: expected True or False, got {compact!r}")
    if compact and batch_dims != 1:
        raise ValueError(f"compact: takes rows out of one batch dimension; got batch_dims={batch_dims}")
    batch_shape = tuple(y0.shape[:batch_dims])
    state_shape = tuple(y0.shape[batch_dims:])
    batch, n = math.prod(batch_shape), math.prod(state_shape)
    times, _ = check_sample_times(t, batch_shape)
    state_dtype = y0.dtype
    dtype = working_dtype(xp, state_dtype)
    y = xp.reshape(y0, (batch, n))
    if dtype != state_dtype:
        y = xp.astype(y, dtype)
    flat_norm = None
    if norm is not None:
        user_norm = check_callable(norm, "norm")

        def flat_norm(scaled: Any) -> Any:
            return xp.reshape(user_norm(xp.reshape(scaled, y0.shape)), (batch,))

    settings = check_settings(
        xp=xp,
        y0=y[0],
        norm=flat_norm,
        state_dtype=state_dtype if dtype != state_dtype else None,
        **settings_arguments,
    )
    check_per_sample(settings, on_step=on_step, jac=jac)
    shaped = BatchShapedFunction(f, batch_shape, state_shape, xp, state_dtype, dtype)
    sample_events = shaped.events(events)
    fun: Callable[[Any, Any], Any] = shaped
    shared_times = len(np.shape(t if not hasattr(t, "shape") else np.empty(tuple(t.shape)))) == 1
    first_value = f(shaped.sample_times(xp.asarray(times[:, 0], dtype=xp.float64, device=device_of(y))), y0)
    check_f_output(first_value, y0, xp)
    if times.shape[1] == 1:
        zeros = xp.zeros(batch_shape, dtype=xp.int64, device=device_of(y))
        solution = Solution(
            ts=xp.asarray(times, dtype=xp.float64, device=device_of(y)),
            ys=xp.reshape(y, (1, batch, n)),
            status=Status.SUCCESS,
            message="a single output time: the initial state, no step taken",
            stats=Stats(nfev=zeros + 1, n_steps=zeros, n_accepted=zeros, n_rejected=zeros, n_forced=zeros),
            dense=None,
            t_final=xp.asarray(times[:, 0], dtype=xp.float64, device=device_of(y)),
            y_final=y,
            sample_status=(Status.SUCCESS,) * batch,
        )
    else:
        f0 = shaped.flatten(first_value)
        if batch_dims == 1 and len(state_shape) == 1 and dtype == state_dtype:
            fun = f  # already on (B, n) states and (B,) times: no wrapper per call
        solution = integrate_per_sample(
            fun,
            y,
            times,
            settings,
            f0=f0,
            sync_every=sync_every,
            compile_step=compile_step,
            compact=compact,
            events=sample_events,
        )
    stats = solution.stats
    return dataclasses.replace(
        solution,
        ts=solution.ts[0] if shared_times else xp.reshape(solution.ts, (*batch_shape, times.shape[1])),
        ys=xp.astype(xp.reshape(solution.ys, (times.shape[1], *y0.shape)), state_dtype),
        t_final=xp.reshape(solution.t_final, batch_shape),
        y_final=xp.astype(xp.reshape(solution.y_final, y0.shape), state_dtype),
        stats=Stats(
            nfev=xp.reshape(stats.nfev, batch_shape),
            n_steps=xp.reshape(stats.n_steps, batch_shape),
            n_accepted=xp.reshape(stats.n_accepted, batch_shape),
            n_rejected=xp.reshape(stats.n_rejected, batch_shape),
            n_forced=xp.reshape(stats.n_forced, batch_shape),
        ),
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
