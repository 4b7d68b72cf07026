"""Peak memory of forward + backward per gradient engine, each in a fresh process.

Each measurement runs ``_memory_probe.py`` in a child (the same interpreter
and environment, so it works with PYTHONPATH checkouts and installed
packages alike): a state of 2**15 float32 values, ``rk4`` with exactly
``steps`` fixed steps, one backward. The memory counted is the increment of
the peak over the level right before the solve: peak RSS on the CPU, and
``torch.cuda.max_memory_allocated`` on CUDA. The factors below are ratios of
such increments; at this size a per-step cost of a few states (backprop's
graph, the checkpoint engine's stored states) is tens to hundreds of MiB,
well above the allocator's noise.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("_memory_probe.py")
MIB = 1024.0
# glibc: a fixed mmap threshold (which also turns off its dynamic raising) puts
# every tensor of 64 KiB or more in its own mapping, given back on free, so
# that RSS follows the live tensors instead of the heap's fragmentation (with
# the default policy the same run reads 1x or 2x the live memory depending on
# unrelated allocations). Other allocators ignore the variable.
CHILD_ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": os.environ.get("MALLOC_MMAP_THRESHOLD_", "65536")}

# Each cell is a fresh process solving up to 1000 steps: slow.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="peak RSS is measured through Linux's /proc"),
]


# (engine, steps, checkpoint budget): every measurement the tests below compare,
# the slowest first (revolve with K=4 replays about ten times the 1000 steps).
CASES = (
    ("checkpoint", 1000, 4),
    ("checkpoint", 1000, None),
    ("adjoint", 1000, None),
    ("checkpoint", 100, 4),
    ("adjoint", 100, None),
    ("checkpoint", 100, None),
    ("backprop", 100, None),
    ("adjoint", 10, None),
)


def _measure(engine: str, steps: int, checkpoints: int | None, device: str) -> float:
    """Peak memory of one forward + backward above the level before it, in MiB."""
    command = [sys.executable, str(PROBE), engine, str(steps), "--device", device]
    if checkpoints is not None:
        command += ["--checkpoints", str(checkpoints)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300, env=CHILD_ENV)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["n_steps"] == steps
    if device == "cuda":
        before, peak = record["cuda_before_bytes"] / 2**20, record["cuda_peak_bytes"] / 2**20
    else:
        before, peak = record["rss_before_kib"] / MIB, record["rss_peak_kib"] / MIB
    increment = peak - before
    budget = "" if checkpoints is None else f" K={checkpoints}"
    print(
        f"[memory] {device} {engine}{budget} steps={steps}: before {before:.1f} MiB, peak {peak:.1f} MiB, "
        f"increment {increment:.1f} MiB ({record['seconds']:.1f} s)"
    )
    return increment


@functools.cache
def _measurements(device: str) -> dict[tuple[str, int, int | None], float | str]:
    # Each child is its own process, so running a few at once changes their
    # time, not their memory.
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        futures = {case: pool.submit(_measure, *case, device) for case in CASES}
    results: dict[tuple[str, int, int | None], float | str] = {}
    for case, future in futures.items():
        error = future.exception()
        # A failed child fails the tests that need it, once, not the whole cache.
        results[case] = future.result() if error is None else f"{type(error).__name__}: {error}"
    return results


def increment_mib(engine: str, steps: int, device: str, checkpoints: int | None = None) -> float:
    value = _measurements(device)[engine, steps, checkpoints]
    if isinstance(value, str):
        pytest.fail(f"measuring {engine} (checkpoints={checkpoints}) at {steps} steps on {device}: {value}")
    return value


def test_adjoint_memory_is_flat_in_the_steps(device: str) -> None:
    small, medium, large = (increment_mib("adjoint", steps, device) for steps in (10, 100, 1000))
    assert medium <= 1.5 * small
    assert large <= 1.5 * medium
    # The measurement does see per-step storage: backprop's graph at 100 steps dwarfs it.
    assert increment_mib("backprop", 100, device) >= 10 * medium


def test_checkpoint_uses_at_most_half_of_backprop(device: str) -> None:
    assert increment_mib("checkpoint", 100, device) <= 0.5 * increment_mib("backprop", 100, device)


def test_checkpoint_budget_bounds_memory(device: str) -> None:
    budget_100 = increment_mib("checkpoint", 100, device, checkpoints=4)
    budget_1000 = increment_mib("checkpoint", 1000, device, checkpoints=4)
    unbudgeted_1000 = increment_mib("checkpoint", 1000, device)
    # With K states stored, memory does not grow with the steps ...
    assert budget_1000 <= 1.5 * budget_100
    # ... and stays well below keeping one state per step.
    assert budget_1000 <= 0.5 * unbudgeted_1000
