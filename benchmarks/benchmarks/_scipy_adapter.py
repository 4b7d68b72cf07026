"""scipy's ``solve_ivp`` signature onto :func:`ode_core.solve`: names and layouts only, no feature emulated.

What it maps: scipy's method names (and solver classes) to ode-core's, its default tolerances,
``t_span`` and ``t_eval`` to ``t`` (the initial time first, the span's end last), ``y`` (n, m) to
``ys`` (m, n), every step's time (``t_eval=None``) to the dense output's step times,
``OdeSolution``'s (n,) / (n, k) layout, the status codes, scipy's layout of empty results, and
``nfev`` without the finite-difference Jacobian's evaluations (which scipy leaves out,
``Stats.nfev_jacobian``). Everything else (``args``, ``vectorized``, Jacobians, events, complex and
empty states, spans of zero length, warnings, errors) is ode-core's own, reached through the same
keywords. Used by ``benchmarks/scipy_ivp_suite.py`` to run scipy's own tests against ode-core.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ode_core

__all__ = ["CALLS", "solve_ivp"]

# scipy's names, to ode-core's methods of the same kind (docs/guide/core.md, "Coming from scipy").
METHODS = {"RK23": "bosh3", "RK45": "dopri5", "DOP853": "dopri8", "Radau": "radau5", "BDF": "bdf", "LSODA": "auto"}
STATUS = {"success": 0, "event": 1}
CALLS = [0]  # solve_ivp calls so far (the suite counts a test as applicable when it made one)


class OdeResult(dict):  # type: ignore[type-arg]
    """scipy's result: a dict whose keys are also attributes."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(name) from exc


class OdeSolution:
    """scipy's layout of the dense output: (n,) at a time, (n, k) at k times."""

    def __init__(self, dense: Any) -> None:
        self.dense = dense
        self.ts = np.asarray(dense.t_steps)
        self.t_min, self.t_max = dense.t_min, dense.t_max

    def __call__(self, t: Any) -> Any:
        t = np.asarray(t)
        values = np.asarray(self.dense(t))
        return values.T if t.ndim else values


def _method(method: Any) -> Any:
    if isinstance(method, type):  # a scipy solver class: its name
        method = method.__name__
    return METHODS.get(method, method) if isinstance(method, str) else method


def solve_ivp(
    fun: Any,
    t_span: Any,
    y0: Any,
    method: Any = "RK45",
    t_eval: Any = None,
    dense_output: bool = False,
    events: Any = None,
    vectorized: bool = False,
    args: Any = None,
    **options: Any,
) -> OdeResult:
    """``scipy.integrate.solve_ivp``'s call, solved by :func:`ode_core.solve`."""
    CALLS[0] += 1
    # scipy's defaults (ode-core's are tighter: 1e-6 and 1e-9).
    options.setdefault("rtol", 1e-3)
    options.setdefault("atol", 1e-6)
    t0, t_end = t_span
    keep_first = keep_last = True
    if t_eval is None:
        times = [t0, t_end]
    else:
        # The solve spans t_span whatever t_eval holds (a terminal event may stop it past t_eval's last).
        times = list(np.asarray(t_eval))
        if not times or times[0] != t0:
            times, keep_first = [t0, *times], False
        if times[-1] != t_end:
            times, keep_last = [*times, t_end], False
    solution = ode_core.solve(
        fun,
        y0,
        times,
        method=_method(method),
        events=events,
        dense_output=bool(dense_output or t_eval is None),
        vectorized=vectorized,
        args=args,
        **options,
    )
    size = int(np.size(y0))
    if t_eval is None:
        ts = np.asarray(solution.dense.t_steps)
        ys = np.asarray(solution.dense(ts)).reshape(len(ts), size)
    else:
        ts, ys = np.asarray(solution.ts), np.asarray(solution.ys).reshape(-1, size)
        if not keep_last and len(ts) == len(times):
            ts, ys = ts[:-1], ys[:-1]
        if not keep_first:
            ts, ys = ts[1:], ys[1:]
    status = STATUS.get(solution.status.value, -1)
    stats = solution.stats

    def events_layout(values: Any) -> Any:
        return np.asarray(values).reshape(len(values), size) if len(values) else np.empty((0,))

    return OdeResult(
        t=ts if len(ts) else [],  # scipy's layout of no output
        y=ys.T if len(ts) else [],
        sol=OdeSolution(solution.dense) if dense_output else None,
        t_events=None if solution.t_events is None else [np.asarray(t) for t in solution.t_events],
        y_events=None if solution.y_events is None else [events_layout(y) for y in solution.y_events],
        nfev=stats.nfev - stats.nfev_jacobian,
        njev=stats.njev,
        nlu=stats.nlu,
        status=status,
        message=solution.message,
        success=status >= 0,
    )
