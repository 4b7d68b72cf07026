"""What differs between the runner's tasks: data, model, loss, metrics and optimiser.

:func:`ode_models.train` runs every task through the same loop (epochs,
sharded batches, DistributedDataParallel, checkpoints, metrics, resume);
a :class:`Task` supplies the rest:

- ``classify``: the paper's image classifiers (section 7.1) on MNIST or
  CIFAR-10, cross entropy, SGD with the paper's schedule;
- ``density``: a continuous normalizing flow (section 4) fitted by maximum
  likelihood to a 2-D toy density generated in code (test metrics in nats
  and against the true density's NLL) or to MNIST's dequantised images
  (bits per dimension), Adam at FFJORD's constant rate;
- ``latent``: the latent ODE (section 5) or its RNN baseline on irregularly
  observed spirals generated in code, the ELBO, Adam; test MSE of the
  interpolation and the extrapolation.

A task's batch sums (``train_sums``, ``test_sums``) are plain floats, so the
loop adds them over the batches and the processes before the task turns
them into metrics.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import torch
from torch import nn

from ._cnf import CNF, ConcatConvNet, ConcatMLP, LogitTransform
from ._data import ImageDataset, load_dataset, load_embedded_mnist
from ._distributed import seed_words
from ._latent import WINDOW, LatentODE, LatentRNN, SpiralDataset, make_spirals, spiral_grid
from ._models import DATASETS, MODELS, Classifier, ODEModel, build_model
from ._toy import TOY_DENSITIES, toy_density

if TYPE_CHECKING:
    from ._config import TrainConfig

__all__ = ["TASKS", "ClassifyTask", "DensityTask", "DequantizedImages", "PointDataset", "Task", "get_task"]


class Batches(Protocol):
    """A task's dataset: its length and vectorised batches."""

    def __len__(self) -> int: ...

    def batch(
        self, indices: torch.Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]: ...


class PointDataset:
    """Points (N, d) held in memory, with their true log-density where known.

    Parameters
    ----------
    points : Tensor, shape (N, d)
    log_density : Tensor, shape (N,), optional
        ``log p(points)`` under the distribution they were drawn from.
    """

    def __init__(self, points: torch.Tensor, log_density: torch.Tensor | None = None) -> None:
        if points.dim() != 2:
            raise ValueError(f"points: expected shape (N, d), got {tuple(points.shape)}")
        if log_density is not None and log_density.shape != points.shape[:1]:
            raise ValueError(f"log_density: expected shape ({points.shape[0]},), got {tuple(log_density.shape)}")
        self.points = points
        self.log_density = log_density

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def batch(
        self, indices: torch.Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``(points,)`` of ``indices``, shape (B, d), and their log-densities (B,) when known.

        ``generator`` is unused: points have no augmentation.
        """
        index = torch.as_tensor(indices, dtype=torch.int64)
        if self.log_density is None:
            return (self.points[index],)
        return self.points[index], self.log_density[index]


class DequantizedImages:
    """8-bit images as data for a density: ``(x + u) / 256``, ``u`` uniform on [0, 1) per pixel.

    A continuous density on the dequantised values bounds the discrete
    images' log-likelihood from below (Theis et al. 2016), less ``D log 256``
    for the scaling; :class:`DensityTask` counts it in.

    Parameters
    ----------
    images : Tensor, shape (N, C, H, W), uint8
    noise_seed : int, optional
        Fixes each image's noise once, from this seed (a test set: every
        evaluation sees the same values); ``None`` draws new noise per batch
        from the batch's generator (a training set).
    """

    def __init__(self, images: torch.Tensor, noise_seed: int | None = None) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(
                f"images: expected a uint8 tensor of shape (N, C, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        self.images = images
        self._noise: torch.Tensor | None = None
        if noise_seed is not None:
            self._noise = torch.rand(images.shape, generator=torch.Generator().manual_seed(noise_seed))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(
        self, indices: torch.Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """``(values,)``: images ``indices`` dequantised, shape (B, C, H, W), float32 in [0, 1)."""
        index = torch.as_tensor(indices, dtype=torch.int64)
        images = self.images[index].to(torch.float32)
        noise = self._noise[index] if self._noise is not None else torch.rand(images.shape, generator=generator)
        return ((images + noise) / 256.0,)


def load_images(config: TrainConfig, *, augment: bool, normalize: bool = True) -> tuple[ImageDataset, ImageDataset]:
    """``config.dataset``'s training and test images: from ``config.data_dir``, or MNIST's embedded subset."""
    from ._config import EMBEDDED

    if config.dataset == "mnist" and config.data_dir in (None, EMBEDDED):
        train_set = load_embedded_mnist("train", limit=config.limit_train, augment=augment, normalize=normalize)
        test_set = load_embedded_mnist("test", limit=config.limit_test, normalize=normalize)
        return train_set, test_set
    if config.data_dir is None:  # pragma: no cover - the tasks' check() refuses it
        raise ValueError(f"data_dir: {config.dataset} needs a data dir")
    root = Path(config.data_dir)
    if config.download:
        root.mkdir(parents=True, exist_ok=True)
    elif not root.is_dir():
        raise FileNotFoundError(f"data dir {str(root)!r} does not exist (nothing is downloaded without --download)")
    train_set = load_dataset(
        config.dataset,
        root,
        "train",
        limit=config.limit_train,
        augment=augment,
        normalize=normalize,
        download=config.download,
    )
    test_set = load_dataset(
        config.dataset, root, "test", limit=config.limit_test, normalize=normalize, download=config.download
    )
    return train_set, test_set


class Task(abc.ABC):
    """One kind of run. Subclasses set the class attributes and implement the methods.

    Attributes
    ----------
    name : str
    datasets, models : tuple of str
        Valid names.
    default_dataset, default_model : str
        Those of a run that names none.
    default_batch_size : int
    default_divergence : str or None
        A flow's trace without ``--divergence`` (``None``: the task has no
        flow).
    dataset_defaults : mapping
        Per dataset, defaults that differ from the task's (see :meth:`default`).
    primary : str
        The test metric that sums a run up (lower is better): the report's
        second column, ``results.json``'s ``best_...``.
    primary_label : str
        Its column heading.
    result_keys : tuple of str
        The last epoch's metrics that ``results.json`` repeats.
    sample_unit : str
        What the progress bar counts per second.
    train_sum_names, test_sum_names : tuple of str
        The keys of :meth:`train_batch`'s and :meth:`test_sums`' sums, in
        the order the processes add them (every rank the same).
    """

    name: ClassVar[str]
    datasets: ClassVar[tuple[str, ...]]
    models: ClassVar[tuple[str, ...]]
    default_dataset: ClassVar[str]
    default_model: ClassVar[str]
    primary: ClassVar[str]
    primary_label: ClassVar[str]
    result_keys: ClassVar[tuple[str, ...]]
    sample_unit: ClassVar[str]
    train_sum_names: ClassVar[tuple[str, ...]]
    test_sum_names: ClassVar[tuple[str, ...]]
    default_batch_size: ClassVar[int]
    default_divergence: ClassVar[str | None] = None
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    def default(self, name: str, dataset: str) -> Any:
        """The default of option ``name`` (``"model"``, ``"batch_size"``...) for a run on ``dataset``."""
        return self.dataset_defaults.get(dataset, {}).get(name, getattr(self, f"default_{name}"))

    @abc.abstractmethod
    def default_lr(self, batch_size: int) -> float:
        """The learning rate without ``--lr``."""

    unused_options: ClassVar[tuple[str, ...]] = ()
    """TrainConfig fields this task's model never reads: set away from their defaults, they are refused."""

    def check(self, config: TrainConfig) -> None:
        """ValueError for options this task cannot use (beyond the names): here, :attr:`unused_options`."""
        import dataclasses

        defaults = {field.name: field.default for field in dataclasses.fields(config)}
        for name in self.unused_options:
            if getattr(config, name) != defaults[name]:
                raise ValueError(f"{name}: the {self.name} task does not use it, got {getattr(config, name)!r}")

    @abc.abstractmethod
    def load_data(self, config: TrainConfig) -> tuple[Batches, Batches]:
        """The training and test sets."""

    @abc.abstractmethod
    def build(self, config: TrainConfig) -> ODEModel:
        """The untrained model (after the run has seeded the generators)."""

    @abc.abstractmethod
    def optimizer(
        self, config: TrainConfig, model: nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        """The optimiser and its per-epoch schedule."""

    @abc.abstractmethod
    def train_batch(self, network: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        """The batch's loss (before regularisers) and its sums (including ``count``)."""

    @abc.abstractmethod
    def train_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        """The epoch's training metrics from the summed batch sums."""

    @abc.abstractmethod
    def test_sums(self, model: ODEModel, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        """One test batch's sums (including ``count``), without gradients."""

    @abc.abstractmethod
    def test_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        """The test metrics from the summed sums."""

    @abc.abstractmethod
    def progress(self, sums: Mapping[str, float]) -> str:
        """The progress bar's text so far in the epoch."""

    @abc.abstractmethod
    def epoch_summary(self, line: Mapping[str, Any]) -> str:
        """The part of the end-of-epoch line between the label and the NFE."""

    def format_primary(self, value: float) -> str:
        """The primary metric as the report prints it."""
        return f"{value:.4f}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ClassifyTask(Task):
    """The paper's image classifiers: cross entropy, SGD + momentum, the paper's step schedule."""

    name = "classify"
    datasets = tuple(DATASETS)
    models = MODELS
    default_dataset = "mnist"
    default_model = "odenet"
    primary = "test_error"
    primary_label = "Test error"
    result_keys = ("test_error", "test_loss", "train_loss", "train_acc")
    sample_unit = "img"
    train_sum_names = ("loss_sum", "correct", "count")
    test_sum_names = ("loss_sum", "wrong", "count")
    default_batch_size = 128

    def default_lr(self, batch_size: int) -> float:
        return 0.1 * batch_size / 128

    unused_options = ("divergence", "observations")

    def check(self, config: TrainConfig) -> None:
        from ._config import EMBEDDED

        super().check(config)
        if config.dataset != "mnist" and config.data_dir in (None, EMBEDDED):
            raise ValueError(f"data_dir: {config.dataset} needs a data dir (only MNIST has an embedded subset)")

    def load_data(self, config: TrainConfig) -> tuple[ImageDataset, ImageDataset]:
        return load_images(config, augment=config.augment)

    def build(self, config: TrainConfig) -> Classifier:
        return build_model(
            config.model,
            config.dataset,
            method=config.method,
            rtol=config.rtol,
            atol=config.atol,
            gradient=config.gradient,
            step_size=config.step_size,
            seminorm=config.seminorm,
            first_step=config.first_step,
            regularization=config.regularization,
        )

    def optimizer(
        self, config: TrainConfig, model: nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        from ._config import lr_schedule

        optimizer = torch.optim.SGD(
            model.parameters(), lr=config.initial_lr, momentum=config.momentum, weight_decay=config.weight_decay
        )
        return optimizer, lr_schedule(optimizer, config.epochs)

    def train_batch(self, network: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        images, labels = batch
        logits = network(images)
        loss = nn.functional.cross_entropy(logits, labels)
        correct = float((logits.detach().argmax(1) == labels).sum())
        return loss, {"loss_sum": float(loss.detach()) * len(labels), "correct": correct, "count": float(len(labels))}

    def train_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1.0)
        return {"train_loss": sums["loss_sum"] / count, "train_acc": sums["correct"] / count}

    def test_sums(self, model: ODEModel, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        images, labels = batch
        logits = model(images)
        loss = float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
        return {"loss_sum": loss, "wrong": float((logits.argmax(1) != labels).sum()), "count": float(len(labels))}

    def test_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1.0)
        return {"test_loss": sums["loss_sum"] / count, "test_error": sums["wrong"] / count}

    def progress(self, sums: Mapping[str, float]) -> str:
        metrics = self.train_metrics(sums)
        return f"loss {metrics['train_loss']:.4f} acc {100 * metrics['train_acc']:5.1f}%"

    def epoch_summary(self, line: Mapping[str, Any]) -> str:
        return (
            f"train loss {line['train_loss']:.4f} acc {100 * line['train_acc']:.2f}% "
            f"| test error {100 * line['test_error']:.2f}%"
        )

    def format_primary(self, value: float) -> str:
        return f"{100 * value:.2f}%"


TOY_TRAIN_POINTS = 50_000
"""Training points of a toy density without ``--limit-train`` (drawn once per run from its seed)."""
TOY_TEST_POINTS = 10_000
"""Test points of a toy density without ``--limit-test`` (a stream of their own)."""
_TOY_HIDDEN = (64, 64, 64)  # FFJORD's toy flows


class _ConstantAdamTask(Task):
    """A task trained by Adam at a constant learning rate (FFJORD's and torchdiffeq's examples)."""

    def optimizer(
        self, config: TrainConfig, model: nn.Module
    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
        optimizer = torch.optim.Adam(model.parameters(), lr=config.initial_lr, weight_decay=config.weight_decay)
        return optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[], gamma=1.0)  # constant


IMAGE_DENSITIES = ("mnist",)
"""The density task's image datasets (dequantised 8-bit images, bits per dimension); the others are toys."""
_IMAGE_HIDDEN = (16, 16, 16)  # the image flow's channels: CPU-sized (32 costs 2.5x the time per batch)
LOGIT_ALPHA = 0.05
"""The image flow's :class:`LogitTransform` margin: RealNVP's 0.05 (FFJORD's MNIST runs: 1e-6). At 1e-6
the black background's logits start near -10 and the first epochs are spent moving them; at 0.05 they
start within 3 of 0. The identity flow's bits/dim on the embedded training subset: 27.9 at 1e-6, 10.9 at
0.05 (computed 2026-12-02 from the transform's log-det and the Gaussian's log-density, no solve)."""


class DensityTask(_ConstantAdamTask):
    """A continuous normalizing flow by maximum likelihood, Adam at 1e-3 (FFJORD).

    On a 2-D toy density, metrics in nats: ``train_nll``; ``test_nll`` and,
    beside it, ``true_nll``, the true density's NLL on the same test points
    (the best any model can do), and their gap ``nll_gap``.

    On MNIST (:data:`IMAGE_DENSITIES`), the flow models the logits
    (:class:`LogitTransform`) of uniformly dequantised pixels
    (:class:`DequantizedImages`) with convolutional dynamics
    (:class:`ConcatConvNet`) and Hutchinson's trace; ``train_nll`` and
    ``test_nll`` are nats per image of the 8-bit images (the dequantised
    density less ``D log 256``), ``train_bits_per_dim`` and
    ``test_bits_per_dim`` the same per pixel in bits, and the loss is the
    bits per dimension (FFJORD's, so the regularisers' weights mean what
    they do in RNODE's MNIST runs).
    """

    name = "density"
    datasets = (*TOY_DENSITIES, *IMAGE_DENSITIES)
    models = ("cnf",)
    default_dataset = "eight-gaussians"
    default_model = "cnf"
    default_divergence = "exact"
    dataset_defaults: ClassVar[Mapping[str, Mapping[str, Any]]] = {
        name: {"batch_size": 200, "divergence": "hutchinson"} for name in IMAGE_DENSITIES
    }
    primary = "test_nll"
    primary_label = "Test NLL (nats)"
    result_keys = ("test_nll", "true_nll", "nll_gap", "test_bits_per_dim", "train_nll")
    sample_unit = "points"
    # true_count: test points whose true log-density is known (the toys'); pixels: dimensions of 8-bit data.
    train_sum_names = ("nll_sum", "pixels", "count")
    test_sum_names = ("nll_sum", "true_sum", "true_count", "pixels", "count")
    default_batch_size = 512

    def default_lr(self, batch_size: int) -> float:
        return 1e-3

    unused_options = ("step_size", "first_step", "observations")

    def check(self, config: TrainConfig) -> None:
        super().check(config)
        if config.dataset not in IMAGE_DENSITIES and config.data_dir is not None:
            raise ValueError(f"data_dir: the toy densities are generated in code, got {config.data_dir!r}")

    def load_data(self, config: TrainConfig) -> tuple[Batches, Batches]:
        test_seed = seed_words(config.seed, 1 << 20)  # a stream of its own: the same test set whatever the run
        if config.dataset in IMAGE_DENSITIES:
            train_images, test_images = load_images(config, augment=False, normalize=False)
            return DequantizedImages(train_images.images), DequantizedImages(test_images.images, test_seed)
        density = toy_density(config.dataset)
        # Fixed sets from the run's seed, the test set from its own stream: a resumed run, or a run
        # with another --limit-train, sees the same test points.
        train = density.sample(config.limit_train or TOY_TRAIN_POINTS, torch.Generator().manual_seed(config.seed))
        test = density.sample(config.limit_test or TOY_TEST_POINTS, torch.Generator().manual_seed(test_seed))
        return PointDataset(train.float()), PointDataset(test.float(), density.log_density(test).float())

    def build(self, config: TrainConfig) -> CNF:
        options: dict[str, Any] = {
            "divergence": config.divergence,
            "method": config.method or "dopri5",
            "rtol": config.rtol,
            "atol": config.atol,
            "gradient": config.gradient or "adjoint",
            "seminorm": config.seminorm,
            "regularization": config.regularization,
        }
        if config.dataset in IMAGE_DENSITIES:
            return CNF(ConcatConvNet(1, _IMAGE_HIDDEN), (1, 28, 28), logit=LogitTransform(LOGIT_ALPHA), **options)
        return CNF(ConcatMLP(2, _TOY_HIDDEN), (2,), **options)

    @staticmethod
    def _nll(log_density: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Per sample NLL in nats, and the pixels per sample: those of 8-bit data (images (B, C, H, W)), else 0."""
        if values.dim() == 2:  # points: a continuous density
            return -log_density, 0
        pixels = values[0].numel()
        return pixels * math.log(256.0) - log_density, pixels

    def train_batch(self, network: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        values = batch[0]
        nll, pixels = self._nll(network(values), values)
        mean = nll.mean()
        loss = bits_per_dim(mean, pixels) if pixels else mean  # images: bits per dimension
        sums = {"nll_sum": float(mean.detach()) * len(values), "pixels": float(pixels * len(values))}
        return loss, {**sums, "count": float(len(values))}

    def train_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        metrics = {"train_nll": sums["nll_sum"] / max(sums["count"], 1.0)}
        if sums["pixels"] > 0:
            metrics["train_bits_per_dim"] = bits_per_dim(sums["nll_sum"], sums["pixels"])
        return metrics

    def test_sums(self, model: ODEModel, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        values = batch[0]
        nll, pixels = self._nll(model(values), values)
        sums = {"nll_sum": float(nll.sum()), "pixels": float(pixels * len(values)), "count": float(len(values))}
        if len(batch) > 1:  # the true log-densities
            sums.update(true_sum=float(-batch[1].sum()), true_count=float(len(values)))
        return sums

    def test_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        metrics = {"test_nll": sums["nll_sum"] / max(sums["count"], 1.0)}
        if sums["true_count"] > 0:
            true = sums["true_sum"] / sums["true_count"]
            metrics.update(true_nll=true, nll_gap=metrics["test_nll"] - true)
        if sums["pixels"] > 0:
            metrics["test_bits_per_dim"] = bits_per_dim(sums["nll_sum"], sums["pixels"])
        return metrics

    def progress(self, sums: Mapping[str, float]) -> str:
        metrics = self.train_metrics(sums)
        if "train_bits_per_dim" in metrics:
            return f"bits/dim {metrics['train_bits_per_dim']:.4f}"
        return f"nll {metrics['train_nll']:.4f}"

    def epoch_summary(self, line: Mapping[str, Any]) -> str:
        if "test_bits_per_dim" in line:
            return (
                f"train {line['train_bits_per_dim']:.4f} | test {line['test_bits_per_dim']:.4f} bits/dim "
                f"({line['test_nll']:.2f} nats per image)"
            )
        return (
            f"train NLL {line['train_nll']:.4f} | test NLL {line['test_nll']:.4f} nats "
            f"(true density {line['true_nll']:.4f}, gap {line['nll_gap']:+.4f})"
        )


def bits_per_dim(nll_nats: Any, dimensions: float) -> Any:
    """Negative log-likelihood in nats (a float or a tensor) over ``dimensions`` values, as bits per dimension."""
    return nll_nats / (dimensions * math.log(2.0))


SPIRALS_TRAIN = 1000
"""Training spirals without ``--limit-train`` (the paper's and torchdiffeq's example's 1,000)."""
SPIRALS_TEST = 200
"""Test spirals without ``--limit-test`` (a stream of their own)."""


class LatentTask(_ConstantAdamTask):
    """The latent ODE (or its RNN baseline) on irregularly observed spirals: the ELBO, Adam at 1e-2.

    Test metrics: the mean squared error of the decoded trajectory (from
    ``q(z0)``'s mean) against the noise-free spiral, over the observation
    window (``test_interpolation_mse``) and the 100 points after it
    (``test_extrapolation_mse``, the primary).
    """

    name = "latent"
    datasets = ("spirals",)
    models = ("latent-ode", "rnn")
    default_dataset = "spirals"
    default_model = "latent-ode"
    primary = "test_extrapolation_mse"
    primary_label = "Test extrapolation MSE"
    result_keys = ("test_extrapolation_mse", "test_interpolation_mse", "train_loss")
    sample_unit = "trajectories"
    train_sum_names = ("loss_sum", "count")
    test_sum_names = ("interpolation_sum", "extrapolation_sum", "count")
    default_batch_size = 100

    def default_lr(self, batch_size: int) -> float:
        return 1e-2  # torchdiffeq's latent ODE example

    unused_options = ("step_size", "first_step", "seminorm", "divergence")

    def check(self, config: TrainConfig) -> None:
        super().check(config)
        if config.data_dir is not None:
            raise ValueError(f"data_dir: the spirals are generated in code, got {config.data_dir!r}")
        if config.regularization.active:
            raise ValueError(f"kinetic_energy, jacobian_norm: the {self.name} task has no regularisers yet")

    def load_data(self, config: TrainConfig) -> tuple[SpiralDataset, SpiralDataset]:
        train = make_spirals(
            config.limit_train or SPIRALS_TRAIN, config.observations, torch.Generator().manual_seed(config.seed)
        )
        test_generator = torch.Generator().manual_seed(seed_words(config.seed, 1 << 20))
        return train, make_spirals(config.limit_test or SPIRALS_TEST, config.observations, test_generator)

    def build(self, config: TrainConfig) -> ODEModel:
        if config.model == "rnn":
            return LatentRNN()
        return LatentODE(
            method=config.method or "dopri5", rtol=config.rtol, atol=config.atol, gradient=config.gradient or "backprop"
        )

    def train_batch(self, network: nn.Module, batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, dict[str, float]]:
        values, times, _, _ = batch
        loss = network(values, times).mean()
        return loss, {"loss_sum": float(loss.detach()) * len(values), "count": float(len(values))}

    def train_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        return {"train_loss": sums["loss_sum"] / max(sums["count"], 1.0)}

    def test_sums(self, model: ODEModel, batch: tuple[torch.Tensor, ...]) -> dict[str, float]:
        values, times, window, future = batch
        if not isinstance(model, (LatentODE, LatentRNN)):  # pragma: no cover - build() makes one
            raise TypeError(f"model: expected a LatentODE or LatentRNN, got {type(model).__name__}")
        predicted = model.predict(values, times, spiral_grid(values.dtype, values.device))
        inside, after = predicted[:, :WINDOW], predicted[:, WINDOW:]
        return {
            "interpolation_sum": float((inside - window).pow(2).mean(dim=(1, 2)).sum()),
            "extrapolation_sum": float((after - future).pow(2).mean(dim=(1, 2)).sum()),
            "count": float(len(values)),
        }

    def test_metrics(self, sums: Mapping[str, float]) -> dict[str, float]:
        count = max(sums["count"], 1.0)
        return {
            "test_interpolation_mse": sums["interpolation_sum"] / count,
            "test_extrapolation_mse": sums["extrapolation_sum"] / count,
        }

    def progress(self, sums: Mapping[str, float]) -> str:
        return f"loss {self.train_metrics(sums)['train_loss']:.4f}"

    def epoch_summary(self, line: Mapping[str, Any]) -> str:
        return (
            f"train loss {line['train_loss']:.4f} | test MSE interpolation {line['test_interpolation_mse']:.4f} "
            f"extrapolation {line['test_extrapolation_mse']:.4f}"
        )


TASKS: Mapping[str, Task] = {task.name: task for task in (ClassifyTask(), DensityTask(), LatentTask())}
"""The runner's tasks by name."""


def get_task(name: str) -> Task:
    """The task ``name``; ValueError naming the valid ones otherwise."""
    if name not in TASKS:
        raise ValueError(f"task: unknown task {name!r}; valid names are {', '.join(TASKS)}")
    return TASKS[name]
