"""Heterogeneous batches: independent ODEs of different difficulty in one batch, joint against per-sample steps.

Two batches whose samples are independent ODEs (``_fields.HETEROGENEOUS_PROBLEMS``):
van der Pol ``x'' = mu_i (1 - x^2) x' - x`` with ``mu_i`` from 0.2 to 5
(32 samples, from ``(2, 0)``, outputs at ``t = 0, 1, ..., 10``), the problem
torchode's paper uses; and a neural field, an MLP 2-64-2 scaled by a rate
from 0.5 to 8 per sample (128 samples, a costlier ``f``). dopri5 at
``rtol = 1e-6``, ``atol = 1e-8``, float64, one thread, in one process:

- ode-adjoint's per-sample mode (``solve(..., batch_dims=1)``), eager and
  with its step compiled (``compile=True``: ``torch.compile(fullgraph=True)``,
  inductor; the compilation, once per process, is timed apart);
- torchode (``AutoDiffAdjoint(Dopri5, IntegralController)``, eager, its
  default): each sample its own step size and accept/reject, while each
  call of ``f`` still evaluates the whole batch;
- ode-adjoint's ``odeint`` on the whole batch: one ODE of ``2 B`` unknowns, one
  step size, every step taken (and every rejection paid) by all samples at the
  pace of the hardest; torchdiffeq's ``odeint``, the same joint solve;
- ode-adjoint on each sample alone, one after the other: the steps a sample
  needs by itself, which the per-sample mode takes exactly.

On the batch that allows finished samples to leave (``compact``: the neural
field, whose rates are in the state), a second table times a gradient, of
``sum(ys**2)`` with respect to the field's parameters, forward and backward:
the per-sample mode with each engine (backprop, checkpoint, adjoint), with
and without ``compact``; torchode (backpropagation through its steps, its
``AutoDiffAdjoint``); the joint solves by backprop; each with its largest
error against the gradient of a tight joint solve (dopri8, rtol = atol =
1e-11), relative to that gradient's largest element, and the evaluations of
``f`` its backward pass took per sample (``-`` where none: backprop).

Per sample it reports the evaluations of ``f`` that sample needed (the
per-sample mode's ``stats.nfev``; ``calls x 1`` for a joint solve, each call
evaluating every sample; ``6 steps + init`` for torchode, from its
``n_steps`` and ``n_initialized``) and its steps (attempted). Then the time
of the whole batch, the host's reads of tensor values per solve and per step
of the longest sample (each is a synchronisation on a GPU; counted on the
CPU through the operators every read goes through), and the largest error
against a tight reference.

Run::

    python benchmarks/bench_heterogeneous.py [--quick] [--batch 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

from benchmarks import _common

_common.pin_threads()

import ode_adjoint  # noqa: E402
import ode_core  # noqa: E402
import torch  # noqa: E402
import torchdiffeq  # noqa: E402
import torchode  # noqa: E402
from benchmarks._fields import HETEROGENEOUS_PROBLEMS, HETEROGENEOUS_TOLERANCES, torchode_dopri5  # noqa: E402

torch.set_num_threads(1)

RTOL, ATOL = HETEROGENEOUS_TOLERANCES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--batch", type=int, help="samples in each batch (default: each problem's own)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and table as JSON")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu; on cuda: wall times)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    timing = (
        {"min_time": 0.2, "min_repeats": 2, "max_repeats": 20, "max_case_time": 5.0}
        if args.quick
        else {"min_time": 1.0, "min_repeats": 5, "max_repeats": 200, "max_case_time": 30.0}
    )
    machine = _common.machine_info(
        {
            "torch": torch.__version__,
            "ode_adjoint": ode_adjoint.__version__,
            "ode_core": ode_core.__version__,
            "torchdiffeq": torchdiffeq.__version__,
            "torchode": getattr(torchode, "__version__", "?"),
        }
    )
    print(f"# heterogeneous batches -- {machine['date']}")
    print(_common.machine_line(machine))
    clock = "CPU time" if device.type == "cpu" else "wall time (synchronised)"
    print(f"# dopri5, rtol {RTOL:g}, atol {ATOL:g}, float64, 1 thread, {device}; time: min {clock} of one solve")
    started = time.perf_counter()
    problems: dict[str, Any] = {}
    tables: dict[str, str] = {}
    for title, (make, default_batch, compactable) in HETEROGENEOUS_PROBLEMS.items():
        batch = args.batch or default_batch
        rows, compile_seconds = measure(make, batch, timing, device, compactable)
        table = _table(rows)
        heading = f"{title}, {batch} samples (dopri5, {'CPU' if device.type == 'cpu' else device.type.upper()})"
        print(f"\n**{heading}**\n\n{table}")
        print(f"compiling the per-sample step (once per process, not in the times): {compile_seconds:.1f} s")
        problems[title] = {"batch": batch, "compile_seconds": round(compile_seconds, 1), "rows": rows}
        tables[heading] = table
        if compactable:
            gradient_rows = measure_gradients(make, batch, timing, device)
            gradient_table = _gradient_table(gradient_rows)
            gradient_heading = f"{heading}: forward and backward of sum(ys**2)"
            print(f"\n**{gradient_heading}**\n\n{gradient_table}")
            problems[title]["gradient_rows"] = gradient_rows
            tables[gradient_heading] = gradient_table
    print(f"\ntotal benchmark time: {time.perf_counter() - started:.0f} s")
    if args.json:
        settings = {"rtol": RTOL, "atol": ATOL, "method": "dopri5", "device": str(device), **timing}
        payload = {
            "command": _common.command_line(),
            "machine": machine,
            "settings": settings,
            "problems": problems,
            "markdown": tables,
        }
        _common.write_json(args.json, payload)
    return 0


def measure(
    make: Any, batch: int, timing: dict[str, Any], device: torch.device, compactable: bool
) -> tuple[list[dict[str, Any]], float]:
    """Every implementation on one heterogeneous batch: its rows, and the seconds the first compiled solve took."""
    field, y0, t = make(batch)
    pure_field, _, _ = make(batch, count=False)
    field, pure_field, y0, t = field.to(device), pure_field.to(device), y0.to(device), t.to(device)
    on_cpu = device.type == "cpu"
    with torch.no_grad():
        reference = ode_adjoint.odeint(field, y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
        solver, problem = torchode_dopri5(field, y0, t, RTOL, ATOL)

        def ours_per_sample() -> ode_adjoint.Solution:
            return ode_adjoint.solve(pure_field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL)

        def ours_compiled() -> ode_adjoint.Solution:
            return ode_adjoint.solve(pure_field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL, compile=True)

        def ours_joint() -> torch.Tensor:
            return ode_adjoint.odeint(field, y0, t, rtol=RTOL, atol=ATOL)

        def torchdiffeq_joint() -> torch.Tensor:
            return torchdiffeq.odeint(field, y0, t, rtol=RTOL, atol=ATOL)

        def torchode_per_sample() -> Any:
            return solver.solve(problem)

        singles = [field.sample(i) for i in range(batch)]

        def ours_alone() -> torch.Tensor:
            columns = [
                ode_adjoint.odeint(single, y0[i : i + 1], t, rtol=RTOL, atol=ATOL) for i, single in enumerate(singles)
            ]
            return torch.cat(columns, dim=1)

        def ours_compact() -> ode_adjoint.Solution:
            return ode_adjoint.solve(pure_field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL, compact=True)

        def ours_compact_compiled() -> ode_adjoint.Solution:
            return ode_adjoint.solve(pure_field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL, compact=True, compile=True)

        def ours_graphed() -> ode_adjoint.Solution:
            graphs = functools.partial(torch.compile, mode="reduce-overhead", fullgraph=True)
            return ode_adjoint.solve(pure_field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL, compile=graphs)

        compile_started = time.perf_counter()
        ours_compiled()
        compile_seconds = time.perf_counter() - compile_started
        calls = {
            "ode-adjoint, per sample": ours_per_sample,
            "ode-adjoint, per sample, compiled": ours_compiled,
            "torchode, per sample": torchode_per_sample,
            "ode-adjoint, joint": ours_joint,
            "torchdiffeq, joint": torchdiffeq_joint,
            "ode-adjoint, each sample alone": ours_alone,
        }
        if compactable:
            ours_compact_compiled()  # compiles its shapes once, outside the timings
            calls["ode-adjoint, per sample, compact"] = ours_compact
            calls["ode-adjoint, per sample, compact, compiled"] = ours_compact_compiled
        if not on_cpu:
            # CUDA graphs of the compiled step (torch.compile's reduce-overhead mode).
            ours_graphed()
            calls["ode-adjoint, per sample, CUDA graphs"] = ours_graphed
            calls = {name: _synchronised(call) for name, call in calls.items()}
        timings = _common.round_robin_times(calls, **timing)

        # Steps, evaluations and host reads, from one more run of each.
        rows: list[dict[str, Any]] = []
        eager = [("ode-adjoint, per sample", ours_per_sample)]
        if compactable:
            eager.append(("ode-adjoint, per sample, compact", ours_compact))
        for name, call in eager:
            solution, reads = _common.host_reads(call)
            steps = solution.stats.n_steps.tolist()
            rows.append(_row(name, solution.stats.nfev.tolist(), steps, solution.ys, reference, reads, max(steps)))
        # Reads are not counted under the compiled step (torch.compile refuses a dispatch
        # mode); its loop is the eager one, which reads only between the compiled steps.
        for name, call in (
            ("ode-adjoint, per sample, compiled", ours_compiled),
            ("ode-adjoint, per sample, compact, compiled", ours_compact_compiled),
            ("ode-adjoint, per sample, CUDA graphs", ours_graphed),
        ):
            if name not in calls:
                continue
            solution = call()
            rows.append(
                _row(
                    name,
                    solution.stats.nfev.tolist(),
                    solution.stats.n_steps.tolist(),
                    solution.ys,
                    reference,
                    None,
                    None,
                )
            )
        solution, reads = _common.host_reads(torchode_per_sample)
        torchode_steps = solution.stats["n_steps"].tolist()
        # Dopri5 evaluates f 6 times a step (first same as last); the initial step costs n_initialized more.
        torchode_evaluations = [6 * s + int(i) for s, i in zip(torchode_steps, solution.stats["n_initialized"])]
        rows.append(
            _row(
                "torchode, per sample",
                torchode_evaluations,
                torchode_steps,
                solution.ys.transpose(0, 1),
                reference,
                reads,
                max(torchode_steps),
            )
        )
        for name, call in (("ode-adjoint, joint", ours_joint), ("torchdiffeq, joint", torchdiffeq_joint)):
            field.calls = 0
            ys, reads = _common.host_reads(call)
            evaluations = field.calls
            joint_steps = None
            if name.startswith("ode-adjoint"):
                joint_steps = ode_adjoint.solve(field, y0, t, rtol=RTOL, atol=ATOL).stats.n_steps
            rows.append(
                _row(
                    name,
                    [evaluations] * batch,
                    None if joint_steps is None else [joint_steps] * batch,
                    ys,
                    reference,
                    reads,
                    joint_steps,
                )
            )
        alone_evaluations, alone_steps, alone_ys = [], [], []
        for i, single in enumerate(singles):
            single.calls = 0
            one = ode_adjoint.solve(single, y0[i : i + 1], t, rtol=RTOL, atol=ATOL)
            alone_evaluations.append(single.calls)
            alone_steps.append(one.stats.n_steps)
            alone_ys.append(one.ys[:, 0])
        alone = torch.stack(alone_ys, dim=1)
        rows.append(
            _row("ode-adjoint, each sample alone", alone_evaluations, alone_steps, alone, reference, None, None)
        )
    torchode_time = timings.best("torchode, per sample", cpu=on_cpu)
    for row in rows:
        row["ms"] = 1e3 * timings.best(row["implementation"], cpu=on_cpu)
        row["time / torchode"] = row["ms"] / (1e3 * torchode_time)
    return rows, compile_seconds


def measure_gradients(make: Any, batch: int, timing: dict[str, Any], device: torch.device) -> list[dict[str, Any]]:
    """The gradient of ``sum(ys**2)`` with respect to the field's parameters, by every engine and peer."""
    field, y0, t = make(batch, count=False)
    field, y0, t = field.to(device), y0.to(device), t.to(device)
    parameters = tuple(field.parameters())
    on_cpu = device.type == "cpu"

    def gradient_of(ys: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad(ys.square().sum(), parameters)

    reference = gradient_of(ode_adjoint.odeint(field, y0, t, method="dopri8", rtol=1e-11, atol=1e-11))
    backward_evaluations: dict[str, float | None] = {}

    def per_sample(gradient: str, compact: bool) -> Any:
        name = f"ode-adjoint, per sample, {gradient}" + (", compact" if compact else "")

        def call() -> tuple[torch.Tensor, ...]:
            solution = ode_adjoint.solve(
                field, y0, t, batch_dims=1, rtol=RTOL, atol=ATOL, gradient=gradient, compact=compact
            )
            found = gradient_of(solution.ys)
            counted = solution.backward_counter.nfev if gradient != "backprop" else None
            backward_evaluations[name] = (
                None if counted is None else float(torch.as_tensor(counted, dtype=torch.float64).mean())
            )
            return found

        return name, call

    solver, problem = torchode_dopri5(field, y0, t, RTOL, ATOL)
    calls = dict(per_sample(gradient, compact) for gradient in ode_adjoint.GRADIENTS for compact in (False, True))
    calls["torchode, per sample"] = lambda: gradient_of(solver.solve(problem).ys)
    calls["ode-adjoint, joint"] = lambda: gradient_of(ode_adjoint.odeint(field, y0, t, rtol=RTOL, atol=ATOL))
    calls["torchdiffeq, joint"] = lambda: gradient_of(torchdiffeq.odeint(field, y0, t, rtol=RTOL, atol=ATOL))
    if not on_cpu:
        calls = {name: _synchronised(call) for name, call in calls.items()}
    timings = _common.round_robin_times(calls, **timing)
    torchode_time = timings.best("torchode, per sample", cpu=on_cpu)
    largest = max(float(g.abs().max()) for g in reference)
    rows = []
    for name, call in calls.items():
        found = call()
        error = max(float((g - r).abs().max()) for g, r in zip(found, reference, strict=True)) / largest
        seconds = timings.best(name, cpu=on_cpu)
        rows.append(
            {
                "implementation": name,
                "ms": 1e3 * seconds,
                "time / torchode": seconds / torchode_time,
                "backward evaluations per sample": backward_evaluations.get(name),
                "max gradient error": error,
            }
        )
    return rows


def _gradient_table(rows: list[dict[str, Any]]) -> str:
    return _common.markdown_table(
        ["implementation", "ms per batch", "time / torchode", "backward evaluations per sample", "max gradient error"],
        [
            [
                row["implementation"],
                f"{row['ms']:.1f}",
                f"{row['time / torchode']:.2f}",
                "-"
                if row["backward evaluations per sample"] is None
                else f"{row['backward evaluations per sample']:.0f}",
                f"{row['max gradient error']:.1e}",
            ]
            for row in rows
        ],
        first_numeric=1,
    )


def _synchronised(call: Any) -> Any:
    """``call`` followed by a wait for the GPU, so that wall times are the work's."""

    def timed() -> Any:
        result = call()
        torch.cuda.synchronize()
        return result

    return timed


def _table(rows: list[dict[str, Any]]) -> str:
    return _common.markdown_table(
        [
            "implementation",
            "evaluations per sample (mean)",
            "(max)",
            "steps per sample (mean)",
            "ms per batch",
            "time / torchode",
            "host reads per solve",
            "per step",
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
                "-" if row["host_reads"] is None else str(row["host_reads"]),
                "-" if row["reads_per_step"] is None else f"{row['reads_per_step']:.2f}",
                f"{row['max_error']:.1e}",
            ]
            for row in rows
        ],
        first_numeric=1,
    )


def _row(
    name: str,
    evaluations: list[int],
    steps: list[int] | None,
    ys: torch.Tensor,
    reference: torch.Tensor,
    reads: int | None,
    longest: int | None,
) -> dict[str, Any]:
    """One implementation's per-sample counts, its host reads and its largest error over every output."""
    return {
        "host_reads": reads,
        "reads_per_step": None if reads is None or not longest else reads / longest,
        "implementation": name,
        "evaluations": evaluations,
        "evaluations_mean": sum(evaluations) / len(evaluations),
        "evaluations_max": max(evaluations),
        "steps_mean": None if steps is None else sum(steps) / len(steps),
        "max_error": float((ys - reference).abs().max()),
    }


if __name__ == "__main__":
    raise SystemExit(main())
