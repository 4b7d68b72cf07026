"""Peak memory of forward + backward per gradient engine of ``ode_adjoint.solve``.

Engines: backprop, checkpoint (one state per step), checkpoint with a budget
of K = 4 and K = 16 stored states (revolve recomputation), adjoint; each at
10, 100 and 1,000 fixed ``rk4`` steps on ``[0, 1]``. Every cell is a fresh
process (this script re-run with ``--child``) that warms up on a tiny state,
then runs one forward and one backward on a state of ``--size`` float32
values, ``dy/dt = tanh(Y W + b) - Y`` (``Y``: the state as rows of 16,
``W`` (16, 16) and ``b`` the parameters). Reported: the increment of the
peak over the level right before the solve, in MiB:

* cpu: peak RSS (VmHWM, its high-water mark reset through
  ``/proc/self/clear_refs`` after the warm-up) minus the RSS before;
* cuda: ``torch.cuda.max_memory_allocated`` minus ``memory_allocated``
  before (the caching allocator's tensors, not the driver's context).

On the CPU the children run with a fixed glibc mmap threshold
(``MALLOC_MMAP_THRESHOLD_=65536``), so that every tensor of 64 KiB or more
has its own mapping, given back on free, and RSS follows the live tensors;
``--malloc-default`` keeps glibc's dynamic policy, whose heap fragmentation
can read up to about twice that, depending on unrelated allocations.

The asv suite measures the same cells across commits
(``benchmarks/benchmarks/gradients.py``: ``Memory``, ``CudaMemory``).

Run from the repository root, with ode-adjoint installed::

    python benchmarks/bench_memory.py [--quick] [--device cpu|cuda|all] [--json PATH]

``--device all`` (the default) measures the CPU and, when
``torch.cuda.is_available()``, CUDA too.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import subprocess
import sys
import time
from typing import Any

import torch

from benchmarks import _common, _fields

WIDTH = _fields.MEMORY_WIDTH
ENGINES = (
    ("backprop", "backprop", None),
    ("checkpoint", "checkpoint", None),
    ("checkpoint K=4", "checkpoint", 4),
    ("checkpoint K=16", "checkpoint", 16),
    ("adjoint", "adjoint", None),
)
STEPS = (10, 100, 1000)
QUICK_STEPS = (10, 100)
MMAP_THRESHOLD = str(_common.MMAP_THRESHOLD_BYTES)


# --- child: one measurement ------------------------------------------------------------------------------


def child(engine: str, steps: int, checkpoints: int | None, size: int, device_name: str) -> dict[str, Any]:
    import ode_adjoint

    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(device_name)
    func = _fields.MemoryField().to(device)
    options: dict[str, Any] = {} if checkpoints is None else {"checkpoints": checkpoints}

    def forward_backward(y0: torch.Tensor, n: int) -> Any:
        solution = ode_adjoint.solve(
            func, y0, [0.0, 1.0], method="rk4", options={**options, "step_size": 1.0 / n}, gradient=engine
        )
        solution.ys[-1].square().sum().backward()
        return solution

    forward_backward(torch.randn(4 * WIDTH, device=device, requires_grad=True), 3)
    y0 = torch.randn(size, device=device, requires_grad=True)
    gc.collect()
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        cuda_before = torch.cuda.memory_allocated(device)
    hwm_reset = _common.reset_peak_rss()
    rss_before = _common.current_rss_kib()
    if rss_before is None:
        rss_before = _common.peak_rss_kib()
    start = time.perf_counter()
    solution = forward_backward(y0, steps)
    if cuda:
        torch.cuda.synchronize(device)
    record: dict[str, Any] = {
        "seconds": time.perf_counter() - start,
        "n_steps": solution.stats.n_steps,
        "backward_steps": 0 if solution.backward_stats is None else solution.backward_stats.n_steps,
        "rss_before_kib": rss_before,
        "rss_peak_kib": _common.peak_rss_kib(),
        "hwm_reset": hwm_reset,
    }
    if cuda:
        record["cuda_before_bytes"] = cuda_before
        record["cuda_peak_bytes"] = torch.cuda.max_memory_allocated(device)
    return record


# --- parent: the table -----------------------------------------------------------------------------------


def measure(
    engine: str, steps: int, checkpoints: int | None, size: int, device: str, malloc_default: bool
) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--child", engine, str(steps), str(size), device]
    if checkpoints is not None:
        command.append(str(checkpoints))
    env = dict(os.environ)
    if not malloc_default:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", MMAP_THRESHOLD)
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr}")
    record: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    if record["n_steps"] != steps:
        raise RuntimeError(f"{engine} took {record['n_steps']} steps, expected {steps}")
    if device == "cuda":
        record["increment_mib"] = (record["cuda_peak_bytes"] - record["cuda_before_bytes"]) / 2**20
    else:
        record["increment_mib"] = (record["rss_peak_kib"] - record["rss_before_kib"]) / 1024
    record.update(engine=engine, steps=steps, checkpoints=checkpoints, size=size, device=device)
    return record


def header(args: argparse.Namespace, devices: list[str]) -> list[str]:
    cpu = _common.cpu_model()
    lines = [
        f"# ode-adjoint peak memory of forward + backward ({datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z})",
        "",
        f"- machine: {platform.node()}, {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        f"- Python {platform.python_version()}, torch {torch.__version__}",
    ]
    if "cuda" in devices:
        lines.append(f"- CUDA: {torch.cuda.get_device_name(0)}")
    malloc = "glibc default" if args.malloc_default else f"MALLOC_MMAP_THRESHOLD_={MMAP_THRESHOLD}"
    lines += [
        f"- state: {args.size} float32 ({args.size * 4 / 2**20:.3g} MiB); rk4, fixed steps; "
        f"one thread; CPU allocator: {malloc}",
        "- cells: peak minus the level right before the solve, MiB "
        "(cpu: peak RSS; cuda: torch.cuda.max_memory_allocated), each in a fresh process",
    ]
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine, steps, size, device, *budget = sys.argv[2:]
        record = child(engine, int(steps), int(budget[0]) if budget else None, int(size), device)
        print(json.dumps(record))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="10 and 100 steps only")
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all")
    parser.add_argument("--size", type=int, default=2**15, help="state size (a multiple of 16)")
    parser.add_argument("--malloc-default", action="store_true", help="keep glibc's dynamic mmap threshold")
    parser.add_argument("--json", metavar="PATH", help="also write every measurement to PATH")
    args = parser.parse_args()
    if args.size % WIDTH:
        parser.error(f"--size must be a multiple of {WIDTH}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")
    if args.device == "all":
        devices = ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]
    else:
        devices = [args.device]
    steps = QUICK_STEPS if args.quick else STEPS

    head = header(args, devices)
    lines = list(head)
    print("\n".join(lines), flush=True)
    records = []
    tables = {}
    for device in devices:
        table = [
            "",
            f"## {device}",
            "",
            "| engine | " + " | ".join(f"{n} steps" for n in steps) + " |",
            "|---|" + "---:|" * len(steps),
        ]
        for label, engine, budget in ENGINES:
            cells = []
            for n in steps:
                record = measure(engine, n, budget, args.size, device, args.malloc_default)
                records.append(record)
                cells.append(f"{record['increment_mib']:.1f}")
                print(f"  {device} {label} {n} steps: {record['increment_mib']:.1f} MiB", file=sys.stderr)
            table.append(f"| {label} | " + " | ".join(cells) + " |")
        print("\n".join(table), flush=True)
        lines += table
        tables[device] = "\n".join(table[3:])
    if args.json:
        machine = _common.machine_info({"torch": torch.__version__})
        if "cuda" in devices:
            machine["cuda"] = torch.cuda.get_device_name(0)
        payload = {"machine": machine, "command": _common.command_line(), "header": "\n".join(head)}
        payload.update(markdown=tables, records=records)
        _common.write_json(args.json, payload)


if __name__ == "__main__":
    main()
