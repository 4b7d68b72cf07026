"""Work-precision diagrams: global error against evaluations of f, and against time, ours and the peers'.

Problems: van der Pol (mu = 1, t in [0, 20]), one period of the Arenstorf
orbit, and a Kepler orbit of eccentricity 0.5 (t in [0, 20]), each with 21
output times. Solvers: ode-core's ``dopri5``, ``tsit5``, ``dopri8`` (DOP853)
and ``dopri87`` (RK8(7)13M) on NumPy arrays; scipy's ``RK45`` and ``DOP853``;
torchdiffeq 0.2.5's ``dopri5`` and ``dopri8`` (which is RK8(7)13M, our
``dopri87``, drawn in its colour) in float64 (under ``torch.no_grad``);
torchode 1.0.1's ``Tsit5`` (float64, a batch of one; tsit5's only peer of the
same method, since scipy and torchdiffeq have none); and, in the time diagram
only, ode-adjoint's ``dopri5``, ``tsit5``, ``dopri8`` and ``dopri87`` on the
same float64 tensors, the like-for-like comparison with the torch peers (ode-adjoint runs
ode-core's algorithm, so its evaluations are the NumPy ones). Every solver runs at
``rtol = 1e-3, 1e-4, ..., 1e-12`` with ``atol = rtol / 1000``.

Error: the largest absolute error over the outputs and components, against
the exact solution (Kepler) or an extended-precision solve (the others; see
:func:`reference_and_floor`; the script prints each reference's floor, below
which errors mean nothing). Evaluations: ode-core's ``stats.nfev``, scipy's ``nfev``,
calls counted by a wrapper for torchdiffeq, torchode's ``n_f_evals``. Time: per tolerance, the solvers
run in turn, round after round (BLAS and torch on one thread), and each
point is a solver's best wall time.

After the plots the script prints, for each peer curve, our error at the
peer's evaluations divided by the peer's error (below 1: our curve lies below
theirs there), and our time to reach the peer's error divided by the peer's
time (below 1: we get there sooner), both interpolated on our curve in
log-log, as a geometric mean and the worst over the peer's points.

Run from the repository root, with ode-core, ode-adjoint, scipy, torchdiffeq,
torchode and matplotlib installed::

    python benchmarks/work_precision.py [--out DIR] [--quick] [--json PATH]

It writes ``work_precision_nfe.png`` and ``work_precision_time.png`` to
``--out`` (default ``docs/_static/benchmarks``, where the docs take them).
"""

from __future__ import annotations

# First: importing the package pins BLAS and OpenMP to one thread before NumPy and torch load.
from benchmarks import _common  # isort: skip

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import matplotlib
import numpy as np
import ode_adjoint
import ode_core
import scipy
import torch
import torchdiffeq
import torchode
from benchmarks._problems import Problem, arenstorf, max_abs_error, two_body, van_der_pol
from scipy.integrate import solve_ivp

matplotlib.use("Agg")
import matplotlib.pyplot as plt

torch.set_num_threads(1)

RTOLS = tuple(10.0**-exponent for exponent in range(3, 13))
QUICK_RTOLS = tuple(10.0**-exponent for exponent in range(3, 13, 3))
ATOL_OVER_RTOL = 1e-3
DEFAULT_OUT = os.path.join("docs", "_static", "benchmarks")


@dataclass(frozen=True)
class Case:
    """One problem in both forms: NumPy (ode-core, scipy) and float64 torch (torchdiffeq, ode-adjoint)."""

    numpy: Problem
    torch_f: Callable[[Any, Any], Any]

    @property
    def torch_y0(self) -> torch.Tensor:
        return torch.from_numpy(self.numpy.y0.copy())

    @property
    def torch_t(self) -> torch.Tensor:
        return torch.from_numpy(self.numpy.times.copy())


def make_cases() -> list[Case]:
    return [
        Case(van_der_pol(), van_der_pol(stack=torch.stack).f),
        Case(arenstorf(), arenstorf(stack=torch.stack).f),
        Case(two_body(), two_body(stack=torch.stack).f),
    ]


def extended_precision_solve(problem: Problem, method: str, rtol: float) -> np.ndarray:
    """ode-core in ``np.longdouble`` (x87 80-bit on x86-64: 64-bit significand) at ``rtol``, as float64."""
    solution = ode_core.solve(
        problem.f,
        problem.y0.astype(np.longdouble),
        problem.times.astype(np.longdouble),
        method=method,
        rtol=rtol,
        atol=rtol * 1e-2,
        dense_output=False,
        max_steps=10**7,
    )
    if solution.status != ode_core.Status.SUCCESS:
        raise RuntimeError(f"reference solve failed on {problem.name}: {solution.message}")
    return np.asarray(solution.ys, dtype=np.float64)


def reference_and_floor(problem: Problem) -> tuple[np.ndarray, float]:
    """The reference solution at the outputs, and how far from the truth it may be.

    The Kepler orbit's is exact (Kepler's equation, float64). The others are
    solved in extended precision, ``dopri8`` at ``rtol = 1e-18``: in float64
    round-off would be the floor (scipy's DOP853 at its tightest tolerance
    lands 4e-10 from it on the Arenstorf orbit, which amplifies every
    perturbation). The tableau's coefficients are float64, which bounds the
    method's consistency near 1e-16 per step; the floor returned is the
    distance to ``tsit5`` (another tableau) in extended precision at
    ``rtol = 1e-17``.
    """
    reference = extended_precision_solve(problem, "dopri8", 1e-18)
    if problem.exact is not None:
        exact = problem.exact(problem.times)
        return exact, max_abs_error(reference, exact)
    return reference, max_abs_error(extended_precision_solve(problem, "tsit5", 1e-17), reference)


@dataclass(frozen=True)
class Solver:
    """A solver's curve: ``solve(case, rtol, atol, f)`` returns the outputs as NumPy, shape (times, n).

    ``f`` replaces the case's right-hand side (a call counter); ``nfev_from_stats`` says the solve reports
    its own count, so the timed solve uses the plain right-hand side and the count comes from the result.
    """

    label: str
    family: str  # "dopri5", "tsit5", "dopri8" or "dopri87": the colour
    library: str  # "ours", "ours (torch)", "scipy", "torchdiffeq" or "torchode": the line style
    solve: Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]
    in_nfe_plot: bool = True


def _ours(method: str) -> Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]:
    def solve(case: Case, rtol: float, atol: float, f: Any) -> tuple[np.ndarray, int | None]:
        problem = case.numpy
        solution = ode_core.solve(
            f or problem.f, problem.y0, problem.times, method=method, rtol=rtol, atol=atol, dense_output=False
        )
        if solution.status != ode_core.Status.SUCCESS:
            raise RuntimeError(f"ode-core {method} on {problem.name} at rtol={rtol:g}: {solution.message}")
        return np.asarray(solution.ys), int(solution.stats.nfev)

    return solve


def _scipy(method: str) -> Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]:
    def solve(case: Case, rtol: float, atol: float, f: Any) -> tuple[np.ndarray, int | None]:
        problem = case.numpy
        times = problem.times
        solution = solve_ivp(
            f or problem.f, (times[0], times[-1]), problem.y0, method=method, t_eval=times, rtol=rtol, atol=atol
        )
        if not solution.success:
            raise RuntimeError(f"scipy {method} on {problem.name} at rtol={rtol:g}: {solution.message}")
        return np.asarray(solution.y).T, int(solution.nfev)

    return solve


def _torchdiffeq(method: str) -> Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]:
    def solve(case: Case, rtol: float, atol: float, f: Any) -> tuple[np.ndarray, int | None]:
        with torch.no_grad():
            ys = torchdiffeq.odeint(f or case.torch_f, case.torch_y0, case.torch_t, rtol=rtol, atol=atol, method=method)
        return ys.numpy(), None

    return solve


def _torchode(step: str) -> Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]:
    """torchode's ``step`` ("Tsit5") with its integral controller, on a batch of one, built per solve."""

    def solve(case: Case, rtol: float, atol: float, f: Any) -> tuple[np.ndarray, int | None]:
        rhs = f or case.torch_f
        term = torchode.ODETerm(lambda t, y: rhs(t[0], y[0])[None])
        solver = torchode.AutoDiffAdjoint(
            getattr(torchode, step)(term=term), torchode.IntegralController(atol=atol, rtol=rtol, term=term)
        )
        problem = torchode.InitialValueProblem(y0=case.torch_y0[None], t_eval=case.torch_t[None])
        with torch.no_grad():
            solution = solver.solve(problem)
        if solution.status.item() != 0:
            raise RuntimeError(f"torchode {step} on {case.numpy.name} at rtol={rtol:g}: status {solution.status}")
        return solution.ys[0].numpy(), int(solution.stats["n_f_evals"].item())

    return solve


def _ours_torch(method: str) -> Callable[[Case, float, float, Any], tuple[np.ndarray, int | None]]:
    def solve(case: Case, rtol: float, atol: float, f: Any) -> tuple[np.ndarray, int | None]:
        with torch.no_grad():
            solution = ode_adjoint.solve(
                f or case.torch_f, case.torch_y0, case.torch_t, rtol=rtol, atol=atol, method=method
            )
        return solution.ys.numpy(), int(solution.stats.nfev)

    return solve


SOLVERS = (
    Solver("ours dopri5", "dopri5", "ours", _ours("dopri5")),
    Solver("ours tsit5", "tsit5", "ours", _ours("tsit5")),
    Solver("ours dopri8", "dopri8", "ours", _ours("dopri8")),
    Solver("ours dopri87", "dopri87", "ours", _ours("dopri87")),
    Solver("scipy RK45", "dopri5", "scipy", _scipy("RK45")),
    Solver("scipy DOP853", "dopri8", "scipy", _scipy("DOP853")),
    Solver("torchdiffeq dopri5", "dopri5", "torchdiffeq", _torchdiffeq("dopri5")),
    Solver("torchdiffeq dopri8", "dopri87", "torchdiffeq", _torchdiffeq("dopri8")),
    Solver("torchode tsit5", "tsit5", "torchode", _torchode("Tsit5")),
    Solver("ours dopri5 (torch)", "dopri5", "ours (torch)", _ours_torch("dopri5"), in_nfe_plot=False),
    Solver("ours tsit5 (torch)", "tsit5", "ours (torch)", _ours_torch("tsit5"), in_nfe_plot=False),
    Solver("ours dopri8 (torch)", "dopri8", "ours (torch)", _ours_torch("dopri8"), in_nfe_plot=False),
    Solver("ours dopri87 (torch)", "dopri87", "ours (torch)", _ours_torch("dopri87"), in_nfe_plot=False),
)


@dataclass
class Curve:
    """One solver on one problem: a point per tolerance."""

    rtols: list[float] = field(default_factory=list)
    errors: list[float] = field(default_factory=list)
    nfev: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def measure(case: Case, reference: np.ndarray, rtols: tuple[float, ...], settings: dict[str, Any]) -> dict[str, Curve]:
    curves = {solver.label: Curve() for solver in SOLVERS}
    for rtol in rtols:
        atol = rtol * ATOL_OVER_RTOL
        calls = {
            solver.label: (lambda solver=solver, rtol=rtol, atol=atol: solver.solve(case, rtol, atol, None))
            for solver in SOLVERS
        }
        timings = _common.round_robin_times(calls, **settings)
        for solver in SOLVERS:
            ys, nfev = timings.results[solver.label]
            if nfev is None:  # count in one more, untimed solve
                counter = _common.CountingRhs(case.torch_f)
                solver.solve(case, rtol, atol, counter)
                nfev = counter.calls
            curve = curves[solver.label]
            curve.rtols.append(rtol)
            curve.errors.append(max_abs_error(ys, reference))
            curve.nfev.append(nfev)
            curve.seconds.append(timings.best(solver.label))
        print(f"  {case.numpy.name}: rtol={rtol:.0e} done ({timings.rounds} rounds)", flush=True)
    return curves


# --------------------------------------------------------------------------- plots and comparison

COLOURS = {"dopri5": "tab:blue", "tsit5": "tab:green", "dopri8": "tab:red", "dopri87": "tab:purple"}
# The legend says which of our methods each peer curve runs, or how it differs from ours of its colour.
LEGEND_NOTES = {
    "torchdiffeq dopri5": " (its own error estimate, 2/3 of ours)",
    "torchdiffeq dopri8": " (RK8(7)13M = our dopri87)",
    "scipy RK45": " (= our dopri5)",
    "scipy DOP853": " (= our dopri8)",
    "torchode tsit5": " (= our tsit5)",
}
STYLES = {
    "ours": {"linestyle": "-", "marker": "o", "linewidth": 2.0},
    "ours (torch)": {"linestyle": "-", "marker": "^", "linewidth": 1.0, "markerfacecolor": "none"},
    "scipy": {"linestyle": "--", "marker": "s", "linewidth": 1.2, "markerfacecolor": "none"},
    "torchdiffeq": {"linestyle": ":", "marker": "x", "linewidth": 1.5},
    "torchode": {"linestyle": "-.", "marker": "d", "linewidth": 1.2, "markerfacecolor": "none"},
}


def plot(results: dict[str, dict[str, Curve]], work: str, path: str, subtitle: str) -> None:
    """One panel per problem, error (y) against ``work`` ("nfev" or "seconds", x), log-log."""
    figure, axes = plt.subplots(1, len(results), figsize=(5.2 * len(results), 5.4), squeeze=False)
    for axis, (problem_name, curves) in zip(axes[0], results.items()):
        for solver in SOLVERS:
            if work == "nfev" and not solver.in_nfe_plot:
                continue
            curve = curves[solver.label]
            x = curve.nfev if work == "nfev" else curve.seconds
            axis.loglog(
                x,
                curve.errors,
                label=solver.label + LEGEND_NOTES.get(solver.label, ""),
                color=COLOURS[solver.family],
                markersize=4,
                **STYLES[solver.library],
            )
        axis.set_title(problem_name)
        axis.set_xlabel("evaluations of f" if work == "nfev" else "wall time per solve (s)")
        axis.set_ylabel("max abs error at the 21 outputs")
        axis.grid(True, which="major", alpha=0.3)
    # One legend for all panels, below them, so that it hides no curve.
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    what = "evaluations" if work == "nfev" else "time"
    figure.suptitle(f"Work-precision: error against {what} (lower left is better)\n{subtitle}", fontsize=10)
    figure.tight_layout(rect=(0.0, 0.13, 1.0, 1.0))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


def _interpolate(x_values: list[float], y_values: list[float], at: float) -> float | None:
    """``y(at)`` on the log-log polyline through the points (sorted by x), or None outside their range."""
    log_x = np.log(np.asarray(x_values, dtype=float))
    log_y = np.log(np.asarray(y_values, dtype=float))
    order = np.argsort(log_x)
    log_x, log_y = log_x[order], log_y[order]
    if not (at > 0 and log_x[0] <= math.log(at) <= log_x[-1]):
        return None
    return math.exp(float(np.interp(math.log(at), log_x, log_y)))


def error_ratio_at_equal_evaluations(ours: Curve, peer: Curve) -> list[float]:
    """At each of the peer's points inside our range: our error there (interpolated) over the peer's error."""
    ratios = []
    for nfev, error in zip(peer.nfev, peer.errors):
        our_error = _interpolate(ours.nfev, ours.errors, nfev)
        if our_error is not None and error > 0:
            ratios.append(our_error / error)
    return ratios


def time_ratio_at_equal_error(ours: Curve, peer: Curve) -> list[float]:
    """At each of the peer's points inside our range: our time to reach the peer's error over the peer's time."""
    ratios = []
    for seconds, error in zip(peer.seconds, peer.errors):
        our_seconds = _interpolate(ours.errors, ours.seconds, error)
        if our_seconds is not None:
            ratios.append(our_seconds / seconds)
    return ratios


COMPARISONS = (
    ("ours dopri5", "scipy RK45"),
    ("ours dopri5", "torchdiffeq dopri5"),
    ("ours tsit5", "scipy RK45"),
    ("ours tsit5", "torchdiffeq dopri5"),
    ("ours tsit5", "torchode tsit5"),
    ("ours dopri8", "scipy DOP853"),
    ("ours dopri8", "torchdiffeq dopri8"),
    ("ours dopri87", "torchdiffeq dopri8"),
    ("ours dopri5 (torch)", "torchdiffeq dopri5"),
    ("ours dopri8 (torch)", "torchdiffeq dopri8"),
    ("ours dopri87 (torch)", "torchdiffeq dopri8"),
    ("ours tsit5 (torch)", "torchode tsit5"),
)


def print_comparisons(results: dict[str, dict[str, Curve]]) -> None:
    """The curves' positions in numbers: geometric mean and worst over the peer's points (below 1: ours ahead)."""
    print()
    print("error: our error / the peer's at the peer's evaluations; time: our time / the peer's at the peer's error")
    for what in ("error", "time"):
        for problem_name, curves in results.items():
            for ours, peer in COMPARISONS:
                if what == "error" and "(torch)" in ours:
                    continue  # the same evaluations as the NumPy curve
                if what == "error":
                    ratios = error_ratio_at_equal_evaluations(curves[ours], curves[peer])
                else:
                    ratios = time_ratio_at_equal_error(curves[ours], curves[peer])
                summary = (
                    f"{_common.geometric_mean(ratios):8.3g}  worst {max(ratios):8.3g}  ({len(ratios)} points)"
                    if ratios
                    else "no overlap"
                )
                print(f"  {what:<5} {problem_name:<26} {ours:<20} vs {peer:<19} {summary}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the PNGs (default {DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true", help="4 tolerances and fewer repeats (a smoke run)")
    parser.add_argument("--json", metavar="PATH", help="also write every point as JSON")
    args = parser.parse_args(argv)
    rtols = QUICK_RTOLS if args.quick else RTOLS
    if args.quick:
        settings = {"min_time": 0.02, "min_repeats": 1, "max_repeats": 3}
    else:
        settings = {"min_time": 0.2, "min_repeats": 3, "max_repeats": 50, "max_case_time": 20.0}

    machine = _common.machine_info(
        {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "torch": torch.__version__,
            "torchdiffeq": torchdiffeq.__version__,
            "torchode": getattr(torchode, "__version__", "?"),
            "ode_core": ode_core.__version__,
            "ode_adjoint": ode_adjoint.__version__,
        }
    )
    print(f"# work-precision, ode-core {machine['ode_core']} vs scipy, torchdiffeq and torchode -- {machine['date']}")
    print(_common.machine_line(machine))
    started = time.perf_counter()
    results: dict[str, dict[str, Curve]] = {}
    for case in make_cases():
        problem = case.numpy
        reference, floor = reference_and_floor(problem)
        print(f"# {problem.name}: the reference is good to about {floor:.1e}", flush=True)
        results[problem.name] = measure(case, reference, rtols, settings)
    total = time.perf_counter() - started

    subtitle = (
        f"{machine['cpu']}, one thread; numpy {machine['numpy']}, scipy {machine['scipy']}, "
        f"torch {machine['torch']} (float64), torchdiffeq {machine['torchdiffeq']}, "
        f"torchode {machine['torchode']}; {machine['date'][:10]}"
    )
    plot(results, "nfev", os.path.join(args.out, "work_precision_nfe.png"), subtitle)
    plot(results, "seconds", os.path.join(args.out, "work_precision_time.png"), subtitle)
    print_comparisons(results)
    print(f"total benchmark time: {total:.0f} s")
    if args.json:
        payload = {
            "machine": machine,
            "settings": settings,
            "results": {
                name: {label: vars(curve) for label, curve in curves.items()} for name, curves in results.items()
            },
        }
        _common.write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
