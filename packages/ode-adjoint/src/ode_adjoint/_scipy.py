"""torchdiffeq's ``method="scipy_solver"``: the solve handed to ``scipy.integrate.solve_ivp``.

It is scipy's loop, not ode-core's: torchdiffeq offers it to reach scipy's
solvers (``LSODA``, the default, ``BDF``, ``Radau``, ``RK45``, ...) from
torch code, and so does :func:`ode_adjoint.odeint`. As in torchdiffeq the
result is not differentiable: ``func`` is evaluated on detached tensors and
the solution is a plain tensor (a warning says so when ``y0`` requires
grad). scipy is imported only here, on first use.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from ode_core import Status
from ode_core.validation import check_positive, check_times

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
    func: Any, y0: Any, t: Any, *, rtol: Any = 1e-7, atol: Any = 1e-9, options: Mapping[str, Any] | None = None
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

    Returns
    -------
    Tensor of shape (m, *y0.shape), or a tuple of them
        In ``y0``'s dtype and device, not differentiable.

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
    if any(tensor.requires_grad for tensor in (y0 if state.is_tuple else (y0,))):
        warnings.warn(
            "method 'scipy_solver': scipy's solve is not differentiable; the solution does not require grad",
            UserWarning,
            stacklevel=3,
        )
    try:
        from scipy.integrate import solve_ivp  # the one place ode-adjoint uses scipy
    except ImportError as exc:
        raise ImportError("method 'scipy_solver' needs scipy: pip install scipy") from exc

    flat_func = state.flat_func(func)
    working = flat_y0.dtype

    def numpy_func(time: float, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            value = flat_func(float(time), torch.as_tensor(y, device=state.device).to(working))
        return value.detach().cpu().double().numpy()

    # Passed on only when given: scipy warns that its other solvers ignore min_step.
    steps = {}
    if "min_step" in options:
        steps["min_step"] = check_positive(options["min_step"], "options['min_step']", allow_zero=True)
    if "max_step" in options:
        steps["max_step"] = check_positive(options["max_step"], "options['max_step']", allow_inf=True)
    solution = solve_ivp(
        numpy_func,
        (times[0], times[-1]),
        flat_y0.cpu().double().numpy(),
        method=options.get("solver", "LSODA"),
        t_eval=times,
        rtol=_tolerance(rtol),
        atol=_tolerance(atol),
        **steps,
    )
    if not solution.success:
        status = Status.MAX_STEPS_REACHED if "Excess work" in solution.message else Status.STEP_SIZE_UNDERFLOW
        raise SolverError(status, f"scipy_solver ({options.get('solver', 'LSODA')}): {solution.message}")
    ys = torch.as_tensor(solution.y.T, device=state.device).to(state.dtype)
    return state.unflatten(ys)
