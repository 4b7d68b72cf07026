"""Stiff problems: ode-core's implicit ``kvaerno5``/``kvaerno3`` against scipy's ``Radau`` and ``BDF``.

Problems: Robertson's chemical kinetics (3 states, t in [0, 1e5]) at
``rtol, atol = 1e-6, 1e-10`` and ``1e-4, 1e-8``, and van der Pol with
mu = 1000 (2 states, t in [0, 3000]) at ``rtol = atol = 1e-6`` and ``1e-4``.
Every solver gets the same tolerances and the same 11 output times, once
with a finite-difference Jacobian (``jac=None``, each solver's own) and once
with the analytic ``jac``; ode-core runs with ``dense_output=False``.

Reported per solver: wall time (min / median); ``/Radau`` and ``/BDF``, the
ratio of ode-core's minimum time to scipy's with the same kind of Jacobian
(<= 1.0: ode-core is no slower); NFE, the calls of ``f`` counted by a wrapper
in one untimed extra solve (scipy's own ``nfev`` leaves out the calls its
finite-difference Jacobian makes; ode-core's includes them); njev and nlu as
each solver reports them; accepted steps (ode-core's rejected ones in
brackets; scipy reports none), scipy's from one solve without ``t_eval``
(``len(sol.t) - 1``); and the error at the output times in tolerance units,
``max |y - ref| / (atol + rtol |ref|)``, against scipy ``Radau`` with the
analytic Jacobian at ``rtol = 1e-13``.

Method, for a shared and noisy machine: BLAS pinned to one thread; for each
problem and tolerance, one warm-up solve of each of the 8 solvers, then
rounds that run all 8 in turn, until there are at least ``min_repeats``
rounds and the fastest solver has run for at least ``min_time`` seconds in
all (at most ``max_repeats`` rounds).

Run from the repository root, with ode-core and scipy installed::

    python benchmarks/bench_stiff_vs_scipy.py [--quick] [--json PATH]
"""

from __future__ import annotations

import os

# Before NumPy is imported: both sides single-threaded.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import ode_core  # noqa: E402
import scipy  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402

OURS_METHODS = ("kvaerno5", "kvaerno3")
SCIPY_METHODS = ("Radau", "BDF")
N_OUTPUTS = 11
REFERENCE_RTOL = 1e-13


# --------------------------------------------------------------------------- problems
# Copies of packages/ode-core/tests/_stiff_problems.py (benchmarks do not import tests).


def robertson(t: float, y: np.ndarray) -> np.ndarray:
    """Robertson's chemical kinetics (Hairer & Wanner, Solving ODEs II, IV.1, ROBER)."""
    return np.array(
        [
            -0.04 * y[0] + 1e4 * y[1] * y[2],
            0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
            3e7 * y[1] ** 2,
        ]
    )


def robertson_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [-0.04, 1e4 * y[2], 1e4 * y[1]],
            [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
            [0.0, 6e7 * y[1], 0.0],
        ]
    )


VAN_DER_POL_MU = 1000.0


def van_der_pol(t: float, y: np.ndarray) -> np.ndarray:
    """Van der Pol's oscillator ``y'' = mu (1 - y^2) y' - y`` with mu = 1000."""
    return np.array([y[1], VAN_DER_POL_MU * (1.0 - y[0] ** 2) * y[1] - y[0]])


def van_der_pol_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    return np.array([[0.0, 1.0], [-2.0 * VAN_DER_POL_MU * y[0] * y[1] - 1.0, VAN_DER_POL_MU * (1.0 - y[0] ** 2)]])


@dataclass(frozen=True)
class Problem:
    name: str
    f: Callable[[float, np.ndarray], np.ndarray]
    jac: Callable[[float, np.ndarray], np.ndarray]
    y0: np.ndarray
    t_end: float
    tolerances: tuple[tuple[float, float], ...]  # (rtol, atol) pairs
    reference_atol: float

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, N_OUTPUTS)


PROBLEMS = (
    Problem(
        "Robertson (n=3)",
        robertson,
        robertson_jacobian,
        np.array([1.0, 0.0, 0.0]),
        1e5,
        ((1e-6, 1e-10), (1e-4, 1e-8)),
        1e-16,  # y[1] stays below 4e-5
    ),
    Problem(
        "van der Pol mu=1000 (n=2)",
        van_der_pol,
        van_der_pol_jacobian,
        np.array([2.0, 0.0]),
        3000.0,
        ((1e-6, 1e-6), (1e-4, 1e-4)),
        1e-13,
    ),
)


# --------------------------------------------------------------------------- solvers


@dataclass(frozen=True)
class Solver:
    library: str  # "ode-core" or "scipy"
    method: str
    analytic_jac: bool

    @property
    def label(self) -> str:
        return f"{self.library} {self.method}"

    @property
    def jac_label(self) -> str:
        return "analytic" if self.analytic_jac else "FD"


SOLVERS = tuple(
    Solver(library, method, analytic_jac)
    for analytic_jac in (False, True)
    for library, methods in (("ode-core", OURS_METHODS), ("scipy", SCIPY_METHODS))
    for method in methods
)


class CountingRhs:
    """``f`` with a call counter (used only in the untimed solves)."""

    def __init__(self, f: Callable[[float, np.ndarray], np.ndarray]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, t: float, y: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.f(t, y)


def solve_once(solver: Solver, problem: Problem, f: Callable, rtol: float, atol: float, *, t_eval: bool = True) -> Any:
    jac = problem.jac if solver.analytic_jac else None
    times = problem.times
    if solver.library == "ode-core":
        return ode_core.solve(
            f, problem.y0, times, method=solver.method, rtol=rtol, atol=atol, jac=jac, dense_output=False
        )
    return solve_ivp(
        f,
        (float(times[0]), float(times[-1])),
        problem.y0,
        method=solver.method,
        t_eval=times if t_eval else None,
        rtol=rtol,
        atol=atol,
        jac=jac,
    )


def reference(problem: Problem) -> np.ndarray:
    times = problem.times
    ref = solve_ivp(
        problem.f,
        (float(times[0]), float(times[-1])),
        problem.y0,
        method="Radau",
        t_eval=times,
        rtol=REFERENCE_RTOL,
        atol=problem.reference_atol,
        jac=problem.jac,
    )
    if not ref.success:
        raise RuntimeError(f"reference solve failed on {problem.name}: {ref.message}")
    return np.asarray(ref.y).T


# --------------------------------------------------------------------------- timing


def round_robin_times(
    calls: list[Callable[[], Any]], min_time: float, min_repeats: int, max_repeats: int
) -> list[list[float]]:
    """Run the calls in turn, round after round; see the module docstring for when it stops."""
    for call in calls:  # warm-up: caches, imports, branch predictors
        call()
    gc.collect()
    times: list[list[float]] = [[] for _ in calls]
    while True:
        for call, record in zip(calls, times):
            start = time.perf_counter()
            call()
            record.append(time.perf_counter() - start)
        rounds = len(times[0])
        if rounds >= max_repeats:
            break
        if rounds >= min_repeats and min(sum(record) for record in times) >= min_time:
            break
    return times


def run_case(problem: Problem, rtol: float, atol: float, ref: np.ndarray, settings: dict[str, Any]) -> list[dict]:
    calls = [(lambda solver=solver: solve_once(solver, problem, problem.f, rtol, atol)) for solver in SOLVERS]
    times = round_robin_times(calls, settings["min_time"], settings["min_repeats"], settings["max_repeats"])

    rows = []
    for solver, record in zip(SOLVERS, times):
        counter = CountingRhs(problem.f)
        sol = solve_once(solver, problem, counter, rtol, atol)
        if solver.library == "ode-core":
            success = sol.status == ode_core.Status.SUCCESS
            ys = np.asarray(sol.ys)
            reported_nfev, njev, nlu = sol.stats.nfev, sol.stats.njev, sol.stats.nlu
            steps, rejected = sol.stats.n_accepted, sol.stats.n_rejected
        else:
            success = bool(sol.success)
            ys = np.asarray(sol.y).T
            reported_nfev, njev, nlu = sol.nfev, sol.njev, sol.nlu
            steps_sol = solve_once(solver, problem, problem.f, rtol, atol, t_eval=False)
            steps, rejected = len(steps_sol.t) - 1, None
        if ys.shape == ref.shape:
            error = float(np.max(np.abs(ys - ref) / (atol + rtol * np.abs(ref))))
        else:
            success, error = False, math.nan
        rows.append(
            {
                "problem": problem.name,
                "rtol": rtol,
                "atol": atol,
                "library": solver.library,
                "method": solver.method,
                "jac": solver.jac_label,
                "min_ms": 1e3 * min(record),
                "median_ms": 1e3 * statistics.median(record),
                "nfev": counter.calls,
                "reported_nfev": int(reported_nfev),
                "njev": int(njev),
                "nlu": int(nlu),
                "steps": int(steps),
                "rejected": rejected if rejected is None else int(rejected),
                "error_tol_units": error,
                "repeats": len(record),
                "success": success,
            }
        )

    by_key = {(row["method"], row["jac"]): row for row in rows}
    for row in rows:
        for scipy_method in SCIPY_METHODS:
            key = f"ratio_{scipy_method}"
            if row["library"] == "ode-core":
                row[key] = row["min_ms"] / by_key[(scipy_method, row["jac"])]["min_ms"]
            else:
                row[key] = None
    return rows


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, Any]:
    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "ode_core": ode_core.__version__,
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
    }


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| problem | rtol / atol | solver | jac | ms (min / median) | /Radau | /BDF | NFE | njev | nlu "
        "| steps (rej) | err / tol |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        flag = "" if row["success"] else " (FAILED)"
        steps = str(row["steps"]) if row["rejected"] is None else f"{row['steps']} ({row['rejected']})"
        lines.append(
            f"| {row['problem']} | {row['rtol']:.0e} / {row['atol']:.0e} | {row['library']} {row['method']} "
            f"| {row['jac']} | {row['min_ms']:.1f} / {row['median_ms']:.1f} "
            f"| {_ratio(row['ratio_Radau'])} | {_ratio(row['ratio_BDF'])} | {row['nfev']} | {row['njev']} "
            f"| {row['nlu']} | {steps} | {row['error_tol_units']:.2g}{flag} |"
        )
    return "\n".join(lines)


def geometric_mean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and table as JSON")
    args = parser.parse_args(argv)

    if args.quick:
        settings = {"min_time": 0.05, "min_repeats": 2, "max_repeats": 20}
    else:
        settings = {"min_time": 1.0, "min_repeats": 7, "max_repeats": 200}

    machine = machine_info()
    print(f"# ode-core {machine['ode_core']} implicit vs scipy Radau/BDF -- {machine['date']}")
    print(
        f"# {machine['platform']}; {machine['cpu']}; cpu_count={machine['cpu_count']} usable={machine['cpus_usable']}"
    )
    print(
        f"# python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}; BLAS threads=1; "
        f"{N_OUTPUTS} output times; ours dense_output=False; reference scipy Radau rtol={REFERENCE_RTOL:g}"
    )
    print(
        f"# per case: warm-up, then rounds of all {len(SOLVERS)} solvers, >= {settings['min_repeats']} rounds and "
        f">= {settings['min_time']} s for the fastest; /Radau, /BDF = ours min / scipy min (same jac); "
        "NFE = counted calls of f (FD Jacobian included); err / tol = max |y - ref| / (atol + rtol |ref|)"
    )
    print(flush=True)

    rows: list[dict] = []
    started = time.perf_counter()
    for problem in PROBLEMS:
        ref = reference(problem)
        for rtol, atol in problem.tolerances:
            case_rows = run_case(problem, rtol, atol, ref, settings)
            rows.extend(case_rows)
            fastest = min(case_rows, key=lambda row: row["min_ms"])
            print(
                f"  {problem.name:<26} rtol={rtol:.0e} atol={atol:.0e}  fastest: {fastest['library']} "
                f"{fastest['method']} ({fastest['jac']}) {fastest['min_ms']:.1f} ms  "
                f"({case_rows[0]['repeats']} rounds)",
                flush=True,
            )
    total = time.perf_counter() - started

    print()
    print(markdown_table(rows))
    print()
    for method in OURS_METHODS:
        for scipy_method in SCIPY_METHODS:
            ratios = [r[f"ratio_{scipy_method}"] for r in rows if r["method"] == method]
            print(
                f"geometric mean ratio {method} / {scipy_method}: {geometric_mean(ratios):.2f}  "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
            )
    failures = [r for r in rows if not r["success"]]
    if failures:
        print(f"WARNING: {len(failures)} solve(s) did not succeed")
    print(f"total benchmark time: {total:.0f} s")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "settings": settings, "results": rows}, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
