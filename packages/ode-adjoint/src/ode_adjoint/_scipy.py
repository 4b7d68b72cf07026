"""torchdiffeq's ``method="scipy_solver"``: the solve handed to ``scipy.integrate.solve_ivp``.

It is scipy's loop, not ode-core's: torchdiffeq offers it to reach scipy's
solvers (``LSODA``, the default, ``BDF``, ``Radau``, ``RK45``, ...) from
torch code, and so does :func:`ode_adjoint.odeint`. As in torchdiffeq,
``odeint`` does not differentiate it (``func`` is evaluated on detached
tensors, a warning says so when ``y0`` requires grad) and ``odeint_adjoint``
does, by the adjoint equations solved backwards with the same scipy solver
(:func:`ode_adjoint._engines.adjoint_dynamics`, the adjoint engine's
right-hand side), one output interval at a time. scipy is imported only
here, on first use.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ode_core import Status
from ode_core.validation import check_positive, check_times

from ._engines import adjoint_dynamics
from ._solution import SolverError
from ._state import FlatState

__all__ = ["SCIPY_SOLVER", "scipy_odeint"]

SCIPY_SOLVER = "scipy_solver"
"""The method name that hands the solve to scipy."""

# torchdiffeq's ScipyWrapperODESolver takes these; norm, grid_points and eps it drops.
_OPTIONS = {"solver", "min_step", "max_step"}
_DROPPED = {"norm", "grid_points", "eps"}
_CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")


def _tolerance(value: Any) -> Any:
    """A tolerance as solve_ivp takes it: a float, or a float64 array per element."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy() if value.numel() > 1 else float(value)
    return value


def scipy_odeint(
    func: Any,
    y0: Any,
    t: Any,
    *,
    rtol: Any = 1e-7,
    atol: Any = 1e-9,
    options: Mapping[str, Any] | None = None,
    adjoint: bool = False,
    adjoint_params: Any = None,
) -> Any:
    """``y(t)`` by ``scipy.integrate.solve_ivp(method=options["solver"])``, as torchdiffeq's scipy_solver.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` on torch tensors, as for :func:`ode_adjoint.odeint`.
    y0 : Tensor or tuple of Tensor
    t : 1-D Tensor or sequence
        Output times, strictly monotonic.
    rtol, atol : float or Tensor
    options : mapping, optional
        ``solver`` (a name or class ``solve_ivp`` takes; default
        ``"LSODA"``), ``min_step``, ``max_step``.
    adjoint : bool
        Differentiate by the adjoint (``odeint_adjoint``), with respect to
        ``y0``, ``t`` and ``adjoint_params``.
    adjoint_params : sequence of Tensor, optional
        Default: ``func``'s parameters, for a module.

    Returns
    -------
    Tensor of shape (m, *y0.shape), or a tuple of them
        In ``y0``'s dtype and device; differentiable with ``adjoint``.

    Raises
    ------
    SolverError
        scipy's solve failed (its message).
    """
    options = dict(options or {})
    unknown = set(options) - _OPTIONS - _DROPPED
    if unknown:
        warnings.warn(f"method 'scipy_solver': options {sorted(unknown)} are not used", UserWarning, stacklevel=3)
    given = [name for name in _CALLBACKS if getattr(func, name, None) is not None]
    if given:
        warnings.warn(
            f"method 'scipy_solver': scipy's loop calls no callbacks; "
            f"func.{' and func.'.join(given)} will not be called",
            UserWarning,
            stacklevel=3,
        )
    state = FlatState(y0)
    times, _ = check_times(t)
    flat_y0 = state.flatten(y0).detach()
    if len(times) == 1:
        return state.unflatten(flat_y0[None])
    solver = _Solver(options, rtol, atol, state)
    if adjoint:
        parameters = _adjoint_parameters(func, adjoint_params)
        time_tensor = t if isinstance(t, torch.Tensor) else torch.as_tensor(times, dtype=torch.float64)
        flat = _ScipyAdjoint.apply(solver, state.flat_func(func), times, time_tensor, state.flatten(y0), *parameters)
        return state.unflatten(flat)
    if any(tensor.requires_grad for tensor in (y0 if state.is_tuple else (y0,))):
        warnings.warn(
            "method 'scipy_solver': scipy's solve is not differentiable; the solution does not require grad "
            "(odeint_adjoint differentiates it)",
            UserWarning,
            stacklevel=3,
        )
    return state.unflatten(solver.solve(state.flat_func(func), flat_y0, times))


def _adjoint_parameters(func: Any, adjoint_params: Any) -> tuple[torch.Tensor, ...]:
    """The tensors the adjoint differentiates: ``adjoint_params``, else a module's parameters."""
    if adjoint_params is not None:
        return tuple(adjoint_params)
    if isinstance(func, torch.nn.Module):
        return tuple(p for p in func.parameters() if p.requires_grad)
    return ()


class _Solver:
    """One configuration of ``solve_ivp`` (solver, tolerances, step bounds) for torch functions."""

    def __init__(self, options: Mapping[str, Any], rtol: Any, atol: Any, state: FlatState) -> None:
        try:
            from scipy.integrate import solve_ivp  # the one place ode-adjoint uses scipy
        except ImportError as exc:
            raise ImportError("method 'scipy_solver' needs scipy: pip install scipy") from exc
        self.solve_ivp = solve_ivp
        self.method = options.get("solver", "LSODA")
        self.rtol, self.atol = _tolerance(rtol), _tolerance(atol)
        self.device = state.device
        # Passed on only when given: scipy warns that its other solvers ignore min_step.
        self.steps = {}
        if "min_step" in options:
            self.steps["min_step"] = check_positive(options["min_step"], "options['min_step']", allow_zero=True)
        if "max_step" in options:
            self.steps["max_step"] = check_positive(options["max_step"], "options['max_step']", allow_inf=True)

    def solve(
        self, flat_func: Any, y0: torch.Tensor, times: list[float], tolerances: tuple[Any, Any] | None = None
    ) -> torch.Tensor:
        """The flat solution at ``times`` (m, n), in ``y0``'s dtype, without a graph.

        Raises
        ------
        SolverError
            scipy's solve failed (its message).
        """
        working = y0.dtype

        def numpy_func(time: float, y: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                value = flat_func(float(time), torch.as_tensor(y, device=self.device).to(working))
            result: np.ndarray = value.detach().cpu().double().numpy()
            return result

        rtol, atol = tolerances or (self.rtol, self.atol)
        solution = self.solve_ivp(
            numpy_func,
            (times[0], times[-1]),
            y0.detach().cpu().double().numpy(),
            method=self.method,
            t_eval=times,
            rtol=rtol,
            atol=atol,
            **self.steps,
        )
        if not solution.success:
            status = Status.MAX_STEPS_REACHED if "Excess work" in solution.message else Status.STEP_SIZE_UNDERFLOW
            raise SolverError(status, f"scipy_solver ({self.method}): {solution.message}")
        return torch.as_tensor(solution.y.T, device=self.device).to(working)


def _augmented(tolerance: Any, n: int, p: int, pick: Any) -> Any:
    """A tolerance of the state (a float, or one per element) for ``[y, a_y, a_theta]``: the state's
    for ``y`` and ``a_y``, one value (``pick`` of them) for the parameter part."""
    if not np.ndim(tolerance):
        return tolerance
    values = np.broadcast_to(tolerance, (n,))
    return np.concatenate((values, values, np.full(p, float(pick(values)))))


class _ScipyAdjoint(torch.autograd.Function):
    """scipy's solve forward; backward, the adjoint equations by the same solver, interval by interval."""

    @staticmethod
    def forward(
        ctx: Any,
        solver: _Solver,
        func: Any,
        times: list[float],
        time_tensor: torch.Tensor,
        y0: torch.Tensor,
        *parameters: torch.Tensor,
    ) -> torch.Tensor:
        ys = solver.solve(func, y0.detach(), times)
        ctx.solver, ctx.func, ctx.times, ctx.time_dtype = solver, func, times, time_tensor.dtype
        ctx.save_for_backward(ys, *parameters)
        return ys

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor) -> tuple[Any, ...]:
        ys, *parameters = ctx.saved_tensors
        solver, func, times = ctx.solver, ctx.func, ctx.times
        n = ys.shape[1]
        sizes = [p.numel() for p in parameters]
        dynamics = adjoint_dynamics(func, parameters, n, ys.dtype)
        adjoint = grad_ys[-1]
        parameter_adjoint = ys.new_zeros(sum(sizes))
        grad_times = ys.new_zeros(len(times))
        # The adjoint's components get the forward's tolerances, its parameter
        # part (which scipy cannot leave out of its norm) the absolute one.
        rtol, atol = _augmented(solver.rtol, n, sum(sizes), np.min), _augmented(solver.atol, n, sum(sizes), np.max)
        with torch.no_grad():
            for i in range(len(times) - 1, 0, -1):
                # y(t_i) moves with t_i at the slope there.
                grad_times[i] = grad_times[i] + grad_ys[i] @ func(times[i], ys[i])
                start = torch.cat((ys[i], adjoint, parameter_adjoint))
                end = solver.solve(dynamics, start, [times[i], times[i - 1]], (rtol, atol))[-1]
                adjoint = end[n : 2 * n] + grad_ys[i - 1]
                parameter_adjoint = end[2 * n :]
            # Starting later shifts every output back along the flow: -a(t0) f(t0, y0).
            grad_times[0] = -((adjoint - grad_ys[0]) @ func(times[0], ys[0]))
        parameter_grads = [
            g.reshape(p.shape).to(p.dtype) for g, p in zip(torch.split(parameter_adjoint, sizes), parameters)
        ]
        return (None, None, None, grad_times.to(ctx.time_dtype), adjoint, *parameter_grads)
