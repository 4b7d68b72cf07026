"""Training runs of the paper's classifiers: schedule, metrics, checkpoints, DDP.

One run trains one model on MNIST or CIFAR-10 with the schedule of Chen et
al. (2018): SGD with momentum 0.9, learning rate 0.1 x batch / 128, divided
by 10 at epochs 60, 100 and 140 of 160 (rescaled to ``epochs``), cross
entropy. Everything a run writes goes to its output folder: one line of
metrics per epoch (``metrics.jsonl``), a checkpoint after every epoch
(``checkpoint.pt``, replaced atomically) and, at the end, ``results.json``.
Under ``torchrun`` the batches are sharded over the processes and the model
wrapped in ``DistributedDataParallel``; rank 0 alone writes files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch import nn

from ._data import ImageDataset, load_dataset, load_embedded_mnist
from ._models import DATASETS, MODELS, Classifier, build_model

__all__ = [
    "CHECKPOINT",
    "METRICS",
    "PAPER_EPOCHS",
    "PAPER_MILESTONES",
    "RESULTS",
    "RunError",
    "TrainConfig",
    "scaled_milestones",
    "train",
]

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
RESULTS = "results.json"
PAPER_EPOCHS = 160
PAPER_MILESTONES = (60, 100, 140)
_CHECKPOINT_FORMAT = "ode-models-checkpoint"
_CHECKPOINT_VERSION = 1
EMBEDDED = "embedded"
"""``data_dir`` value (also the default, ``None``) meaning the MNIST subset shipped with the package."""

# Config fields a resumed run may change: they do not alter the computation.
_RESUMABLE_CHANGES = frozenset({"data_dir", "download", "out", "resume", "device", "threads", "progress", "stop_after"})


class RunError(Exception):
    """A run that cannot start or continue (existing or unreadable checkpoint, mismatched config...)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (the CLI's ``train`` options).

    Parameters
    ----------
    dataset : {"mnist", "cifar10"}
    model : {"resnet6", "resnet1", "odenet", "odenet-notime", "rknet"}
    out : str
        Output folder (created); holds metrics, checkpoint and results.
    data_dir : str, optional
        Folder with the raw MNIST IDX files or CIFAR-10's python batches,
        read offline and never written to. ``None`` or ``"embedded"``: the
        MNIST subset shipped with the package (MNIST only).
    download : bool
        Fetch the dataset into ``data_dir`` with torchvision when its files
        are missing (the only case anything is written there).
    epochs : int
        Epochs of the run; the paper's milestones are rescaled to it (see
        :func:`scaled_milestones`).
    batch_size : int
        Global batch size (split evenly over the processes under torchrun).
    lr : float, optional
        Initial learning rate; default 0.1 x batch_size / 128.
    momentum, weight_decay : float
        SGD's (paper: 0.9 and 0).
    method, rtol, atol, gradient, step_size, seminorm
        ODE-block options, as in :func:`ode_models.build_model`.
    augment : bool
        Training augmentation (MNIST: random crops; CIFAR-10: crops and flips).
    test_batch_size : int
        Batch size of the test evaluation after every epoch.
    device : {"cpu", "cuda"}
    seed : int
        Seeds torch, NumPy and ``random``; the data order and augmentation of
        epoch ``e`` come from generators seeded by (seed, e).
    limit_train, limit_test : int, optional
        Keep the first examples of each split.
    resume : bool
        Continue from ``out/checkpoint.pt``.
    threads : int, optional
        ``torch.set_num_threads``.
    progress : bool
        Progress bar on stderr (rank 0).
    stop_after : int, optional
        Stop once this many epochs are done, leaving a checkpoint to resume
        (for jobs with a time limit); no ``results.json`` before the end.
    """

    dataset: str = "mnist"
    model: str = "odenet"
    out: str = "run"
    data_dir: str | None = None
    epochs: int = PAPER_EPOCHS
    batch_size: int = 128
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    method: str | None = None
    rtol: float = 1e-3
    atol: float = 1e-3
    gradient: str | None = None
    step_size: float | None = None
    seminorm: bool = False
    download: bool = False
    augment: bool = True
    test_batch_size: int = 1000
    device: str = "cpu"
    seed: int = 0
    limit_train: int | None = None
    limit_test: int | None = None
    resume: bool = False
    threads: int | None = None
    progress: bool = True
    stop_after: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset: unknown dataset {self.dataset!r}; valid names are {', '.join(DATASETS)}")
        if self.model not in MODELS:
            raise ValueError(f"model: unknown model {self.model!r}; valid names are {', '.join(MODELS)}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        for name in ("epochs", "batch_size", "test_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        for name in ("limit_train", "limit_test", "threads", "stop_after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: expected a positive integer or None, got {value!r}")
        if self.lr is not None and not self.lr > 0:
            raise ValueError(f"lr: expected a positive number, got {self.lr!r}")
        if not 0 <= self.momentum < 1 or not self.weight_decay >= 0:
            raise ValueError("momentum, weight_decay: expected 0 <= momentum < 1, weight_decay >= 0")
        if self.dataset != "mnist" and self.data_dir in (None, EMBEDDED):
            raise ValueError(f"data_dir: {self.dataset} needs a data dir (only MNIST has an embedded subset)")

    @property
    def initial_lr(self) -> float:
        """``lr``, or the paper's 0.1 scaled by batch_size / 128."""
        return self.lr if self.lr is not None else 0.1 * self.batch_size / 128


def scaled_milestones(epochs: int) -> list[int]:
    """The paper's learning-rate milestones (60, 100, 140 of 160) for ``epochs``.

    Each milestone ``m`` becomes ``floor(m * epochs / 160 + 0.5)`` (nearest,
    halves up), clamped to ``[1, epochs]``; the rate is divided by 10 once per
    milestone after that many epochs (coinciding milestones divide once each).
    For 10 epochs: 4, 6, 9 (from 3.75, 6.25, 8.75); for 160: 60, 100, 140.

    Parameters
    ----------
    epochs : int
        Length of the run.

    Returns
    -------
    list of int
        Three epochs after which the learning rate is divided by 10.

    Examples
    --------
    >>> scaled_milestones(10), scaled_milestones(160), scaled_milestones(1)
    ([4, 6, 9], [60, 100, 140], [1, 1, 1])
    """
    return [min(epochs, max(1, math.floor(m * epochs / PAPER_EPOCHS + 0.5))) for m in PAPER_MILESTONES]


# --- distributed --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_from_env() -> _Dist:
    """RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (single process without them)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return _Dist()
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise RunError(f"RANK, WORLD_SIZE, LOCAL_RANK: expected integers ({exc})") from exc
    return _Dist(rank, world, local)


def _all_sum(values: list[float], dist: _Dist, device: torch.device) -> list[float]:
    if not dist.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def _all_max(value: float, dist: _Dist, device: torch.device) -> float:
    if not dist.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return float(tensor.item())


# --- data order ---------------------------------------------------------------


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence([w & 0xFFFFFFFF for w in words]).generate_state(1, np.uint64)[0] >> 1)


def _epoch_batches(n: int, batch_size: int, epoch: int, seed: int, dist: _Dist) -> list[torch.Tensor]:
    """This rank's batches of epoch ``epoch``: a permutation seeded by (seed, epoch), sharded like DistributedSampler.

    The permutation is padded (by wrapping around) to a multiple of the world
    size, rank ``r`` takes every world-size-th index from ``r``, and splits
    its shard into batches of ``batch_size // world_size``; every rank gets
    the same number of batches.
    """
    generator = torch.Generator().manual_seed(_seed(seed, epoch))
    order = torch.randperm(n, generator=generator)
    world = dist.world_size
    total = math.ceil(n / world) * world
    if total > n:
        order = torch.cat((order, order[: total - n]))
    shard = order[dist.rank : total : world]
    return list(torch.split(shard, batch_size // world))


def _load_data(config: TrainConfig) -> tuple[ImageDataset, ImageDataset]:
    if config.dataset == "mnist" and config.data_dir in (None, EMBEDDED):
        train_set = load_embedded_mnist("train", limit=config.limit_train, augment=config.augment)
        test_set = load_embedded_mnist("test", limit=config.limit_test)
    else:
        assert config.data_dir is not None
        root = Path(config.data_dir)
        if config.download:
            root.mkdir(parents=True, exist_ok=True)
        elif not root.is_dir():
            raise FileNotFoundError(f"data dir {str(root)!r} does not exist (nothing is downloaded without --download)")
        train_set = load_dataset(
            config.dataset, root, "train", limit=config.limit_train, augment=config.augment, download=config.download
        )
        test_set = load_dataset(config.dataset, root, "test", limit=config.limit_test, download=config.download)
    return train_set, test_set


# --- files ----------------------------------------------------------------------


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write ``path`` through a temporary file in its folder and ``os.replace``.

    A crash at any point leaves either the old file or the new one, never a
    partial one; the temporary file is removed on failure.
    """
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(OSError):  # mkstemp's 0600 -> the usual permissions of a new file
            os.chmod(temp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    with contextlib.suppress(OSError):  # persist the rename (not supported everywhere)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_json(path: Path, data: Any) -> None:
    _atomic_write(path, lambda handle: handle.write((json.dumps(data, indent=2) + "\n").encode()))


def _write_metrics(path: Path, metrics: list[dict[str, Any]]) -> None:
    _atomic_write(path, lambda handle: handle.write("".join(json.dumps(m) + "\n" for m in metrics).encode()))


def _append_metrics(path: Path, line: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(line) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _rng_state(device: torch.device) -> dict[str, Any]:
    numpy_state: dict[str, Any] = np.random.get_state(legacy=False)  # noqa: NPY002 (the global RNG is seeded)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": numpy["bit_generator"],
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": int(numpy["pos"])},
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        }
    )
    random.setstate(state["python"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and check a checkpoint; :class:`RunError` if it is missing or unreadable (never modified)."""
    if not path.is_file():
        raise RunError(f"--resume: no checkpoint {str(path)!r} to resume from")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RunError(
            f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc}); it was left as it is"
        ) from exc
    keys = {"format", "version", "epoch", "config", "model", "optimizer", "scheduler", "rng", "metrics"}
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _CHECKPOINT_FORMAT:
        raise RunError(f"{path}: not an ode-models checkpoint; it was left as it is")
    if checkpoint.get("version") != _CHECKPOINT_VERSION or not keys <= checkpoint.keys():
        raise RunError(f"{path}: unsupported or incomplete checkpoint (version {checkpoint.get('version')!r})")
    return checkpoint


def _check_resume_config(config: TrainConfig, saved: Mapping[str, Any], path: Path) -> None:
    current = dataclasses.asdict(config)
    changed = [k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k) != current[k]]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        raise RunError(f"--resume: the options differ from those of {path} ({diffs}); resume with the same options")


# --- progress -----------------------------------------------------------------


class _Progress:
    """One-line progress bar redrawn with carriage returns on a stream."""

    def __init__(self, label: str, total: int, stream: IO[str] | None, interval: float = 0.2) -> None:
        self.label = label
        self.total = total
        self.stream = stream
        self.interval = interval
        self._last = -math.inf
        self._width = 0

    def update(self, done: int, text: str, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.perf_counter()
        if not force and now - self._last < self.interval and done < self.total:
            return
        self._last = now
        filled = 20 * done // max(self.total, 1)
        line = f"{self.label} [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} {text}"
        self.stream.write("\r" + line.ljust(self._width))
        self.stream.flush()
        self._width = len(line)

    def close(self, text: str, stream: IO[str] | None) -> None:
        """Replace the bar (if any) by ``text`` and a newline on ``stream``."""
        if stream is None:
            return
        stream.write(("\r" if self.stream is not None else "") + text.ljust(self._width) + "\n")
        stream.flush()


# --- the run --------------------------------------------------------------------


def _peak_memory(device: torch.device) -> int:
    """CUDA: max allocated bytes; CPU: peak resident set size of the process (0 if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    try:
        import resource
    except ImportError:  # not on Windows
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


def _nfe_totals(model: Classifier) -> tuple[int, int]:
    blocks = model.ode_blocks()
    return sum(b.total_nfe_forward for b in blocks), sum(b.total_nfe_backward for b in blocks)


def _evaluate(
    model: Classifier, data: ImageDataset, batch_size: int, device: torch.device, dist: _Dist
) -> tuple[float, float, float]:
    """Test loss, error and mean forward NFE per batch (this rank's share, summed over ranks)."""
    model.eval()
    model.reset_nfe()
    indices = torch.arange(dist.rank, len(data), dist.world_size)
    loss_sum, wrong, batches = 0.0, 0.0, 0
    with torch.no_grad():
        for index in torch.split(indices, batch_size):
            images, labels = data.batch(index)
            images, labels = images.to(device), labels.to(device)
            logits = model(images)
            loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            wrong += float((logits.argmax(1) != labels).sum())
            batches += 1
    nfe_forward = _nfe_totals(model)[0]
    model.reset_nfe()
    loss_sum, wrong, count, nfe, batch_count = _all_sum(
        [loss_sum, wrong, float(len(indices)), float(nfe_forward), float(batches)], dist, device
    )
    return loss_sum / max(count, 1), wrong / max(count, 1), nfe / max(batch_count, 1)


def _results(
    config: TrainConfig, metrics: list[dict[str, Any]], params: int, dist: _Dist, complete: bool
) -> dict[str, Any]:
    last = metrics[-1] if metrics else {}
    return {
        "model": config.model,
        "dataset": config.dataset,
        "complete": complete,
        "epochs_completed": len(metrics),
        "test_error": last.get("test_error"),
        "best_test_error": min((m["test_error"] for m in metrics), default=None),
        "test_loss": last.get("test_loss"),
        "train_loss": last.get("train_loss"),
        "train_acc": last.get("train_acc"),
        "params": params,
        "peak_memory_bytes": max((m["peak_memory_bytes"] for m in metrics), default=0),
        "wall_time_s": sum(m["epoch_time_s"] for m in metrics),
        "nfe_forward": last.get("nfe_forward"),
        "nfe_backward": last.get("nfe_backward"),
        "test_nfe_forward": last.get("test_nfe_forward"),
        "initial_lr": config.initial_lr,
        "milestones": scaled_milestones(config.epochs),
        "world_size": dist.world_size,
        "rank": dist.rank,
        "torch_version": torch.__version__,
        "config": dataclasses.asdict(config),
    }


def _device(config: TrainConfig, dist: _Dist) -> torch.device:
    if config.device == "cuda":
        if not torch.cuda.is_available():
            raise RunError("--device cuda: no CUDA device is available")
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


@contextlib.contextmanager
def _process_group(dist: _Dist, device: torch.device) -> Iterator[None]:
    if not dist.enabled or torch.distributed.is_initialized():
        yield
        return
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def train(config: TrainConfig | Mapping[str, Any], *, log: IO[str] | None = None) -> dict[str, Any]:
    """Train one model with the paper's schedule; write metrics, checkpoints and results.

    Parameters
    ----------
    config : TrainConfig or mapping
        The run (a mapping is passed to :class:`TrainConfig`).
    log : text stream, optional
        Progress and messages (default ``sys.stderr``; rank 0 only).

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
    dist = _dist_from_env()
    if dist.enabled and config.batch_size % dist.world_size:
        raise ValueError(
            f"batch_size: {config.batch_size} is not divisible by the {dist.world_size} processes (global batch size)"
        )
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    checkpoint_path, metrics_path, results_path = out / CHECKPOINT, out / METRICS, out / RESULTS
    stream = (log if log is not None else sys.stderr) if dist.main else None

    checkpoint: dict[str, Any] | None = None
    if config.resume:
        checkpoint = load_checkpoint(checkpoint_path)
        _check_resume_config(config, checkpoint["config"], checkpoint_path)
    elif checkpoint_path.exists() or results_path.exists():
        raise RunError(
            f"out: {str(out)!r} already holds a run ({CHECKPOINT} or {RESULTS}); "
            "pass --resume to continue it or choose another --out (nothing was overwritten)"
        )

    device = _device(config, dist)
    train_set, test_set = _load_data(config)

    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)  # noqa: NPY002
    torch.manual_seed(config.seed)
    model = build_model(
        config.model,
        config.dataset,
        method=config.method,
        rtol=config.rtol,
        atol=config.atol,
        gradient=config.gradient,
        step_size=config.step_size,
        seminorm=config.seminorm,
    ).to(device)
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.initial_lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, scaled_milestones(config.epochs), gamma=0.1)
    metrics: list[dict[str, Any]] = []
    start_epoch = 0
    if checkpoint is not None:
        try:
            model.load_state_dict(checkpoint["model"])
            optimizer.load_state_dict(checkpoint["optimizer"])
            scheduler.load_state_dict(checkpoint["scheduler"])
            _set_rng_state(checkpoint["rng"], device)
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise RunError(f"{checkpoint_path}: does not fit this model ({exc}); it was left as it is") from exc
        metrics = list(checkpoint["metrics"])
        start_epoch = int(checkpoint["epoch"])
        saved_world = int(checkpoint.get("world_size", 1))
        if stream is not None and saved_world != dist.world_size:
            stream.write(f"note: resuming a {saved_world}-process run on {dist.world_size} (data order differs)\n")

    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        _write_metrics(metrics_path, metrics)  # drops lines past the checkpoint (a crash between the two writes)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    last_epoch = config.epochs if config.stop_after is None else min(config.epochs, config.stop_after)
    if stream is not None and start_epoch >= config.epochs:
        stream.write(f"{out}: all {config.epochs} epochs already done\n")

    with _process_group(dist, device):
        network: nn.Module = model
        if dist.enabled:
            network = nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        for epoch in range(start_epoch, last_epoch):
            line = _train_epoch(config, model, network, optimizer, train_set, test_set, epoch, device, dist, stream)
            scheduler.step()
            line["peak_memory_bytes"] = max(
                int(_all_max(_peak_memory(device), dist, device)),
                max((m["peak_memory_bytes"] for m in metrics), default=0),
            )
            metrics.append(line)
            if dist.main:
                _append_metrics(metrics_path, line)
                state = {
                    "format": _CHECKPOINT_FORMAT,
                    "version": _CHECKPOINT_VERSION,
                    "epoch": epoch + 1,
                    "config": dataclasses.asdict(config),
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": _rng_state(device),
                    "metrics": metrics,
                    "params": params,
                    "world_size": dist.world_size,
                }
                _atomic_write(checkpoint_path, functools.partial(torch.save, state))

    complete = len(metrics) >= config.epochs
    results = _results(config, metrics, params, dist, complete)
    if dist.main and complete:
        _write_json(results_path, results)
    return results


def _train_epoch(
    config: TrainConfig,
    model: Classifier,
    network: nn.Module,
    optimizer: torch.optim.Optimizer,
    train_set: ImageDataset,
    test_set: ImageDataset,
    epoch: int,
    device: torch.device,
    dist: _Dist,
    stream: IO[str] | None,
) -> dict[str, Any]:
    lr = float(optimizer.param_groups[0]["lr"])
    batches = _epoch_batches(len(train_set), config.batch_size, epoch, config.seed, dist)
    augmentation = torch.Generator().manual_seed(_seed(config.seed, epoch, dist.rank + 1))
    progress = _Progress(f"epoch {epoch + 1}/{config.epochs}", len(batches), stream if config.progress else None)
    network.train()
    model.reset_nfe()
    loss_sum, correct, seen = 0.0, 0.0, 0
    start = time.perf_counter()
    for step, index in enumerate(batches, 1):
        images, labels = train_set.batch(index, augmentation)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        logits = network(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()
        loss_sum += float(loss.detach()) * len(index)
        correct += float((logits.detach().argmax(1) == labels).sum())
        seen += len(index)
        if progress.stream is not None:
            nfe_f, nfe_b = _nfe_totals(model)
            elapsed = time.perf_counter() - start
            progress.update(
                step,
                f"loss {loss_sum / seen:.4f} acc {100 * correct / seen:5.1f}% NFE-F {nfe_f / step:.1f} "
                f"NFE-B {nfe_b / step:.1f} {seen * dist.world_size / max(elapsed, 1e-9):.0f} img/s",
            )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    train_time = time.perf_counter() - start
    nfe_forward, nfe_backward = _nfe_totals(model)
    loss_sum, correct, seen_all, nfe_forward_sum, nfe_backward_sum, batch_count = _all_sum(
        [loss_sum, correct, float(seen), float(nfe_forward), float(nfe_backward), float(len(batches))], dist, device
    )
    test_loss, test_error, test_nfe = _evaluate(model, test_set, config.test_batch_size, device, dist)
    epoch_time = time.perf_counter() - start
    line = {
        "epoch": epoch + 1,
        "lr": lr,
        "train_loss": loss_sum / max(seen_all, 1),
        "train_acc": correct / max(seen_all, 1),
        "test_loss": test_loss,
        "test_error": test_error,
        "nfe_forward": nfe_forward_sum / max(batch_count, 1),
        "nfe_backward": nfe_backward_sum / max(batch_count, 1),
        "test_nfe_forward": test_nfe,
        "train_time_s": train_time,
        "epoch_time_s": epoch_time,
        "images_per_s": seen_all / max(train_time, 1e-9),
    }
    progress.close(
        f"epoch {epoch + 1}/{config.epochs}: train loss {line['train_loss']:.4f} acc {100 * line['train_acc']:.2f}% "
        f"| test error {100 * test_error:.2f}% | NFE-F {line['nfe_forward']:.1f} NFE-B {line['nfe_backward']:.1f} "
        f"| lr {lr:.3g} | {epoch_time:.1f} s",
        stream,
    )
    return line
