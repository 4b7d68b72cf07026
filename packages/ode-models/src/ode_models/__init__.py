"""ode-models: the ResNet / ODE-Net image classifiers of the Neural ODE paper.

Chen, Rubanova, Bettencourt & Duvenaud (2018), section 7.1: a downsampling
stem, a feature block (six or one residual blocks, an ODE block solved by
``ode_adjoint``, or the same dynamics under fixed-step RK4) and a pooled
linear head, for MNIST and CIFAR-10. ``build_model`` makes one;
``load_mnist`` / ``load_cifar10`` read the datasets offline from their
standard files, and ``load_embedded_mnist`` a small MNIST subset shipped
with the package. ``train`` runs the paper's training schedule (also the
``ode-models train`` command) and ``report`` compares runs.

Examples
--------
>>> import ode_models
>>> model = ode_models.build_model("odenet", "mnist")
>>> data = ode_models.load_embedded_mnist("test", limit=4)
>>> images, labels = data.batch(range(4))
>>> model(images).shape
torch.Size([4, 10])
>>> model.ode_blocks()[0].nfe_forward > 0
True
"""

from __future__ import annotations

from ._config import RunError, TrainConfig, scaled_milestones
from ._data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    MNIST_MEAN,
    MNIST_STD,
    ImageDataset,
    load_cifar10,
    load_dataset,
    load_embedded_mnist,
    load_mnist,
    read_idx,
)
from ._models import DATASETS, MODELS, Classifier, ConcatConv2d, ODEBlock, ODEFunc, ResBlock, build_model
from ._regularization import REGULARIZERS, Regularization
from ._report import report
from ._train import train

__version__ = "0.0.1"

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "DATASETS",
    "MNIST_MEAN",
    "MNIST_STD",
    "MODELS",
    "REGULARIZERS",
    "Classifier",
    "ConcatConv2d",
    "ImageDataset",
    "ODEBlock",
    "ODEFunc",
    "Regularization",
    "ResBlock",
    "RunError",
    "TrainConfig",
    "build_model",
    "load_cifar10",
    "load_dataset",
    "load_embedded_mnist",
    "load_mnist",
    "read_idx",
    "report",
    "scaled_milestones",
    "train",
]
