"""What a run reports: one ``metrics.jsonl`` line per epoch and, at the end, ``results.json``.

Rank 0 writes both. ``metrics.jsonl`` is appended (and fsynced) after each
epoch, then rewritten from the checkpoint on ``--resume``, which drops any
line of an epoch the checkpoint does not hold. ``results.json`` summarises
the run (:func:`summarize`) and is written once, when the last epoch is done.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch

from ._augmented import REGULARIZERS
from ._config import TrainConfig, scaled_milestones
from ._distributed import DistEnv
from ._files import atomic_write
from ._models import ODEModel
from ._tasks import Task

__all__ = [
    "METRICS",
    "RESULTS",
    "append_metrics",
    "nfe_totals",
    "peak_memory",
    "regularizer_means",
    "summarize",
    "write_metrics",
    "write_results",
]

METRICS = "metrics.jsonl"
"""The per-epoch metrics' file name in a run folder."""
RESULTS = "results.json"
"""The finished run's summary file name in a run folder."""


def write_metrics(path: Path, metrics: list[dict[str, Any]]) -> None:
    """Replace ``path`` (atomically) by one JSON line per epoch of ``metrics``."""
    atomic_write(path, lambda handle: handle.write("".join(json.dumps(m) + "\n" for m in metrics).encode()))


def append_metrics(path: Path, line: dict[str, Any]) -> None:
    """Append one epoch's line to ``path`` and fsync it."""
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write ``results`` to ``path`` (atomically) as indented JSON."""
    atomic_write(path, lambda handle: handle.write((json.dumps(results, indent=2) + "\n").encode()))


def nfe_totals(model: ODEModel) -> tuple[int, int]:
    """Forward and backward evaluations since the last reset, summed over the model's ODE blocks."""
    blocks = model.ode_blocks()
    return sum(b.total_nfe_forward for b in blocks), sum(b.total_nfe_backward for b in blocks)


def regularizer_means(model: ODEModel) -> dict[str, float]:
    """Each active regulariser's mean per training batch since the last reset, summed over the ODE blocks."""
    means: dict[str, float] = {}
    for block in model.ode_blocks():
        for name, value in block.regularizer_means.items():
            means[name] = means.get(name, 0.0) + value
    return means


def peak_memory(device: torch.device) -> int:
    """CUDA: max allocated bytes; CPU: peak resident set size of the process (0 if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def summarize(
    task: Task, config: TrainConfig, metrics: list[dict[str, Any]], params: int, dist: DistEnv, complete: bool
) -> dict[str, Any]:
    """What ``results.json`` holds, from the epochs' ``metrics`` (see :func:`ode_models.train`)."""
    last = metrics[-1] if metrics else {}
    schedule = {"milestones": scaled_milestones(config.epochs)} if task.name == "classify" else {}
    return {
        "task": task.name,
        "model": config.model,
        "dataset": config.dataset,
        "complete": complete,
        "epochs_completed": len(metrics),
        **{key: last.get(key) for key in task.result_keys},
        f"best_{task.primary}": min((m[task.primary] for m in metrics), default=None),
        "params": params,
        "peak_memory_bytes": max((m["peak_memory_bytes"] for m in metrics), default=0),
        "wall_time_s": sum(m["epoch_time_s"] for m in metrics),
        "nfe_forward": last.get("nfe_forward"),
        "nfe_backward": last.get("nfe_backward"),
        "test_nfe_forward": last.get("test_nfe_forward"),
        **{name: last[name] for name in REGULARIZERS if name in last},
        "initial_lr": config.initial_lr,
        **schedule,
        "world_size": dist.world_size,
        "rank": dist.rank,
        "torch_version": torch.__version__,
        "config": dataclasses.asdict(config),
    }
