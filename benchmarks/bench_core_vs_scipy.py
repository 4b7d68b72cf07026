"""Wall time and evaluations of ``ode_core.solve`` against ``scipy.integrate.solve_ivp``.

Same problem, same method (dopri5/RK45, bosh3/RK23, dopri8/DOP853), same
``rtol`` (``atol = rtol * 1e-3``) and the same 21 output times on both sides;
ode-core runs with ``dense_output=False`` (scipy keeps no dense output by
default either). Problems: two small ones (van der Pol, mu = 1, 2 states; the
Arenstorf orbit, 4 states), where the solver's own Python overhead is nearly
all of the cost, and a medium one (Fisher-KPP reaction-diffusion by the method
of lines, 1,000 states, a three-point stencil in NumPy slicing), where the
right-hand side is cheap but the vector work per step is no longer free.

Method, for a shared and noisy machine: BLAS pinned to one thread; one warm-up
solve per side; then the two sides alternate (ours, scipy, ours, scipy, ...)
until each side has run at least ``min_repeats`` times and for at least
``min_time`` seconds in all. Reported: the minimum and the median time per
solve, and ``ratio = ours_min / scipy_min`` (<= 1.0: ode-core is no slower).

The asv suite runs the same cases (``benchmarks/benchmarks/solvers.py`` and
``peers.py``); this script prints them as one table.

Run from the repository root, with ode-core and scipy installed::

    python benchmarks/bench_core_vs_scipy.py [--quick] [--json PATH]
"""

from __future__ import annotations

# First: importing the package pins BLAS to one thread before NumPy loads.
from benchmarks import _common  # isort: skip

import argparse
import math
import statistics
import sys
import time
from typing import Any

import numpy as np
import ode_core
import scipy
from benchmarks._problems import Problem, arenstorf, fisher_kpp, van_der_pol
from scipy.integrate import solve_ivp

METHOD_PAIRS = (("dopri5", "RK45"), ("bosh3", "RK23"), ("dopri8", "DOP853"))
RTOLS = (1e-6, 1e-9)
ATOL_OVER_RTOL = 1e-3


def run_case(problem: Problem, ours_method: str, scipy_method: str, rtol: float, settings: dict[str, Any]) -> dict:
    atol = rtol * ATOL_OVER_RTOL
    times = problem.times
    span = (float(times[0]), float(times[-1]))

    def ours() -> Any:
        return ode_core.solve(
            problem.f, problem.y0, times, method=ours_method, rtol=rtol, atol=atol, dense_output=False
        )

    def theirs() -> Any:
        return solve_ivp(problem.f, span, problem.y0, method=scipy_method, t_eval=times, rtol=rtol, atol=atol)

    timings = _common.round_robin_times(
        {"ours": ours, "scipy": theirs},
        min_time=settings["min_time"],
        min_repeats=settings["min_repeats"],
        max_repeats=settings["max_repeats"],
    )
    ours_times, their_times = timings.wall["ours"], timings.wall["scipy"]
    sol, ref = timings.results["ours"], timings.results["scipy"]
    ok = sol.status == ode_core.Status.SUCCESS and ref.success
    ys_ours = np.asarray(sol.ys)
    ys_scipy = np.asarray(ref.y).T
    same_shape = ys_ours.shape == ys_scipy.shape
    return {
        "problem": problem.name,
        "n": int(problem.y0.size),
        "method": ours_method,
        "scipy_method": scipy_method,
        "rtol": rtol,
        "atol": atol,
        "ours_min_ms": 1e3 * min(ours_times),
        "ours_median_ms": 1e3 * statistics.median(ours_times),
        "scipy_min_ms": 1e3 * min(their_times),
        "scipy_median_ms": 1e3 * statistics.median(their_times),
        "ratio": timings.ratio("ours", "scipy"),
        "ours_nfev": int(sol.stats.nfev),
        "scipy_nfev": int(ref.nfev),
        "ours_steps": int(sol.stats.n_steps),
        "ours_rejected": int(sol.stats.n_rejected),
        "max_abs_diff": float(np.max(np.abs(ys_ours - ys_scipy))) if same_shape else math.nan,
        "repeats": timings.rounds,
        "success": bool(ok and same_shape),
    }


def markdown_table(rows: list[dict]) -> str:
    columns = (
        "problem",
        "method",
        "rtol",
        "ours ms (min / median)",
        "scipy ms (min / median)",
        "ratio",
        "ours NFE",
        "scipy NFE",
        "max abs diff",
    )
    cells = [
        (
            row["problem"],
            f"{row['method']} / {row['scipy_method']}",
            f"{row['rtol']:.0e}",
            f"{row['ours_min_ms']:.2f} / {row['ours_median_ms']:.2f}",
            f"{row['scipy_min_ms']:.2f} / {row['scipy_median_ms']:.2f}",
            f"{row['ratio']:.2f}",
            str(row["ours_nfev"]),
            str(row["scipy_nfev"]),
            f"{row['max_abs_diff']:.1e}" + ("" if row["success"] else " (FAILED)"),
        )
        for row in rows
    ]
    return _common.markdown_table(columns, cells, first_numeric=3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and table as JSON")
    args = parser.parse_args(argv)

    if args.quick:
        settings = {"min_time": 0.1, "min_repeats": 3, "max_repeats": 200}
    else:
        settings = {"min_time": 1.0, "min_repeats": 7, "max_repeats": 2000}

    problems = [van_der_pol(), arenstorf(), fisher_kpp()]
    machine = _common.machine_info(
        {"numpy": np.__version__, "scipy": scipy.__version__, "ode_core": ode_core.__version__}
    )
    print(f"# ode-core {machine['ode_core']} vs scipy.integrate.solve_ivp -- {machine['date']}")
    print(_common.machine_line(machine))
    print(
        f"# python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}; BLAS threads=1; "
        f"atol = rtol * {ATOL_OVER_RTOL:g}; {problems[0].n_outputs} output times; ours dense_output=False"
    )
    print(
        f"# each side: warm-up, then interleaved, >= {settings['min_repeats']} runs and >= {settings['min_time']} s; "
        "ratio = ours min / scipy min"
    )
    print(flush=True)

    rows = []
    started = time.perf_counter()
    for problem in problems:
        for ours_method, scipy_method in METHOD_PAIRS:
            for rtol in RTOLS:
                row = run_case(problem, ours_method, scipy_method, rtol, settings)
                rows.append(row)
                print(
                    f"  {row['problem']:<24} {ours_method:>6}/{scipy_method:<6} rtol={rtol:.0e}  "
                    f"ours {row['ours_min_ms']:8.2f} ms  scipy {row['scipy_min_ms']:8.2f} ms  "
                    f"ratio {row['ratio']:.2f}  ({row['repeats']} runs each)",
                    flush=True,
                )
    total = time.perf_counter() - started

    print()
    print(markdown_table(rows))
    print()
    summary = []
    for label, keep in (("small (n <= 4)", lambda r: r["n"] <= 4), ("medium (n = 1000)", lambda r: r["n"] > 4)):
        ratios = [r["ratio"] for r in rows if keep(r)]
        if ratios:
            summary.append(
                f"geometric mean ratio, {label}: {_common.geometric_mean(ratios):.2f} (max {max(ratios):.2f})"
            )
    print("\n".join(summary))
    failures = [r for r in rows if not r["success"]]
    if failures:
        print(f"WARNING: {len(failures)} case(s) did not succeed on one side or the other")
    print(f"total benchmark time: {total:.0f} s")

    if args.json:
        payload = {"machine": machine, "settings": settings, "results": rows, "command": _common.command_line()}
        payload["markdown"] = {"table": markdown_table(rows), "summary": "\n".join(summary)}
        _common.write_json(args.json, payload)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
