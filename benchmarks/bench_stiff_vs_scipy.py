"""Stiff problems: ode-core's implicit methods (kvaerno5, kvaerno3, radau5, bdf) against scipy's ``Radau`` and ``BDF``.

Problems: Robertson's chemical kinetics (3 states, t in [0, 1e5]) at
``rtol, atol = 1e-6, 1e-10`` and ``1e-4, 1e-8``, van der Pol with
mu = 1000 (2 states, t in [0, 3000]) at ``rtol = atol = 1e-6`` and ``1e-4``,
and HIRES (8 states) at ``1e-6, 1e-10`` and ``1e-4, 1e-8``. Then two large
problems with sparse Jacobians, MEDAKZO (400 states) and the 2-D
Brusselator (2048 states), at ``1e-6, 1e-9``: ``radau5`` and ``bdf``
against ``Radau`` and ``BDF``, every solver with ``jac_sparsity`` (grouped
finite differences, sparse LU), against scipy ``Radau`` at ``rtol = 1e-10``.
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
problem and tolerance, one warm-up solve of each of the 10 solvers, then
rounds that run all 10 in turn, until there are at least ``min_repeats``
rounds and the fastest solver has run for at least ``min_time`` seconds in
all (at most ``max_repeats`` rounds).

The asv suite runs the same cases (``benchmarks/benchmarks/stiff.py`` and
``peers.py``); this script prints them as one table.

Run from the repository root, with ode-core and scipy installed::

    python benchmarks/bench_stiff_vs_scipy.py [--quick] [--json PATH]
"""

from __future__ import annotations

# First: importing the package pins BLAS to one thread before NumPy loads.
from benchmarks import _common  # isort: skip

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ode_core
import scipy
from benchmarks._problems import (
    LARGE_STIFF_PROBLEMS,
    STIFF_PROBLEMS,
    STIFF_REFERENCE_RTOL,
    StiffProblem,
    error_in_tolerance_units,
    stiff_reference,
)
from scipy.integrate import solve_ivp

OURS_METHODS = ("kvaerno5", "kvaerno3", "radau5", "bdf")
SCIPY_METHODS = ("Radau", "BDF")
PROBLEMS = tuple(STIFF_PROBLEMS.values())
# The large sparse problems: radau5 and bdf against Radau and BDF, each with jac_sparsity.
LARGE_PROBLEMS = tuple(LARGE_STIFF_PROBLEMS.values())
LARGE_OURS = ("radau5", "bdf")


# --------------------------------------------------------------------------- solvers


@dataclass(frozen=True)
class Solver:
    library: str  # "ode-core" or "scipy"
    method: str
    analytic_jac: bool

    @property
    def label(self) -> str:
        return f"{self.library} {self.method}"

    sparse: bool = False  # FD grouped by the problem's sparsity (jac_sparsity), sparse LU

    @property
    def jac_label(self) -> str:
        return "analytic" if self.analytic_jac else ("FD, sparse" if self.sparse else "FD")


SOLVERS = tuple(
    Solver(library, method, analytic_jac)
    for analytic_jac in (False, True)
    for library, methods in (("ode-core", OURS_METHODS), ("scipy", SCIPY_METHODS))
    for method in methods
)
LARGE_SOLVERS = tuple(
    Solver(library, method, False, sparse=True)
    for library, methods in (("ode-core", LARGE_OURS), ("scipy", SCIPY_METHODS))
    for method in methods
)


def solve_once(
    solver: Solver, problem: StiffProblem, f: Callable, rtol: float, atol: float, *, t_eval: bool = True
) -> Any:
    jac = problem.jac if solver.analytic_jac else None
    times = problem.times
    sparsity = {"jac_sparsity": SPARSITY[problem.key]} if solver.sparse else {}
    if solver.library == "ode-core":
        return ode_core.solve(
            f, problem.y0, times, method=solver.method, rtol=rtol, atol=atol, jac=jac, dense_output=False, **sparsity
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
        **sparsity,
    )


# Each large problem's pattern, built once (scipy.sparse matrices).
SPARSITY = {problem.key: problem.sparsity() for problem in LARGE_PROBLEMS if problem.sparsity is not None}


def run_case(problem: StiffProblem, rtol: float, atol: float, ref: np.ndarray, settings: dict[str, Any]) -> list[dict]:
    solvers = LARGE_SOLVERS if problem.sparsity is not None else SOLVERS
    calls = {
        f"{solver.label} {solver.jac_label}": (lambda solver=solver: solve_once(solver, problem, problem.f, rtol, atol))
        for solver in solvers
    }
    timings = _common.round_robin_times(
        calls,
        min_time=settings["min_time"],
        min_repeats=settings["min_repeats"],
        max_repeats=settings["max_repeats"],
    )

    rows = []
    for solver, record in zip(solvers, timings.wall.values()):
        counter = _common.CountingRhs(problem.f)
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
        error = error_in_tolerance_units(ys, ref, rtol, atol)
        success = success and not math.isnan(error)
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


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def markdown_table(rows: list[dict]) -> str:
    columns = (
        "problem",
        "rtol / atol",
        "solver",
        "jac",
        "ms (min / median)",
        "/Radau",
        "/BDF",
        "NFE",
        "njev",
        "nlu",
        "steps (rej)",
        "err / tol",
    )
    cells = [
        (
            row["problem"],
            f"{row['rtol']:.0e} / {row['atol']:.0e}",
            f"{row['library']} {row['method']}",
            row["jac"],
            f"{row['min_ms']:.1f} / {row['median_ms']:.1f}",
            _ratio(row["ratio_Radau"]),
            _ratio(row["ratio_BDF"]),
            str(row["nfev"]),
            str(row["njev"]),
            str(row["nlu"]),
            str(row["steps"]) if row["rejected"] is None else f"{row['steps']} ({row['rejected']})",
            f"{row['error_tol_units']:.2g}" + ("" if row["success"] else " (FAILED)"),
        )
        for row in rows
    ]
    return _common.markdown_table(columns, cells, first_numeric=4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and table as JSON")
    args = parser.parse_args(argv)

    if args.quick:
        settings = {"min_time": 0.05, "min_repeats": 2, "max_repeats": 20}
    else:
        settings = {"min_time": 1.0, "min_repeats": 7, "max_repeats": 200}

    machine = _common.machine_info(
        {"numpy": np.__version__, "scipy": scipy.__version__, "ode_core": ode_core.__version__}
    )
    print(f"# ode-core {machine['ode_core']} implicit vs scipy Radau/BDF -- {machine['date']}")
    print(_common.machine_line(machine))
    print(
        f"# python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}; BLAS threads=1; "
        f"{PROBLEMS[0].n_outputs} output times; ours dense_output=False; "
        f"reference scipy Radau rtol={STIFF_REFERENCE_RTOL:g}"
    )
    print(
        f"# per case: warm-up, then rounds of all {len(SOLVERS)} solvers, >= {settings['min_repeats']} rounds and "
        f">= {settings['min_time']} s for the fastest; /Radau, /BDF = ours min / scipy min (same jac); "
        "NFE = counted calls of f (FD Jacobian included); err / tol = max |y - ref| / (atol + rtol |ref|)"
    )
    print(flush=True)

    rows: list[dict] = []
    started = time.perf_counter()
    for problem in (*PROBLEMS, *LARGE_PROBLEMS):
        ref = stiff_reference(problem)
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
    summary = []
    for method in OURS_METHODS:
        for scipy_method in SCIPY_METHODS:
            ratios = [r[f"ratio_{scipy_method}"] for r in rows if r["method"] == method]
            if not ratios:
                continue
            summary.append(
                f"geometric mean ratio {method} / {scipy_method}: {_common.geometric_mean(ratios):.2f} "
                f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
            )
    print("\n".join(summary))
    # Issue 17's target: radau5 at most Radau's time and bdf at most BDF's, on every case.
    for method, scipy_method in (("radau5", "Radau"), ("bdf", "BDF")):
        ratios = [
            (r["problem"], r["rtol"], r["jac"], r[f"ratio_{scipy_method}"]) for r in rows if r["method"] == method
        ]
        slower = [f"{p} {rt:.0e} {j}: {v:.2f}" for p, rt, j, v in ratios if v > 1.0]
        line = f"target {method} <= {scipy_method} on every case: {len(ratios) - len(slower)} of {len(ratios)}"
        summary.append(line + (f" (slower: {'; '.join(slower)})" if slower else ""))
    print("\n".join(summary[-2:]))
    failures = [r for r in rows if not r["success"]]
    if failures:
        print(f"WARNING: {len(failures)} solve(s) did not succeed")
    print(f"total benchmark time: {total:.0f} s")

    if args.json:
        payload = {"machine": machine, "settings": settings, "results": rows, "command": _common.command_line()}
        payload["markdown"] = {"table": markdown_table(rows), "summary": "\n".join(summary)}
        _common.write_json(args.json, payload)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
