"""Timing, machine description, tables and memory probes shared by the asv suite and the standalone scripts.

Standard library only, so that every script can import it whatever it
benchmarks (NumPy-only scripts must not load torch, and the reverse).

Names here must not look like asv benchmarks (``time_*``, ``track_*``,
``mem_*``, ``peakmem_*`` and their CamelCase forms): asv imports every module
of the package and would run them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime
import gc
import json
import math
import os
import platform
import resource
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SINGLE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
# glibc's M_MMAP_THRESHOLD (malloc.h): with a fixed threshold every block at
# least that large gets its own mapping, unmapped on free, so the resident set
# follows the live tensors instead of the heap's fragmentation.
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 65536


def pin_threads() -> None:
    """Pin BLAS and OpenMP to one thread; takes effect only before NumPy or torch is imported."""
    for variable in SINGLE_THREAD_VARIABLES:
        os.environ[variable] = "1"


# --------------------------------------------------------------------------- timing


def timed(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time and process CPU time (seconds) of ``call()``, and its result."""
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    result = call()
    return time.perf_counter() - start_wall, time.process_time() - start_cpu, result


@dataclass
class RoundRobin:
    """Per-call wall times, CPU times (seconds) and last results of :func:`round_robin_times`."""

    wall: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def rounds(self) -> int:
        return len(next(iter(self.wall.values()), []))

    def best(self, name: str, *, cpu: bool = False) -> float:
        """Minimum time of one call of ``name`` in seconds (wall, or process CPU time)."""
        return min((self.cpu if cpu else self.wall)[name])

    def ratio(self, ours: str, theirs: str, *, cpu: bool = False) -> float:
        """``best(ours) / best(theirs)``: below 1 means ``ours`` is faster."""
        return self.best(ours, cpu=cpu) / self.best(theirs, cpu=cpu)


def round_robin_times(
    calls: Mapping[str, Callable[[], Any]],
    *,
    min_time: float,
    min_repeats: int,
    max_repeats: int,
    max_case_time: float = math.inf,
) -> RoundRobin:
    """Time several calls in turn, round after round, so that they see the same machine load.

    One untimed warm-up call each (imports, cached tableaux, branch
    predictors), then rounds of every call until each has run ``min_repeats``
    times and the fastest has run ``min_time`` seconds in all, or the rounds
    have taken ``max_case_time`` seconds (once past ``min_repeats``), or
    ``max_repeats`` rounds have run.

    Parameters
    ----------
    calls : mapping of str to callable
        Name to a zero-argument call; the names key the result.
    min_time, max_case_time : float
        Seconds.
    min_repeats, max_repeats : int

    Returns
    -------
    RoundRobin
    """
    for call in calls.values():
        call()
    gc.collect()
    timings = RoundRobin({name: [] for name in calls}, {name: [] for name in calls})
    started = time.perf_counter()
    while True:
        for name, call in calls.items():
            wall, cpu, timings.results[name] = timed(call)
            timings.wall[name].append(wall)
            timings.cpu[name].append(cpu)
        rounds = timings.rounds
        if rounds >= max_repeats:
            break
        if rounds >= min_repeats and (
            min(sum(record) for record in timings.wall.values()) >= min_time
            or time.perf_counter() - started >= max_case_time
        ):
            break
    return timings


def per_call_time(
    call: Callable[[], Any],
    budget: float,
    block_time: float = 0.005,
    clock: Callable[[], float] = time.process_time,
) -> float:
    """Best time of one ``call()`` in seconds, from blocks of back-to-back calls.

    Blocks last about ``block_time`` seconds each (so the clock's resolution
    does not matter) and the whole measurement about ``budget`` seconds.
    ``clock`` is process CPU time by default; pass ``time.perf_counter`` for
    wall time (work on a GPU, which the process's CPU time does not see).
    """
    call()
    start = clock()
    call()
    single = max(clock() - start, 1e-7)
    per_block = max(1, int(block_time / single))
    blocks = max(3, int(budget / (per_block * single)))
    best = math.inf
    for _ in range(blocks):
        start = clock()
        for _ in range(per_block):
            call()
        best = min(best, (clock() - start) / per_block)
    return best


class CountingRhs:
    """A right-hand side ``f(t, y)`` that counts its calls (for untimed solves: the counter costs time)."""

    def __init__(self, f: Callable[..., Any]) -> None:
        self.f = f
        self.calls = 0

    def __call__(self, t: Any, y: Any) -> Any:
        self.calls += 1
        return self.f(t, y)


def geometric_mean(values: Iterable[float]) -> float:
    logs = [math.log(value) for value in values]
    return math.exp(sum(logs) / len(logs))


# --------------------------------------------------------------------------- report


def cpu_model() -> str:
    """The processor's marketing name (``/proc/cpuinfo``), or what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(versions: Mapping[str, str]) -> dict[str, Any]:
    """Date, platform, processor, core counts, Python and the given library versions."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "python": platform.python_version(),
        **versions,
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
    }


def machine_line(machine: Mapping[str, Any]) -> str:
    """``# platform; cpu; cpu_count=.. usable=..``, the second line of every script's header."""
    cores = f"cpu_count={machine['cpu_count']} usable={machine['cpus_usable']}"
    return f"# {machine['platform']}; {machine['cpu']}; {cores}"


def host_reads(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and how many times it handed a tensor's value to Python.

    Every read of a value (``float``/``bool`` of a tensor, ``.item()``) goes
    through one of two operators, counted here on any device: on a GPU each
    is a synchronisation, so on the CPU this counts what a GPU would wait for
    (the rule of ``packages/ode-adjoint/tests/test_synchronisations.py``),
    and so are the per-sample loop's bulk copies to the host.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    reads = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default)

    class Reads(TorchDispatchMode):
        count = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func in reads:
                self.count += 1
            return func(*args, **(kwargs or {}))

    # A bulk copy to the host (the per-sample loop's statuses and, with compact,
    # its running flags) is no dispatched read on the CPU, where .cpu() is a
    # no-op; it is one wait on a GPU, so it is counted where the loop makes it.
    import ode_core._per_sample as per_sample

    bulk = per_sample._to_host
    copies = 0

    def counted(array: Any) -> Any:
        nonlocal copies
        copies += 1
        return bulk(array)

    per_sample._to_host = counted
    try:
        with Reads() as mode:
            result = call()
    finally:
        per_sample._to_host = bulk
    return result, mode.count + copies


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]], *, first_numeric: int) -> str:
    """A Markdown table whose columns from index ``first_numeric`` on are right-aligned."""
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "".join("---|" if index < first_numeric else "---:|" for index in range(len(columns))),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """How the running script was started, for its output file: ``python benchmarks/x.py --flag``."""
    script = os.path.relpath(sys.argv[0], os.getcwd()) if sys.argv and sys.argv[0] else "?"
    return " ".join(["python", script, *sys.argv[1:]])


def write_json(path: str, payload: Mapping[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    print(f"wrote {path}")


# --------------------------------------------------------------------------- memory


def current_rss_kib() -> int | None:
    """Resident set size now (Linux ``/proc/self/statm``), or None elsewhere."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except OSError:
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kib() -> int:
    """Peak resident set size: ``VmHWM``, which :func:`reset_peak_rss` resets, else ``ru_maxrss``."""
    # ru_maxrss cannot be reset and, after a fork, starts from the parent's
    # resident set; VmHWM can.
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current resident set (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def fix_mmap_threshold(threshold_bytes: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Give glibc's malloc a fixed mmap threshold in this process (what ``MALLOC_MMAP_THRESHOLD_`` does at start).

    Returns False where the C library has no ``mallopt`` (not glibc) or
    refuses the setting.
    """
    library = ctypes.util.find_library("c")
    if library is None:
        return False
    try:
        mallopt = ctypes.CDLL(library).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold_bytes))
