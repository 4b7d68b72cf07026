"""Where a forward solve of the ODE-Net's conv block spends its time on CUDA.

Workload (b) of ``bench_adjoint_vs_peers.py`` (the MNIST ODE-Net's ODE
block, batch 128, 64x7x7, t in [0, 1], dopri5, rtol = atol = 1e-3, float32),
forward under ``no_grad``: ``ode_adjoint.solve``, ``torchdiffeq.odeint``, and
26 back-to-back calls of ``f`` (the solves' evaluations, with nothing else).
For each: the best and median wall time of 20 runs (each ending with
``torch.cuda.synchronize``), and from ``torch.profiler`` over 5 runs, the
kernels and kernel launches per run and the time the GPU spent in kernels.
Wall time well above the GPU's busy time means the run is bound by the host
launching kernels, and the solver's cost is then its extra launches.

Run from the repository root on a machine with CUDA, with ode-adjoint and
torchdiffeq installed::

    python benchmarks/profile_cuda_solve.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import ode_adjoint
import torch
import torchdiffeq
from benchmarks._fields import ODENetField
from torch.profiler import ProfilerActivity, profile

RUNS = 20
PROFILED_RUNS = 5
LAUNCHES = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC")


def measure(call: Callable[[], Any]) -> dict[str, float]:
    """Wall times, and per run: kernels, launches, GPU busy time (ms)."""
    for _ in range(5):
        call()
    torch.cuda.synchronize()
    walls = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        walls.append(time.perf_counter() - start)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(PROFILED_RUNS):
            call()
        torch.cuda.synchronize()
    events = prof.key_averages()
    on_gpu = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    return {
        "wall_min_ms": 1e3 * min(walls),
        "wall_median_ms": 1e3 * statistics.median(walls),
        "kernels": sum(e.count for e in on_gpu) / PROFILED_RUNS,
        "launches": sum(e.count for e in events if e.key in LAUNCHES) / PROFILED_RUNS,
        "gpu_busy_ms": sum(e.self_device_time_total for e in on_gpu) / PROFILED_RUNS / 1e3,
    }


def main() -> int:
    if not torch.cuda.is_available():
        print("needs CUDA: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    device = torch.device("cuda")
    func = ODENetField().to(device)
    y0 = torch.randn(128, 64, 7, 7).to(device)
    t = torch.tensor([0.0, 1.0], device=device)
    t_mid = torch.tensor(0.5, device=device)

    def ours() -> Any:
        with torch.no_grad():
            return ode_adjoint.solve(func, y0, t, rtol=1e-3, atol=1e-3, method="dopri5").ys

    def theirs() -> Any:
        with torch.no_grad():
            return torchdiffeq.odeint(func, y0, t, rtol=1e-3, atol=1e-3, method="dopri5")

    def f_alone() -> None:
        with torch.no_grad():
            for _ in range(26):  # the solves' evaluations
                func(t_mid, y0)

    print(f"# {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    print("| run | wall ms (min / median) | kernels | launches | GPU busy ms |")
    print("|---|---:|---:|---:|---:|")
    for name, call in (("ode_adjoint.solve", ours), ("torchdiffeq.odeint", theirs), ("f alone x26", f_alone)):
        row = measure(call)
        print(
            f"| {name} | {row['wall_min_ms']:.2f} / {row['wall_median_ms']:.2f} | {row['kernels']:.0f} "
            f"| {row['launches']:.0f} | {row['gpu_busy_ms']:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
