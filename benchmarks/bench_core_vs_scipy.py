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

Run from the repository root, with ode-core and scipy installed::

    python benchmarks/bench_core_vs_scipy.py [--quick] [--json PATH]
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

METHOD_PAIRS = (("dopri5", "RK45"), ("bosh3", "RK23"), ("dopri8", "DOP853"))
RTOLS = (1e-6, 1e-9)
ATOL_OVER_RTOL = 1e-3
N_OUTPUTS = 21


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    name: str
    f: Callable[[float, np.ndarray], np.ndarray]
    y0: np.ndarray
    t_end: float

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, N_OUTPUTS)


def van_der_pol(mu: float = 1.0) -> Problem:
    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([y[1], mu * (1.0 - y[0] * y[0]) * y[1] - y[0]])

    return Problem("van der Pol mu=1 (n=2)", f, np.array([2.0, 0.0]), 20.0)


def arenstorf() -> Problem:
    """One period of the Arenstorf orbit (Hairer, Norsett & Wanner, Solving ODEs I, II.0)."""
    mu = 0.012277471
    mu_prime = 1.0 - mu

    def f(t: float, y: np.ndarray) -> np.ndarray:
        y1, y2, y3, y4 = y
        d1 = ((y1 + mu) ** 2 + y2 * y2) ** 1.5
        d2 = ((y1 - mu_prime) ** 2 + y2 * y2) ** 1.5
        return np.array(
            [
                y3,
                y4,
                y1 + 2.0 * y4 - mu_prime * (y1 + mu) / d1 - mu * (y1 - mu_prime) / d2,
                y2 - 2.0 * y3 - mu_prime * y2 / d1 - mu * y2 / d2,
            ]
        )

    y0 = np.array([0.994, 0.0, 0.0, -2.00158510637908252240537862224])
    return Problem("Arenstorf orbit (n=4)", f, y0, 17.0652165601579625588917206249)


def fisher_kpp(n: int = 1000, diffusion: float = 0.25, t_end: float = 20.0) -> Problem:
    """``u_t = D u_xx + u (1 - u)`` on ``n`` grid points (spacing 1, zero-flux ends).

    ``D / dx^2 = 0.25`` keeps the diffusion's eigenvalues (|lambda| <= 1) inside
    every method's stability region at both tolerances, so the step size is
    set by accuracy: no rejected steps, and both solvers take the same steps.
    """

    def f(t: float, u: np.ndarray) -> np.ndarray:
        du = u * (1.0 - u)
        du[1:-1] += diffusion * (u[:-2] - 2.0 * u[1:-1] + u[2:])
        du[0] += diffusion * (u[1] - u[0])
        du[-1] += diffusion * (u[-2] - u[-1])
        return du

    x = np.arange(n, dtype=np.float64)
    u0 = 1.0 / (1.0 + np.exp((x - n / 5) / 10.0))  # a front 10 points wide
    return Problem(f"Fisher-KPP MOL (n={n})", f, u0, t_end)


# --------------------------------------------------------------------------- timing


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def interleaved_times(
    ours: Callable[[], Any], theirs: Callable[[], Any], min_time: float, min_repeats: int, max_repeats: int
) -> tuple[list[float], list[float], Any, Any]:
    """Alternate the two calls until each has ``min_repeats`` runs and ``min_time`` seconds."""
    ours()  # warm-up: caches (ode-core's converted tableaux), imports, branch predictors
    theirs()
    gc.collect()
    ours_times: list[float] = []
    their_times: list[float] = []
    ours_result = their_result = None
    while True:
        elapsed, ours_result = _timed(ours)
        ours_times.append(elapsed)
        elapsed, their_result = _timed(theirs)
        their_times.append(elapsed)
        count = len(ours_times)
        if count >= max_repeats:
            break
        if count >= min_repeats and min(sum(ours_times), sum(their_times)) >= min_time:
            break
    return ours_times, their_times, ours_result, their_result


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

    ours_times, their_times, sol, ref = interleaved_times(
        ours, theirs, settings["min_time"], settings["min_repeats"], settings["max_repeats"]
    )
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
        "ratio": min(ours_times) / min(their_times),
        "ours_nfev": int(sol.stats.nfev),
        "scipy_nfev": int(ref.nfev),
        "ours_steps": int(sol.stats.n_steps),
        "ours_rejected": int(sol.stats.n_rejected),
        "max_abs_diff": float(np.max(np.abs(ys_ours - ys_scipy))) if same_shape else math.nan,
        "repeats": len(ours_times),
        "success": bool(ok and same_shape),
    }


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


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| problem | method | rtol | ours ms (min / median) | scipy ms (min / median) | ratio | ours NFE | scipy NFE "
        "| max abs diff |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        flag = "" if row["success"] else " (FAILED)"
        lines.append(
            f"| {row['problem']} | {row['method']} / {row['scipy_method']} | {row['rtol']:.0e} "
            f"| {row['ours_min_ms']:.2f} / {row['ours_median_ms']:.2f} "
            f"| {row['scipy_min_ms']:.2f} / {row['scipy_median_ms']:.2f} "
            f"| {row['ratio']:.2f} | {row['ours_nfev']} | {row['scipy_nfev']} | {row['max_abs_diff']:.1e}{flag} |"
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
        settings = {"min_time": 0.1, "min_repeats": 3, "max_repeats": 200}
    else:
        settings = {"min_time": 1.0, "min_repeats": 7, "max_repeats": 2000}

    machine = machine_info()
    print(f"# ode-core {machine['ode_core']} vs scipy.integrate.solve_ivp -- {machine['date']}")
    print(
        f"# {machine['platform']}; {machine['cpu']}; cpu_count={machine['cpu_count']} usable={machine['cpus_usable']}"
    )
    print(
        f"# python {machine['python']}, numpy {machine['numpy']}, scipy {machine['scipy']}; BLAS threads=1; "
        f"atol = rtol * {ATOL_OVER_RTOL:g}; {N_OUTPUTS} output times; ours dense_output=False"
    )
    print(
        f"# each side: warm-up, then interleaved, >= {settings['min_repeats']} runs and >= {settings['min_time']} s; "
        "ratio = ours min / scipy min"
    )
    print(flush=True)

    problems = [van_der_pol(), arenstorf(), fisher_kpp()]
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
    for label, keep in (("small (n <= 4)", lambda r: r["n"] <= 4), ("medium (n = 1000)", lambda r: r["n"] > 4)):
        ratios = [r["ratio"] for r in rows if keep(r)]
        if ratios:
            print(f"geometric mean ratio, {label}: {geometric_mean(ratios):.2f}  (max {max(ratios):.2f})")
    failures = [r for r in rows if not r["success"]]
    if failures:
        print(f"WARNING: {len(failures)} case(s) did not succeed on one side or the other")
    print(f"total benchmark time: {total:.0f} s")

    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"machine": machine, "settings": settings, "results": rows}, handle, indent=2)
            handle.write("\n")
        print(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
