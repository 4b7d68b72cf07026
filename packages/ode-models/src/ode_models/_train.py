"""Training runs: :func:`train_one_epoch`, :func:`evaluate` and :func:`train`.

One run trains one model of a task (``_tasks``): an image classifier on
MNIST or CIFAR-10 with the schedule of Chen et al. (2018) and cross
entropy, or a continuous normalizing flow on a toy density by maximum
likelihood. Everything a run writes goes to its output
folder: one line of metrics per epoch (``metrics.jsonl``), a checkpoint
after every epoch (``checkpoint.pt``, replaced atomically) and, at the end,
``results.json``. Under ``torchrun`` the batches are sharded over the
processes and the model wrapped in ``DistributedDataParallel``; rank 0
alone writes files. The parts live beside this module: ``_config``
(options, schedule), ``_distributed``, ``_checkpoint``, ``_metrics`` and
``_progress``.
"""

from __future__ import annotations

import dataclasses
import random
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from ._checkpoint import (
    CHECKPOINT,
    find_resume_checkpoint,
    load_checkpoint,
    promote,
    restore,
    resumable_temporaries,
    rng_state,
    save_checkpoint,
)
from ._config import (
    EMBEDDED,
    PAPER_EPOCHS,
    PAPER_MILESTONES,
    RunError,
    TrainConfig,
    check_resume_config,
    long_cpu_run_hint,
    scaled_milestones,
)
from ._distributed import (
    DistEnv,
    all_max,
    all_sum,
    barrier,
    dist_from_env,
    epoch_batches,
    eval_shard,
    process_group,
    rank_device,
    seed_words,
)
from ._files import remove_quietly, temporary_files
from ._metrics import (
    METRICS,
    RESULTS,
    append_metrics,
    nfe_totals,
    peak_memory,
    regularizer_means,
    summarize,
    write_metrics,
    write_results,
)
from ._models import ODEModel
from ._progress import EpochProgress
from ._tasks import Batches, Task, get_task

__all__ = [
    "CHECKPOINT",
    "EMBEDDED",
    "METRICS",
    "PAPER_EPOCHS",
    "PAPER_MILESTONES",
    "RESULTS",
    "RunError",
    "TrainConfig",
    "evaluate",
    "load_checkpoint",
    "scaled_milestones",
    "train",
    "train_one_epoch",
]


def train_one_epoch(
    task: Task,
    model: ODEModel,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: Batches,
    batches: list[torch.Tensor],
    augmentation: torch.Generator,
    device: torch.device,
    dist: DistEnv,
    progress: EpochProgress,
) -> dict[str, float]:
    """One pass over this rank's ``batches``; the training metrics, summed over the ranks.

    ``network`` is ``model`` or its DistributedDataParallel wrapper;
    ``batches`` (from :func:`epoch_batches`) and the ``augmentation``
    generator are seeded by (seed, epoch), so a resumed run repeats them
    exactly. The loss is the task's plus the ODE blocks' regularisers.
    """
    network.train()
    model.reset_nfe()
    sums = dict.fromkeys(task.train_sum_names, 0.0)
    start = time.perf_counter()
    for step, index in enumerate(batches, 1):
        batch = tuple(part.to(device, non_blocking=True) for part in data.batch(index, augmentation))
        loss, batch_sums = task.train_batch(network, batch)
        regularization = model.take_regularization_loss()
        objective = loss if regularization is None else loss + regularization
        optimizer.zero_grad(set_to_none=True)
        objective.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        for key, value in batch_sums.items():
            sums[key] += value
        if progress.shows_bar:
            nfe_f, nfe_b = nfe_totals(model)
            rate = sums["count"] * dist.world_size / max(time.perf_counter() - start, 1e-9)
            nfe = f"NFE-F {nfe_f / step:.1f} NFE-B {nfe_b / step:.1f}"
            progress.step(f"{task.progress(sums)} {nfe} {rate:.0f} {task.sample_unit}/s")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.perf_counter() - start
    nfe_forward, nfe_backward = nfe_totals(model)
    regularizers = regularizer_means(model)
    keys = task.train_sum_names  # the same on every rank, so the collective pairs up
    nfe_forward_sum, nfe_backward_sum, batch_count, *rest = all_sum(
        [
            float(nfe_forward),
            float(nfe_backward),
            float(len(batches)),
            *(sums[k] for k in keys),
            *regularizers.values(),
        ],
        dist,
        device,
    )
    totals = dict(zip(keys, rest[: len(keys)]))
    return {
        # The task's loss alone (comparable across runs); the regularisers come beside it, unweighted means
        # per batch, averaged over the ranks.
        **{name: total / dist.world_size for name, total in zip(regularizers, rest[len(keys) :])},
        **task.train_metrics(totals),
        "nfe_forward": nfe_forward_sum / max(batch_count, 1),
        "nfe_backward": nfe_backward_sum / max(batch_count, 1),
        "train_time_s": train_time,
        "samples_per_s": totals.get("count", 0.0) / max(train_time, 1e-9),
    }


def evaluate(
    task: Task, model: ODEModel, data: Batches, batch_size: int, device: torch.device, dist: DistEnv
) -> dict[str, float]:
    """The task's test metrics and the mean forward NFE per batch: each rank's share, summed over the ranks."""
    model.eval()
    model.reset_nfe()
    indices = eval_shard(len(data), dist)
    sums = dict.fromkeys(task.test_sum_names, 0.0)  # also for a rank with no test batch
    batches = 0
    with torch.no_grad():
        for index in torch.split(indices, batch_size):
            batch = tuple(part.to(device) for part in data.batch(index))
            for key, value in task.test_sums(model, batch).items():
                sums[key] += value
            batches += 1
    nfe_forward = nfe_totals(model)[0]
    model.reset_nfe()
    keys = task.test_sum_names
    nfe, batch_count, *totals = all_sum([float(nfe_forward), float(batches), *(sums[k] for k in keys)], dist, device)
    return {**task.test_metrics(dict(zip(keys, totals))), "test_nfe_forward": nfe / max(batch_count, 1)}


def train(config: TrainConfig | Mapping[str, Any], *, log: IO[str] | None = None) -> dict[str, Any]:
    """Train one model with the paper's schedule; write metrics, checkpoints and results.

    Parameters
    ----------
    config : TrainConfig or mapping
        The run (a mapping is passed to :class:`TrainConfig`).
    log : text stream, optional
        Progress and messages (default ``sys.stderr``; rank 0 only). A
        tqdm bar where it is a terminal, one line per epoch in any case; a
        one-line hint first when the run would keep a CPU busy for long.

    Returns
    -------
    dict
        What ``results.json`` holds: ``test_error`` (last epoch), ``params``,
        ``peak_memory_bytes``, ``wall_time_s`` (training and testing time
        summed over epochs, across resumes), ``nfe_forward`` /
        ``nfe_backward`` (mean evaluations per training batch in the last
        epoch, summed over ODE blocks), ``config`` and more. With
        ``stop_after`` reached first, ``complete`` is false and no
        ``results.json`` is written.

    Raises
    ------
    RunError
        ``out`` already holds a run and ``resume`` is off; or ``resume`` is
        on and the checkpoint is missing, unreadable or from other options.
        Existing checkpoints are never deleted or overwritten by a failure.
    ValueError, FileNotFoundError
        Bad options, missing or corrupt data.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig(**config)
    dist = dist_from_env()
    if dist.enabled and config.global_batch_size % dist.world_size:
        raise ValueError(
            f"batch_size: {config.batch_size} is not divisible by the {dist.world_size} processes (global batch size)"
        )
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    device = rank_device(config.device, dist)
    stream = (log if log is not None else sys.stderr) if dist.main else None
    with process_group(dist, device):  # every rank leaves it when the run ends, also on errors
        return _run(config, dist, device, stream)


def _run(config: TrainConfig, dist: DistEnv, device: torch.device, stream: IO[str] | None) -> dict[str, Any]:
    out = Path(config.out)
    checkpoint_path, metrics_path, results_path = out / CHECKPOINT, out / METRICS, out / RESULTS
    resumed = _resume_point(config, checkpoint_path, results_path)
    task = get_task(config.task)
    train_set, test_set = task.load_data(config)
    model, optimizer, scheduler = _build(task, config, device)
    metrics: list[dict[str, Any]] = []
    start_epoch = 0
    if resumed is not None:
        source, checkpoint = resumed
        restore(checkpoint, source, model, optimizer, scheduler, device)
        metrics, start_epoch = list(checkpoint["metrics"]), int(checkpoint["epoch"])
        saved_world = int(checkpoint.get("world_size", 1))
        if stream is not None and source != checkpoint_path:
            stream.write(
                f"note: resuming from {source.name} (epoch {start_epoch}, complete; a kill came before its rename)\n"
            )
        if stream is not None and saved_world != dist.world_size:
            stream.write(f"note: resuming a {saved_world}-process run on {dist.world_size} (data order differs)\n")
    barrier(dist, device)  # every rank has read the checkpoint: rank 0 may rename and clean up
    if dist.main:
        _settle_folder(out, None if resumed is None else resumed[0], metrics)

    last_epoch = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    hint = long_cpu_run_hint(config, len(train_set), last_epoch - start_epoch, dist.world_size)
    if stream is not None and hint is not None:
        stream.write(hint + "\n")
    if stream is not None and start_epoch >= config.epochs:
        stream.write(f"{out}: all {config.epochs} epochs already done\n")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    network: nn.Module = model
    if dist.enabled:
        device_ids = [device.index] if device.type == "cuda" else None
        network = nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    params = sum(p.numel() for p in model.parameters())

    for epoch in range(start_epoch, last_epoch):
        label = f"epoch {epoch + 1}/{config.epochs}"
        batches = epoch_batches(len(train_set), config.global_batch_size, epoch, config.seed, dist)
        augmentation = torch.Generator().manual_seed(seed_words(config.seed, epoch, dist.rank + 1))
        progress = EpochProgress(label, len(batches), stream, bar=config.progress)
        lr = float(optimizer.param_groups[0]["lr"])
        start = time.perf_counter()
        trained = train_one_epoch(
            task, model, network, optimizer, train_set, batches, augmentation, device, dist, progress
        )
        tested = evaluate(task, model, test_set, config.test_batch_size, device, dist)
        line: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, **trained, **tested}
        line["epoch_time_s"] = time.perf_counter() - start
        scheduler.step()
        progress.close(
            f"{label}: {task.epoch_summary(line)} | NFE-F {line['nfe_forward']:.1f} "
            f"NFE-B {line['nfe_backward']:.1f} | lr {lr:.3g} | {line['epoch_time_s']:.1f} s"
        )
        line["peak_memory_bytes"] = max(
            int(all_max(peak_memory(device), dist, device)), max((m["peak_memory_bytes"] for m in metrics), default=0)
        )
        metrics.append(line)
        if dist.main:
            append_metrics(metrics_path, line)
            state = {
                "epoch": epoch + 1,
                "config": dataclasses.asdict(config),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": rng_state(device),
                "metrics": metrics,
                "params": params,
                "world_size": dist.world_size,
            }
            save_checkpoint(checkpoint_path, state)
    del network  # DDP's reducer lets go of the process group before it is destroyed

    complete = len(metrics) >= config.epochs
    results = summarize(task, config, metrics, params, dist, complete)
    if dist.main and complete:
        write_results(results_path, results)
    return results


def _build(
    task: Task, config: TrainConfig, device: torch.device
) -> tuple[ODEModel, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """The task's model (after seeding every generator), its optimizer and schedule."""
    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)  # noqa: NPY002
    torch.manual_seed(config.seed)
    model = task.build(config).to(device)
    optimizer, scheduler = task.optimizer(config, model)
    return model, optimizer, scheduler


def _settle_folder(out: Path, source: Path | None, metrics: list[dict[str, Any]]) -> None:
    """Rank 0, before the first epoch: finish an interrupted rename, remove what kills left, rewrite the metrics."""
    out.mkdir(parents=True, exist_ok=True)
    if source is not None and source != out / CHECKPOINT:
        promote(source, out / CHECKPOINT)
    for name in (CHECKPOINT, METRICS, RESULTS):  # incomplete or superseded temporary files
        for temporary in temporary_files(out / name):
            remove_quietly(temporary)
    write_metrics(out / METRICS, metrics)  # drops lines past the checkpoint (a crash between the two writes)


def _resume_point(config: TrainConfig, checkpoint_path: Path, results_path: Path) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint to continue from (``resume``), or ``None`` for a fresh run in a folder without one."""
    if config.resume:
        source, checkpoint = find_resume_checkpoint(checkpoint_path)
        check_resume_config(config, checkpoint["config"], source)
        return source, checkpoint
    if checkpoint_path.exists() or results_path.exists() or resumable_temporaries(checkpoint_path):
        raise RunError(
            f"out: {str(checkpoint_path.parent)!r} already holds a run ({CHECKPOINT}, a complete temporary "
            f"checkpoint or {RESULTS}); pass --resume to continue it or choose another --out (nothing was overwritten)"
        )
    return None
