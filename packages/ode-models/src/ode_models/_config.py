"""What defines a training run: :class:`TrainConfig` and the paper's learning-rate schedule.

Chen et al. (2018) train with SGD, momentum 0.9, learning rate 0.1 x batch /
128, divided by 10 at epochs 60, 100 and 140 of 160; :func:`scaled_milestones`
rescales those epochs to a shorter run and :func:`lr_schedule` makes the
scheduler. :func:`long_cpu_run_hint` warns before a run that would keep a CPU
busy for long.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ._augmented import DIVERGENCES, Regularization
from ._models import check_regularization

__all__ = [
    "EMBEDDED",
    "PAPER_EPOCHS",
    "PAPER_MILESTONES",
    "RunError",
    "TrainConfig",
    "check_resume_config",
    "long_cpu_run_hint",
    "lr_schedule",
    "scaled_milestones",
]

PAPER_EPOCHS = 160
"""Epochs of the paper's schedule (the default of ``--epochs``)."""
PAPER_MILESTONES = (60, 100, 140)
"""Epochs of the paper's schedule after which the learning rate is divided by 10."""
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
    task : {"classify", "density", "latent"}
        What the run trains (:data:`ode_models.TASKS`): the paper's image
        classifiers, a continuous normalizing flow on a toy density, or the
        latent ODE on irregularly sampled spirals.
    dataset : str
        Empty for the task's default. ``classify``: ``"mnist"`` (default) or ``"cifar10"``; ``density``:
        ``"eight-gaussians"`` (default), ``"two-moons"``, ``"checkerboard"`` or ``"mnist"``;
        ``latent``: ``"spirals"``.
    model : str
        Empty for the task's default. ``classify``: ``"odenet"`` (default), ``"odenet-notime"``,
        ``"rknet"``, ``"resnet6"`` or ``"resnet1"``; ``density``: ``"cnf"``;
        ``latent``: ``"latent-ode"`` (default) or ``"rnn"``.
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
    batch_size : int, optional
        Global batch size (split evenly over the processes under torchrun);
        by default the task's, 128 (``classify``), 512 (``density``; 200 on
        MNIST) or 100 (``latent``).
    lr : float, optional
        Initial learning rate; default 0.1 x batch_size / 128 (``classify``,
        SGD with the paper's schedule), 1e-3 (``density``, Adam, constant)
        or 1e-2 (``latent``, Adam, constant).
    momentum, weight_decay : float
        SGD's momentum (paper: 0.9), the optimiser's weight decay (0).
    method, rtol, atol, gradient, step_size, seminorm, first_step
        ODE-block options, as in :func:`ode_models.build_model`.
    kinetic_energy, jacobian_norm : float
        Weights of the RNODE regularisers of the ODE block
        (:class:`ode_models.Regularization`; 0, the default, is off).
    divergence : {"exact", "hutchinson"}, optional
        ``density``: the flow's trace, exact or Hutchinson's estimate; by
        default exact for the toy densities, Hutchinson's for MNIST.
    observations : int
        ``latent``: observations per spiral, 2 to 100 (the paper's 30, 50
        or 100), each spiral at its own times.
    augment : bool
        Training augmentation (MNIST: random crops; CIFAR-10: crops and flips).
    test_batch_size : int
        Batch size of the test evaluation after every epoch.
    device : {"cpu", "cuda"}
    seed : int
        Seeds torch, NumPy and ``random``; the data order and augmentation of
        epoch ``e`` come from generators seeded by (seed, e).
    limit_train, limit_test : int, optional
        Keep the first examples of each split; for a toy density, the
        number of points drawn (default 50,000 and 10,000).
    resume : bool
        Continue from ``out/checkpoint.pt`` (or from a complete temporary
        checkpoint that a kill left before its rename).
    threads : int, optional
        ``torch.set_num_threads``.
    progress : bool
        Progress bar on stderr (rank 0): tqdm's, where the log stream is a
        terminal and tqdm is installed; otherwise only the per-epoch lines.
    stop_after : int, optional
        Stop once this many epochs are done, leaving a checkpoint to resume
        (for jobs with a time limit); no ``results.json`` before the end.
    """

    task: str = "classify"
    dataset: str = ""
    model: str = ""
    out: str = "run"
    data_dir: str | None = None
    epochs: int = PAPER_EPOCHS
    batch_size: int | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    method: str | None = None
    rtol: float = 1e-3
    atol: float = 1e-3
    gradient: str | None = None
    step_size: float | None = None
    seminorm: bool = False
    first_step: float | None = None
    kinetic_energy: float = 0.0
    jacobian_norm: float = 0.0
    divergence: str | None = None
    observations: int = 30
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
        from ._tasks import get_task  # the tasks build on this module's options

        task = get_task(self.task)
        # The task's defaults, filled in so that the config (and a checkpoint's copy) says what ran.
        if self.dataset == "":
            object.__setattr__(self, "dataset", task.default_dataset)
        for name in ("model", "batch_size", "divergence"):
            if getattr(self, name) in ("", None):
                object.__setattr__(self, name, task.default(name, self.dataset))
        if self.dataset not in task.datasets:
            raise ValueError(
                f"dataset: unknown dataset {self.dataset!r} for task {self.task!r}; valid names are "
                f"{', '.join(task.datasets)}"
            )
        if self.model not in task.models:
            raise ValueError(
                f"model: unknown model {self.model!r} for task {self.task!r}; valid names are {', '.join(task.models)}"
            )
        if self.divergence is not None and self.divergence not in DIVERGENCES:
            raise ValueError(f"divergence: expected one of {', '.join(DIVERGENCES)}, got {self.divergence!r}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device: expected 'cpu' or 'cuda', got {self.device!r}")
        if isinstance(self.observations, bool) or not isinstance(self.observations, int):
            raise ValueError(f"observations: expected an integer from 2 to 100, got {self.observations!r}")
        if not 2 <= self.observations <= 100:
            raise ValueError(f"observations: expected an integer from 2 to 100, got {self.observations!r}")
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
        check_regularization(self.model, self.regularization)
        task.check(self)

    @property
    def regularization(self) -> Regularization:
        """The ODE block's regularisers (checks the weights)."""
        return Regularization(kinetic_energy=self.kinetic_energy, jacobian_norm=self.jacobian_norm)

    @property
    def initial_lr(self) -> float:
        """``lr``, or the task's default (classify: the paper's 0.1 scaled by batch_size / 128)."""
        from ._tasks import get_task

        if self.lr is not None:
            return self.lr
        return get_task(self.task).default_lr(self.global_batch_size)

    @property
    def global_batch_size(self) -> int:
        """``batch_size``, filled in with the task's default at construction."""
        if self.batch_size is None:  # pragma: no cover - __post_init__ fills it in
            raise RuntimeError("TrainConfig: batch_size unset")
        return self.batch_size


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


def lr_schedule(optimizer: torch.optim.Optimizer, epochs: int) -> torch.optim.lr_scheduler.MultiStepLR:
    """The paper's schedule for ``optimizer``: divide by 10 at :func:`scaled_milestones` (step once per epoch)."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, scaled_milestones(epochs), gamma=0.1)


def check_resume_config(config: TrainConfig, saved: Mapping[str, Any], path: Path) -> None:
    """:class:`RunError` unless ``config`` matches the ``saved`` one on every field that alters the computation."""
    current = dataclasses.asdict(config)
    # A field the saved config lacks (a run from before the field existed) had its default.
    defaults = {field.name: field.default for field in dataclasses.fields(TrainConfig)}
    changed = [k for k in current if k not in _RESUMABLE_CHANGES and saved.get(k, defaults[k]) != current[k]]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k, defaults[k])!r} -> {current[k]!r}" for k in changed)
        raise RunError(f"--resume: the options differ from those of {path} ({diffs}); resume with the same options")


# --- the cost of a run on a CPU ---------------------------------------------------

# Seconds per training image (forward, backward and step, with its share of
# the test pass) on the project's 2-core CPU machine, 2026-12-01: the full
# MNIST runs of docs/models.md (`python benchmarks/reproduce.py mnist-full`:
# odenet with the checkpointing engine 2.5 ms, resnet1 0.78 ms, resnet6
# 0.88 ms per image over 5 epochs) and first epochs of 5,120 full-MNIST
# images at the default tolerances (odenet with backprop 1.9 ms, with the
# adjoint 2.1 ms, NFE-F 22 and NFE-B 12; rknet's 16 fixed evaluations 1.6
# ms). Rough by nature: an ODE-Net's evaluations grow as it trains.
_CPU_SECONDS_PER_IMAGE = {
    ("resnet1", None): 0.78e-3,
    ("resnet6", None): 0.88e-3,
    ("rknet", "backprop"): 1.6e-3,
    ("odenet", "backprop"): 1.9e-3,
    ("odenet", "checkpoint"): 2.5e-3,
    ("odenet", "adjoint"): 2.1e-3,
}
LONG_CPU_RUN_S = 900.0
"""Estimated CPU seconds above which :func:`long_cpu_run_hint` speaks up (a quarter of an hour)."""


def _duration(seconds: float) -> str:
    """``"25 minutes"`` below an hour and a half, ``"5.6 hours"`` above."""
    return f"{seconds / 60:.0f} minutes" if seconds < 5400 else f"{seconds / 3600:.1f} hours"


def _model_gradient(config: TrainConfig) -> tuple[str, str | None]:
    if config.model.startswith("resnet"):
        return config.model, None
    family = "rknet" if config.model == "rknet" else "odenet"
    default = "backprop" if family == "rknet" else "adjoint"
    return family, config.gradient or default


def long_cpu_run_hint(config: TrainConfig, n_train: int, epochs_to_run: int, world_size: int = 1) -> str | None:
    """A one-line hint when ``config`` would keep a CPU busy for long (over :data:`LONG_CPU_RUN_S`), else ``None``.

    The estimate is epochs x training images x a per-image cost measured on
    the project's 2-core CPU (``_CPU_SECONDS_PER_IMAGE``); the hint gives
    that basis and the options that shorten the run. It never stops one.

    Parameters
    ----------
    config : TrainConfig
        The run.
    n_train : int
        Training images (after ``limit_train``).
    epochs_to_run : int
        Epochs this invocation will train (after a resume and ``stop_after``).
    world_size : int
        Processes sharing the images.

    Returns
    -------
    str or None
        The hint, without a newline; ``None`` on CUDA, for a short run or
        for tasks other than ``classify``.
    """
    if config.task != "classify":  # measured for the classifiers only
        return None
    family, gradient = _model_gradient(config)
    per_image = _CPU_SECONDS_PER_IMAGE.get((family, gradient))
    if config.device != "cpu" or per_image is None or epochs_to_run < 1:
        return None
    images = math.ceil(n_train / world_size)
    seconds = epochs_to_run * images * per_image
    if seconds < LONG_CPU_RUN_S:
        return None
    batches = math.ceil(images / (config.global_batch_size // world_size))
    shorter = ["--epochs 10"] if epochs_to_run > 10 else []
    if n_train > 10_000:
        shorter.append("--limit-train 4000")
    what = f"{config.model}" + (f" with the {gradient} gradient" if gradient else "")
    return (
        f"hint: {epochs_to_run} epochs x {batches} batches of {what} on the CPU: roughly {_duration(seconds)} "
        f"(at about {1000 * per_image:.1f} ms per training image, measured on a 2-core CPU); "
        f"for a first run try {' '.join(shorter) or 'fewer epochs'}, or --device cuda"
    )
