"""Child process of ``test_memory.py``: one forward and backward solve, then its memory.

Usage::

    python _memory_probe.py ENGINE STEPS [--checkpoints K] [--size N] [--device cpu|cuda]

Prints one JSON line: the resident set size right before the solve
(``rss_before_kib``), the peak resident set size (``ru_maxrss``, KiB on
Linux) after forward and backward (``rss_peak_kib``), and on CUDA also
``torch.cuda.memory_allocated`` before and ``max_memory_allocated`` after
(bytes). Run in a fresh process so that nothing else has touched the peak.

The problem: a state of ``N`` float32 values, ``dy/dt = tanh(Y W + b) - Y``
with ``Y`` the state as rows of 16 and ``W`` (16, 16), ``b`` (16,) the
parameters; ``rk4`` with ``step_size = 1 / STEPS`` on ``[0, 1]``, so the
step count is exact. What grows with the steps is the stored per-step
tensors, a few states' worth each; the parameters are negligible.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import time

import ode_adjoint
import torch

WIDTH = 16


class Dynamics(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(WIDTH, WIDTH) / WIDTH**0.5)
        self.bias = torch.nn.Parameter(torch.zeros(WIDTH))

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows = y.view(-1, WIDTH)
        return (torch.tanh(rows @ self.weight + self.bias) - rows).reshape(-1)


def _current_rss_kib() -> int | None:
    try:
        with open("/proc/self/statm") as file:
            pages = int(file.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _peak_rss_kib() -> int:
    """The process's resident high-water mark.

    On Linux, VmHWM from /proc/self/status: ``ru_maxrss`` also remembers the
    memory of the process that forked this one (a child of a large pytest
    process starts with pytest's peak), and clear_refs does not reset that.
    """
    try:
        with open("/proc/self/status") as file:
            for line in file:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def _reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets the high-water mark VmHWM."""
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
    except OSError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine", choices=ode_adjoint.GRADIENTS)
    parser.add_argument("steps", type=int)
    parser.add_argument("--checkpoints", type=int, default=None)
    parser.add_argument("--size", type=int, default=2**15)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.size % WIDTH:
        parser.error(f"--size must be a multiple of {WIDTH}")
    # One thread: no per-thread scratch memory and no oversubscription on a shared machine.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(args.device)
    func = Dynamics().to(device)
    options: dict[str, object] = {}
    if args.checkpoints is not None:
        options["checkpoints"] = args.checkpoints

    def forward_backward(y0: torch.Tensor, steps: int) -> ode_adjoint.Solution:
        solution = ode_adjoint.solve(
            func,
            y0,
            [0.0, 1.0],
            method="rk4",
            options={**options, "step_size": 1.0 / steps},
            gradient=args.engine,
        )
        solution.ys[-1].square().sum().backward()
        return solution

    # Warm-up on a tiny state: lazy initialisation (kernels, autograd) off the books.
    forward_backward(torch.randn(4 * WIDTH, device=device, requires_grad=True), 3)
    y0 = torch.randn(args.size, device=device, requires_grad=True)
    gc.collect()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        cuda_before = torch.cuda.memory_allocated(device)
    hwm_reset = _reset_peak_rss()
    rss_before = _current_rss_kib()
    if rss_before is None:
        rss_before = _peak_rss_kib()
    start = time.perf_counter()
    solution = forward_backward(y0, args.steps)
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    record = {
        "engine": args.engine,
        "steps": args.steps,
        "checkpoints": args.checkpoints,
        "size": args.size,
        "device": str(device),
        "n_steps": solution.stats.n_steps,
        "backward_steps": 0 if solution.backward_stats is None else solution.backward_stats.n_steps,
        "rss_before_kib": rss_before,
        "rss_peak_kib": _peak_rss_kib(),
        "hwm_reset": hwm_reset,
        "seconds": seconds,
    }
    if cuda:
        record["cuda_before_bytes"] = cuda_before
        record["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    print(json.dumps(record))


if __name__ == "__main__":
    main()
