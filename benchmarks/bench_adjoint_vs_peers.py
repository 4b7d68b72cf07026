"""Wall time, evaluations and solver overhead of ``ode_adjoint`` against torchdiffeq and torchode.

Two neural-ODE workloads, float32 on the CPU, dopri5 on every side:

(a) a small MLP, ``f(t, y) = Linear(50, 2)(tanh(Linear(2, 50)(y)))`` (time
    ignored), batch 16, outputs at ``t = linspace(0, 10, 11)``, ``rtol = 1e-6``,
    ``atol = 1e-8``. Here one evaluation of ``f`` costs tens of microseconds,
    so the solver's own Python and tensor bookkeeping is most of the cost.
    Forward only (under ``torch.no_grad``): ours; ours with torchdiffeq's
    embedded weights for dopri5 (the same method as torchdiffeq's, step for
    step; see ``TORCHDIFFEQ_DOPRI5``); ``torchdiffeq.odeint`` and
    torchode (``AutoDiffAdjoint(Dopri5, IntegralController)``, built once, run
    eagerly); and the eager floor, a hand-written dopri5 loop with the same
    steps and the fewest torch kernels we know (``benchmarks/benchmarks/_eager_floor.py``):
    what no general eager solver can beat with these kernels. Forward and
    backward of ``loss = sum(y**2)`` over every output:
    our three engines (``gradient="backprop"``, ``"adjoint"``,
    ``"checkpoint"``), ``torchdiffeq.odeint`` (backprop),
    ``torchdiffeq.odeint_adjoint`` and torchode (backprop through its solver).
(b) the ODE block of the Neural ODE paper's MNIST ODE-Net after its
    downsampling stem: ``f(t, z)`` on ``z`` of shape (128, 64, 7, 7),
    GroupNorm -> ReLU -> [t, .] -> Conv3x3 -> GroupNorm -> ReLU -> [t, .] ->
    Conv3x3 -> GroupNorm, over ``t = [0, 1]`` at ``rtol = atol = 1e-3``.
    Here ``f`` dominates; forward, and forward + backward with the adjoint
    and backprop engines, ours against torchdiffeq only (torchode wants
    (batch, features) states), and only a few repeats.

Evaluations (NFE): ours from ``solve()``'s ``stats.nfev`` and ``backward_stats.nfev``;
the peers' from a counter in ``f`` (calls during the solve, and during
``backward()``; torchode's calls evaluate the whole batch, though it steps
each sample with its own step size). Overhead = solve time / ideal time, with
the ideal time built from ``f`` timed alone in this process on the same input
(the minimum over a standalone measurement and blocks of calls of ``f`` run
in the same round robin as the solves, so that both see the same load):
``t_f`` = one ``f(t, y)`` under ``no_grad``, ``t_fvjp`` = one ``f(t, y)`` with
autograd on plus its vector-Jacobian product with respect to ``y`` and the
parameters (``torch.autograd.grad``). Ideal = forward NFE x ``t_f`` for a
forward solve; for forward + backward: forward NFE x ``t_fvjp`` for the
engines that backpropagate through the solver (every forward evaluation is
recorded and later differentiated once), and forward NFE x ``t_f`` +
backward NFE x ``t_fvjp`` for the adjoint and checkpointing engines (a
no-grad forward, then evaluations with a vector-Jacobian product each).
An overhead of 1 means the solver costs nothing beyond ``f``. Accuracy: (a)
against a float64 torchdiffeq solve at ``rtol = atol = 1e-12`` (outputs, and
the gradient by backprop through it); (b) against ``torchdiffeq.odeint``.

Method, for a shared and noisy machine: torch, OpenMP and BLAS pinned to one
thread; one warm-up run per implementation; then the implementations of a
case run in turn (round robin) until each has run at least ``min_repeats``
times and for at least ``min_time`` seconds in all, or the case has taken
``max_case_time`` seconds (workload (b): a fixed, small number of runs).
Reported: the minimum and the median time per solve, both wall-clock and
process CPU time (one thread, so they agree on a quiet machine; on a shared
one CPU time leaves out the time the process waited for a core). Speed-ups
(their time / ours) and overheads use the minimum CPU times.

The asv suite tracks workload (a) across commits (``benchmarks/benchmarks/gradients.py``
and ``peers.py``); this script adds workload (b) and the overheads.

Run from the repository root, with ode-core and ode-adjoint installed and
torchdiffeq and torchode (benchmark-only dependencies)::

    python benchmarks/bench_adjoint_vs_peers.py [--quick] [--json PATH] [--device cpu|cuda]

With ``--device cuda`` the same workloads run on CUDA tensors; each timed run
ends with ``torch.cuda.synchronize``, and speed-ups and overheads use wall time
(``f`` alone is timed the same way, one call at a time; where the GPU waits
on a noisy host that minimum is optimistic and the overhead reads high, see
``profile_cuda_solve.py``).
"""

from __future__ import annotations

# First: importing the package pins BLAS and OpenMP to one thread before torch loads.
from benchmarks import _common  # isort: skip

import argparse
import copy
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ode_adjoint
import ode_core
import torch
import torchdiffeq
import torchode
from benchmarks._eager_floor import hand_written_dopri5
from benchmarks._fields import MLPField, ODENetField, torchode_dopri5
from torch import nn

torch.set_num_threads(1)

SEED = 0

# Set by ``--device``. On CUDA every timed call ends with a synchronisation
# (kernels run asynchronously, so the host's clock would stop before the GPU
# finished) and times are wall-clock: process CPU time would count the host
# spinning in ``synchronize`` and miss the GPU's work.
DEVICE = torch.device("cpu")


def on_cuda() -> bool:
    return DEVICE.type == "cuda"


def synchronised(call: Callable[[], Any]) -> Callable[[], Any]:
    """``call`` followed by a CUDA synchronisation when the benchmark runs on CUDA."""
    if not on_cuda():
        return call

    def run() -> Any:
        result = call()
        torch.cuda.synchronize(DEVICE)
        return result

    return run


def speed_times(timings: _common.RoundRobin) -> dict[str, list[float]]:
    """The times that speed-ups and overheads use: process CPU time on the CPU, wall time on CUDA."""
    return timings.wall if on_cuda() else timings.cpu


# torchdiffeq 0.2.5's dopri5 is the Dormand-Prince pair with other embedded
# weights than Dormand & Prince's (and scipy's, Hairer's, ode-core's): its
# error estimate b - b_embedded is exactly 2/3 of theirs, so at one tolerance
# it takes fewer, less accurate steps. Passing the same tableau with those
# weights (a user tableau; any ButcherTableau runs as ``method=``) makes both
# sides run the same method, step for step, which isolates the solver's speed.
TORCHDIFFEQ_DOPRI5 = dataclasses.replace(
    ode_core.TABLEAUX["dopri5"],
    name="dopri5 (torchdiffeq's error estimate)",
    b_embedded=("1951/21600", 0, "22642/50085", "451/720", "-12231/42400", "649/6300", "1/60"),
)
assert all(
    3 * mine == 2 * standard
    for mine, standard in zip(TORCHDIFFEQ_DOPRI5.error_weights, ode_core.TABLEAUX["dopri5"].error_weights)
)
SAME_METHOD = "ode_adjoint.solve, same method as torchdiffeq"
EAGER_FLOOR = "hand-written dopri5 loop (the eager floor)"
OVERHEAD_TARGET_SMALL = 2.0
OVERHEAD_TARGET_LARGE = 1.2  # "near 1"


# --------------------------------------------------------------------------- timing


class FieldCost:
    """``t_f`` (one ``f(t, y)`` under no_grad) and ``t_fvjp`` (one ``f(t, y)`` with autograd on, plus its
    vector-Jacobian product in ``y`` and the parameters), in ms: the minimum over a standalone measurement
    and blocks of calls run inside every round robin (so they see the same machine load as the solves)."""

    def __init__(self, func: nn.Module, t: torch.Tensor, y: torch.Tensor, block_f: int, block_vjp: int) -> None:
        parameters = tuple(func.parameters())
        cotangent = torch.randn_like(y)

        def forward() -> torch.Tensor:
            with torch.no_grad():
                return func(t, y)

        def forward_vjp() -> Any:
            z = y.detach().requires_grad_(True)
            out = func(t, z)
            return torch.autograd.grad(out, (z, *parameters), cotangent)

        def repeated(call: Callable[[], Any], count: int) -> Callable[[], None]:
            def run() -> None:
                for _ in range(count):
                    call()

            return run

        self.forward, self.forward_vjp = synchronised(forward), synchronised(forward_vjp)
        self.blocks = {
            f"f alone x{block_f}": (synchronised(repeated(forward, block_f)), block_f, "f_ms"),
            f"f+vjp alone x{block_vjp}": (synchronised(repeated(forward_vjp, block_vjp)), block_vjp, "fvjp_ms"),
        }
        self.f_ms = self.fvjp_ms = float("inf")

    def measure(self, budget: float) -> None:
        # On CUDA each call is timed with its own synchronisation, as each solve
        # is. Where the GPU waits on a noisy host, the minimum over thousands
        # of short calls is luckier than over a few solves, and the overhead
        # reads high (on an H200: t_f 0.33 ms, but 0.43 ms a call for 26 calls
        # back to back; profile_cuda_solve.py counts the launches instead).
        clock = time.perf_counter if on_cuda() else time.process_time
        self.f_ms = min(self.f_ms, 1e3 * _common.per_call_time(self.forward, budget, clock=clock))
        self.fvjp_ms = min(self.fvjp_ms, 1e3 * _common.per_call_time(self.forward_vjp, budget, clock=clock))

    def probes(self) -> dict[str, Callable[[], Any]]:
        return {name: run for name, (run, _, _) in self.blocks.items()}

    def record(self, times: dict[str, list[float]]) -> None:
        for name, (_, count, attribute) in self.blocks.items():
            if name in times:
                setattr(self, attribute, min(getattr(self, attribute), 1e3 * min(times[name]) / count))


# --------------------------------------------------------------------------- cases


@dataclass
class Impl:
    """One implementation of a case: ``run()`` returns ``(output, grads, nfe_forward, nfe_backward)``."""

    name: str
    run: Callable[[], tuple[torch.Tensor, list[torch.Tensor] | None, int, int | None]]
    kind: str  # "forward", "through" (backprop through the solver), "adjoint" (no-grad forward + VJP backward)
    ours: bool = False


@dataclass
class Case:
    workload: str
    mode: str
    impls: list[Impl]
    cost: FieldCost
    reference: str  # what outputs and gradients are compared with: an implementation, or "float64"
    timings: _common.RoundRobin = field(default_factory=_common.RoundRobin)
    reference_values: tuple[torch.Tensor, list[torch.Tensor] | None] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def _counted(func: nn.Module, call: Callable[[], Any]) -> tuple[Any, int]:
    before = func.calls
    result = call()
    return result, func.calls - before


def forward_impls(func: nn.Module, y0: torch.Tensor, t: torch.Tensor, rtol: float, atol: float, torchode_too: bool):
    def ours() -> Any:
        with torch.no_grad():
            sol = ode_adjoint.solve(func, y0, t, rtol=rtol, atol=atol, method="dopri5")
        return sol.ys, None, sol.stats.nfev, None

    def tde() -> Any:
        with torch.no_grad():
            ys, calls = _counted(func, lambda: torchdiffeq.odeint(func, y0, t, rtol=rtol, atol=atol, method="dopri5"))
        return ys, None, calls, None

    def ours_same_method() -> Any:
        with torch.no_grad():
            sol = ode_adjoint.solve(func, y0, t, rtol=rtol, atol=atol, method=TORCHDIFFEQ_DOPRI5)
        return sol.ys, None, sol.stats.nfev, None

    def floor() -> Any:
        with torch.no_grad():
            ys, nfev = hand_written_dopri5(func, y0, t, rtol, atol)
        return ys, None, nfev, None

    impls = [
        Impl("ode_adjoint.solve", ours, "forward", ours=True),
        Impl(SAME_METHOD, ours_same_method, "forward", ours=True),
        Impl("torchdiffeq.odeint", tde, "forward"),
    ]
    if torchode_too:  # workload (a): its floor too
        impls.append(Impl(EAGER_FLOOR, floor, "forward"))
        solver, problem = torchode_dopri5(func, y0, t, rtol, atol)

        def tode() -> Any:
            with torch.no_grad():
                sol, calls = _counted(func, lambda: solver.solve(problem))
            return sol.ys.transpose(0, 1), None, calls, None

        impls.append(Impl("torchode (eager)", tode, "forward"))
    return impls


def backward_impls(
    func: nn.Module,
    y0: torch.Tensor,
    t: torch.Tensor,
    rtol: float,
    atol: float,
    gradients: tuple[str, ...],
    torchode_too: bool,
):
    parameters = list(func.parameters())

    def loss_backward(ys: torch.Tensor) -> tuple[list[torch.Tensor], int]:
        loss = ys.pow(2).sum()
        _, calls = _counted(func, loss.backward)
        return [p.grad for p in parameters], calls  # type: ignore[misc]

    def clear() -> None:
        for p in parameters:
            p.grad = None

    def ours(gradient: str) -> Callable[[], Any]:
        def run() -> Any:
            clear()
            sol = ode_adjoint.solve(func, y0, t, rtol=rtol, atol=atol, method="dopri5", gradient=gradient)
            grads, _ = loss_backward(sol.ys)
            backward = sol.backward_stats
            return sol.ys.detach(), grads, sol.stats.nfev, 0 if backward is None else backward.nfev

        return run

    def tde(odeint: Callable[..., torch.Tensor]) -> Callable[[], Any]:
        def run() -> Any:
            clear()
            ys, calls = _counted(func, lambda: odeint(func, y0, t, rtol=rtol, atol=atol, method="dopri5"))
            grads, backward_calls = loss_backward(ys)
            return ys.detach(), grads, calls, backward_calls

        return run

    kinds = {"backprop": "through", "adjoint": "adjoint", "checkpoint": "adjoint"}
    impls = [Impl(f"ours gradient={g!r}", ours(g), kinds[g], ours=True) for g in gradients]
    impls.append(Impl("torchdiffeq.odeint", tde(torchdiffeq.odeint), "through"))
    impls.append(Impl("torchdiffeq.odeint_adjoint", tde(torchdiffeq.odeint_adjoint), "adjoint"))
    if torchode_too:
        solver, problem = torchode_dopri5(func, y0, t, rtol, atol)

        def tode() -> Any:
            clear()
            sol, calls = _counted(func, lambda: solver.solve(problem))
            grads, backward_calls = loss_backward(sol.ys)
            return sol.ys.detach().transpose(0, 1), grads, calls, backward_calls

        impls.append(Impl("torchode (eager)", tode, "through"))
    return impls


def run_case(case: Case, settings: dict[str, Any]) -> None:
    """Time the case's implementations, with blocks of bare ``f`` calls in the same round robin."""
    calls = {impl.name: synchronised(impl.run) for impl in case.impls} | case.cost.probes()
    case.timings = _common.round_robin_times(
        calls,
        min_time=settings["min_time"],
        min_repeats=settings["min_repeats"],
        max_repeats=settings["max_repeats"],
        max_case_time=settings["max_case_time"],
    )
    case.cost.record(speed_times(case.timings))


def tabulate(case: Case) -> None:
    """The case's rows, once every measurement of ``f`` in its workload is in."""
    if case.reference_values is not None:
        ref_ys, ref_grads = case.reference_values
    else:
        ref_ys, ref_grads, _, _ = case.timings.results[case.reference]
    for impl in case.impls:
        ys, grads, nfe, nfe_backward = case.timings.results[impl.name]
        times, cpu_times = case.timings.wall[impl.name], case.timings.cpu[impl.name]
        speed = speed_times(case.timings)[impl.name]
        if impl.kind == "forward":
            ideal = nfe * case.cost.f_ms
        elif impl.kind == "through":
            ideal = nfe * case.cost.fvjp_ms
        else:
            ideal = nfe * case.cost.f_ms + (nfe_backward or 0) * case.cost.fvjp_ms
        grad_error = None
        if grads is not None and ref_grads is not None:
            scale = max(float(g.abs().max()) for g in ref_grads)
            grad_error = max(float((g.double() - r.double()).abs().max()) for g, r in zip(grads, ref_grads)) / scale
        case.rows.append(
            {
                "workload": case.workload,
                "mode": case.mode,
                "impl": impl.name,
                "ours": impl.ours,
                "kind": impl.kind,
                "min_ms": 1e3 * min(times),
                "median_ms": 1e3 * statistics.median(times),
                "cpu_min_ms": 1e3 * min(cpu_times),
                "cpu_median_ms": 1e3 * statistics.median(cpu_times),
                "repeats": len(times),
                "nfe": int(nfe),
                "nfe_backward": None if nfe_backward is None else int(nfe_backward),
                "ideal_ms": ideal,
                "speed_min_ms": 1e3 * min(speed),
                "overhead": 1e3 * min(speed) / ideal,
                "max_abs_err_y": float((ys.double() - ref_ys.double()).abs().max()),
                "rel_err_grad": grad_error,
            }
        )
    by_name = {row["impl"]: row for row in case.rows}
    for row in case.rows:
        for peer in ("torchdiffeq.odeint", "torchdiffeq.odeint_adjoint"):
            if peer in by_name:
                row[f"speedup_vs_{peer}"] = by_name[peer]["speed_min_ms"] / row["speed_min_ms"]


def float64_reference(func: nn.Module, y0: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The exact answer, near enough: torchdiffeq's dopri5 in float64 at ``rtol = atol = 1e-12``, and the
    gradient of ``sum(y**2)`` by backpropagation through it."""
    model = copy.deepcopy(func).double()
    ys = torchdiffeq.odeint(model, y0.double(), t.double(), rtol=1e-12, atol=1e-12, method="dopri5")
    ys.pow(2).sum().backward()
    return ys.detach(), [p.grad for p in model.parameters()]  # type: ignore[misc]


def workload_a(settings: dict[str, Any]) -> list[Case]:
    torch.manual_seed(SEED)
    # Drawn on the CPU and then moved, so both devices solve the same problem.
    func = MLPField().to(DEVICE)
    y0 = torch.randn(16, 2).to(DEVICE)
    t = torch.linspace(0.0, 10.0, 11, device=DEVICE)
    rtol, atol = 1e-6, 1e-8
    cost = FieldCost(func, torch.tensor(0.0, device=DEVICE), y0, block_f=64, block_vjp=16)
    cost.measure(settings["field_budget"])
    name = "(a) MLP 2-50-2, batch 16"
    reference = float64_reference(func, y0, t)
    cases = [
        Case(name, "forward", forward_impls(func, y0, t, rtol, atol, True), cost, "float64"),
        Case(
            name,
            "forward+backward",
            backward_impls(func, y0, t, rtol, atol, ("backprop", "adjoint", "checkpoint"), True),
            cost,
            "float64",
        ),
    ]
    cases[0].reference_values = (reference[0], None)
    cases[1].reference_values = reference
    for case in cases:
        run_case(case, settings)
    for case in cases:
        tabulate(case)
    return cases


def workload_b(settings: dict[str, Any]) -> list[Case]:
    torch.manual_seed(SEED)
    func = ODENetField().to(DEVICE)
    y0 = torch.randn(128, 64, 7, 7).to(DEVICE)
    t = torch.tensor([0.0, 1.0], device=DEVICE)
    rtol = atol = 1e-3
    cost = FieldCost(func, torch.tensor(0.5, device=DEVICE), y0, block_f=1, block_vjp=1)
    cost.measure(settings["field_budget_large"])
    large = {
        "min_time": 0.0,
        "min_repeats": settings["large_repeats"],
        "max_repeats": settings["large_repeats"],
        "max_case_time": 0.0,
    }
    name = "(b) ODE-Net conv block, batch 128"
    cases = [
        Case(name, "forward", forward_impls(func, y0, t, rtol, atol, False), cost, "torchdiffeq.odeint"),
        Case(
            name,
            "forward+backward",
            backward_impls(func, y0, t, rtol, atol, ("adjoint", "backprop"), False),
            cost,
            "torchdiffeq.odeint",
        ),
    ]
    for case in cases:
        run_case(case, large)
    for case in cases:
        tabulate(case)
    return cases


# --------------------------------------------------------------------------- report


def machine_info() -> dict[str, Any]:
    return _common.machine_info(
        {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torchdiffeq": torchdiffeq.__version__,
            "torchode": getattr(torchode, "__version__", "?"),
            "ode_adjoint": ode_adjoint.__version__,
            "ode_core": ode_core.__version__,
            "device": torch.cuda.get_device_name(DEVICE) if on_cuda() else "cpu",
        }
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown_table(case: Case) -> str:
    backward = case.mode != "forward"
    header = "| implementation | wall ms (min / median) | CPU ms (min / median) | NFE fwd"
    header += (" / bwd" if backward else "") + " | overhead "
    header += "| vs tde odeint | vs tde odeint_adjoint |" if backward else "| vs tde odeint |"
    header += " max abs err y |" + (" rel err grad |" if backward else "")
    columns = 8 + (1 if backward else -1)
    lines = [header, "|---|" + "---:|" * (columns - 1)]
    for row in case.rows:
        name = f"**{row['impl']}**" if row["ours"] else row["impl"]
        nfe = str(row["nfe"]) + (f" / {_fmt(row['nfe_backward'], 'd')}" if backward else "")
        cells = [
            name,
            f"{row['min_ms']:.2f} / {row['median_ms']:.2f}",
            f"{row['cpu_min_ms']:.2f} / {row['cpu_median_ms']:.2f}",
            nfe,
            f"{row['overhead']:.2f}",
            f"{row['speedup_vs_torchdiffeq.odeint']:.2f}x",
        ]
        if backward:
            cells.append(f"{row['speedup_vs_torchdiffeq.odeint_adjoint']:.2f}x")
        cells.append(f"{row['max_abs_err_y']:.1e}")
        if backward:
            cells.append(_fmt(row["rel_err_grad"], ".1e"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets(cases: list[Case]) -> list[tuple[str, bool]]:
    """The project's stated goals, checked against the measurements."""
    rows = {(c.workload[:3], c.mode, r["impl"]): r for c in cases for r in c.rows}
    checks: list[tuple[str, bool]] = []
    fwd, fwd_tde = rows.get(("(a)", "forward", "ode_adjoint.solve")), rows.get(("(a)", "forward", "torchdiffeq.odeint"))
    if fwd and fwd_tde:
        speedup = fwd["speedup_vs_torchdiffeq.odeint"]
        checks.append((f"(a) forward >= 3x faster than torchdiffeq.odeint: {speedup:.2f}x", speedup >= 3.0))
        checks.append(
            (f"(a) forward NFE <= torchdiffeq's: {fwd['nfe']} vs {fwd_tde['nfe']}", fwd["nfe"] <= fwd_tde["nfe"])
        )
    same = rows.get(("(a)", "forward", SAME_METHOD))
    if same and fwd_tde:
        speedup = same["speedup_vs_torchdiffeq.odeint"]
        checks.append(
            (
                f"(a) forward, the same method as torchdiffeq: >= 3x faster with no more NFE: {speedup:.2f}x, "
                f"NFE {same['nfe']} vs {fwd_tde['nfe']}",
                speedup >= 3.0 and same["nfe"] <= fwd_tde["nfe"],
            )
        )
    floor = rows.get(("(a)", "forward", EAGER_FLOOR))
    if fwd and floor:
        # The general loop against the least the same kernels cost (benchmarks/benchmarks/_eager_floor.py).
        ratio = fwd["speed_min_ms"] / floor["speed_min_ms"]
        checks.append((f"(a) forward ode_adjoint.solve within 1.1x of the eager floor: {ratio:.2f}x", ratio <= 1.1))
    adj = rows.get(("(a)", "forward+backward", "ours gradient='adjoint'"))
    if adj:
        speedup = adj["speedup_vs_torchdiffeq.odeint_adjoint"]
        checks.append(
            (f"(a) forward+adjoint backward >= 2x faster than odeint_adjoint: {speedup:.2f}x", speedup >= 2.0)
        )
    for case in cases:
        limit = OVERHEAD_TARGET_SMALL if case.workload.startswith("(a)") else OVERHEAD_TARGET_LARGE
        for row in case.rows:
            if row["ours"]:
                checks.append(
                    (
                        f"{case.workload[:3]} {case.mode} {row['impl']}: overhead {row['overhead']:.2f} <= {limit:g}",
                        row["overhead"] <= limit,
                    )
                )
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--json", metavar="PATH", help="also write the machine, settings and tables as JSON")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cpu", help="where the tensors live (default: cpu, one thread)"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    global DEVICE
    DEVICE = torch.device(args.device)

    if args.quick:
        settings = {
            "min_time": 0.1,
            "min_repeats": 3,
            "max_repeats": 100,
            "max_case_time": 3.0,
            "large_repeats": 1,
            "field_budget": 0.2,
            "field_budget_large": 0.5,
        }
    else:
        settings = {
            "min_time": 1.0,
            "min_repeats": 7,
            "max_repeats": 1000,
            "max_case_time": 20.0,
            "large_repeats": 3,
            "field_budget": 1.0,
            "field_budget_large": 2.0,
        }
    if on_cuda():
        # The convolutional block takes milliseconds on a GPU, not seconds: more runs cost little.
        settings["large_repeats"] = 5 * settings["large_repeats"]

    machine = machine_info()
    print(f"# ode-adjoint {machine['ode_adjoint']} vs torchdiffeq and torchode -- {machine['date']}")
    print(_common.machine_line(machine))
    where = f"CUDA ({torch.cuda.get_device_name(DEVICE)})" if on_cuda() else "CPU"
    clock = "wall time" if on_cuda() else "CPU time"
    print(
        f"# python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} thread), "
        f"torchdiffeq {machine['torchdiffeq']}, torchode {machine['torchode']}, ode-core {machine['ode_core']}; "
        f"float32, {where}, dopri5"
    )
    print(
        f"# each implementation: warm-up, then round robin; (a) >= {settings['min_repeats']} runs and "
        f">= {settings['min_time']} s each (or {settings['max_case_time']:g} s per table), "
        f"(b) {settings['large_repeats']} runs; speed-up = their min {clock} / ours; "
        f"overhead = min {clock} / (NFE x {clock} of f alone)"
        + ("; every timed run, f alone too, ends with torch.cuda.synchronize" if on_cuda() else "")
    )
    print(flush=True)

    started = time.perf_counter()
    cases: list[Case] = []
    for workload in (workload_a, workload_b):
        for case in workload(settings):
            cases.append(case)
            print(f"## {case.workload}: {case.mode}")
            if case.reference == "float64":
                against = "a float64 solve at rtol = atol = 1e-12"
            else:
                against = case.reference + (" (backprop)" if case.mode != "forward" else "")
            print(f"t_f = {case.cost.f_ms:.4f} ms (no grad), t_f+vjp = {case.cost.fvjp_ms:.4f} ms")
            print(f"errors against {against}")
            print()
            print(markdown_table(case))
            print(flush=True)
    total = time.perf_counter() - started

    print("## targets")
    checks = targets(cases)
    for text, met in checks:
        print(f"- [{'x' if met else ' '}] {text}")
    print()
    print(f"total benchmark time: {total:.0f} s")

    if args.json:
        payload = {
            "machine": machine,
            "settings": settings,
            "field_cost_ms": {c.workload: {"f": c.cost.f_ms, "f+vjp": c.cost.fvjp_ms} for c in cases},
            "results": [row for c in cases for row in c.rows],
            "targets": [{"target": text, "met": met} for text, met in checks],
            "command": _common.command_line(),
            # The tables as printed, for benchmarks/tables.py to put in the docs.
            "markdown": {f"{c.workload}: {c.mode}": markdown_table(c) for c in cases},
        }
        _common.write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
