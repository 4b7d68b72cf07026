"""A heterogeneous batch: van der Pol with its stiffness spread over the samples, joint against per-sample steps.

The samples of a batch are independent ODEs: ``x'' = mu_i (1 - x^2) x' - x``
with ``mu_i`` spread over ``[MU_LOW, MU_HIGH]``, from ``(x, x') = (2, 0)``,
outputs at ``t = 0, 1, ..., 10``, dopri5 at ``rtol = 1e-6``, ``atol = 1e-8``,
float64, one thread, in one process:

- ode-adjoint's ``odeint`` on the whole batch: one ODE of ``2 B`` unknowns, one
  step size, every step taken (and every rejection paid) by all samples at the
  pace of the hardest;
- torchdiffeq's ``odeint``, the same joint solve;
- torchode (``AutoDiffAdjoint(Dopri5, IntegralController)``): each sample its
  own step size and accept/reject, while each call of ``f`` still evaluates
  the whole batch;
- ode-adjoint on each sample alone, one after the other: the steps a sample
  needs by itself, what a per-sample mode should take per sample.

Per sample it reports the steps (attempted) and the evaluations of ``f``
that sample needed: ``calls x 1`` for a joint solve (each call evaluates it),
``6 steps + init`` for torchode's per-sample steps (its ``n_steps`` and its
initial-step evaluations), and the calls of the solve alone. Then the time of
the whole batch and the largest error against a tight reference.

This is the baseline of issue 16 (a per-sample mode): today ode-adjoint has
only the joint solve.

Run::

    python benchmarks/bench_heterogeneous.py [--quick] [--batch 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks import _common

_common.pin_threads()

import ode_adjoint  # noqa: E402
import ode_core  # noqa: E402
import torch  # noqa: E402
import torchdiffeq  # noqa: E402
import torchode  # noqa: E402
from benchmarks._fields import HETEROGENEOUS_MU, HETEROGENEOUS_TOLERANCES, heterogeneous_batch, torchode_dopri5  # noqa: E402  # noqa: E402
from benchmarks._fields import VanDerPolBatch as VanDerPol  # noqa: E402

torch.set_num_threads(1)

MU_LOW, MU_HIGH = HETEROGENEOUS_MU
RTOL, ATOL = HETEROGENEOUS_TOLERANCES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--batch", type=int, default=32, help="samples in the batch (default 32)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and table as JSON")
    args = parser.parse_args(argv)
    batch = args.batch
    timing = (
        {"min_time": 0.2, "min_repeats": 2, "max_repeats": 20, "max_case_time": 5.0}
        if args.quick
        else {"min_time": 1.0, "min_repeats": 5, "max_repeats": 200, "max_case_time": 30.0}
    )
    field, y0, t = heterogeneous_batch(batch)
    mu = field.mu
    machine = _common.machine_info(
        {
            "torch": torch.__version__,
            "ode_adjoint": ode_adjoint.__version__,
            "ode_core": ode_core.__version__,
            "torchdiffeq": torchdiffeq.__version__,
            "torchode": getattr(torchode, "__version__", "?"),
        }
    )
    print(f"# heterogeneous batch: van der Pol, {batch} samples, mu in [{MU_LOW}, {MU_HIGH}] -- {machine['date']}")
    print(_common.machine_line(machine))
    print(f"# dopri5, rtol {RTOL:g}, atol {ATOL:g}, float64, 1 thread; time: min CPU time of one solve of the batch")

    with torch.no_grad():
        reference = ode_adjoint.odeint(field, y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
        solver, problem = torchode_dopri5(field, y0, t, RTOL, ATOL)

        def ours_joint() -> torch.Tensor:
            return ode_adjoint.odeint(field, y0, t, rtol=RTOL, atol=ATOL)

        def torchdiffeq_joint() -> torch.Tensor:
            return torchdiffeq.odeint(field, y0, t, rtol=RTOL, atol=ATOL)

        def torchode_per_sample() -> Any:
            return solver.solve(problem)

        def ours_alone() -> torch.Tensor:
            return torch.stack(
                [
                    ode_adjoint.odeint(VanDerPol(mu[i : i + 1]), y0[i : i + 1], t, rtol=RTOL, atol=ATOL)[:, 0]
                    for i in range(batch)
                ],
                dim=1,
            )

        calls = {"ode-adjoint, joint": ours_joint, "torchdiffeq, joint": torchdiffeq_joint}
        calls["torchode, per sample"] = torchode_per_sample
        calls["ode-adjoint, each sample alone"] = ours_alone
        started = time.perf_counter()
        timings = _common.round_robin_times(calls, **timing)

        # Steps and evaluations, from one more run of each.
        rows: list[dict[str, Any]] = []
        for name, call in (("ode-adjoint, joint", ours_joint), ("torchdiffeq, joint", torchdiffeq_joint)):
            field.calls = 0
            ys = call()
            evaluations = field.calls
            steps = None
            if name.startswith("ode-adjoint"):
                steps = ode_adjoint.solve(field, y0, t, rtol=RTOL, atol=ATOL).stats.n_steps
            rows.append(_row(name, [evaluations] * batch, None if steps is None else [steps] * batch, ys, reference))
        solution = torchode_per_sample()
        torchode_steps = solution.stats["n_steps"].tolist()
        # Dopri5 evaluates f 6 times a step (first same as last); the initial step costs n_initialized more.
        torchode_evaluations = [6 * s + int(i) for s, i in zip(torchode_steps, solution.stats["n_initialized"])]
        rows.append(
            _row("torchode, per sample", torchode_evaluations, torchode_steps, solution.ys.transpose(0, 1), reference)
        )
        alone_evaluations, alone_steps, alone_ys = [], [], []
        for i in range(batch):
            single = VanDerPol(mu[i : i + 1])
            one = ode_adjoint.solve(single, y0[i : i + 1], t, rtol=RTOL, atol=ATOL)
            alone_evaluations.append(single.calls)
            alone_steps.append(one.stats.n_steps)
            alone_ys.append(one.ys[:, 0])
        alone = torch.stack(alone_ys, dim=1)
        rows.append(_row("ode-adjoint, each sample alone", alone_evaluations, alone_steps, alone, reference))
    torchode_time = timings.best("torchode, per sample", cpu=True)
    for row in rows:
        row["ms"] = 1e3 * timings.best(row["implementation"], cpu=True)
        row["time / torchode"] = row["ms"] / (1e3 * torchode_time)
    table = _common.markdown_table(
        [
            "implementation",
            "evaluations per sample (mean)",
            "(max)",
            "steps per sample (mean)",
            "ms per batch",
            "time / torchode",
            "max error",
        ],
        [
            [
                row["implementation"],
                f"{row['evaluations_mean']:.0f}",
                f"{row['evaluations_max']:.0f}",
                "-" if row["steps_mean"] is None else f"{row['steps_mean']:.0f}",
                f"{row['ms']:.1f}",
                f"{row['time / torchode']:.2f}",
                f"{row['max_error']:.1e}",
            ]
            for row in rows
        ],
        first_numeric=1,
    )
    print()
    print(table)
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s")
    if args.json:
        settings = {"batch": batch, "mu": [MU_LOW, MU_HIGH], "rtol": RTOL, "atol": ATOL, "method": "dopri5", **timing}
        payload = {
            "command": _common.command_line(),
            "machine": machine,
            "settings": settings,
            "rows": rows,
            "markdown": {f"van der Pol, {batch} samples, mu from {MU_LOW} to {MU_HIGH} (dopri5, CPU)": table},
        }
        _common.write_json(args.json, payload)
    return 0


def _row(
    name: str, evaluations: list[int], steps: list[int] | None, ys: torch.Tensor, reference: torch.Tensor
) -> dict[str, Any]:
    """One implementation's per-sample counts and its largest error over every output."""
    return {
        "implementation": name,
        "evaluations": evaluations,
        "evaluations_mean": sum(evaluations) / len(evaluations),
        "evaluations_max": max(evaluations),
        "steps_mean": None if steps is None else sum(steps) / len(steps),
        "max_error": float((ys - reference).abs().max()),
    }


if __name__ == "__main__":
    raise SystemExit(main())
