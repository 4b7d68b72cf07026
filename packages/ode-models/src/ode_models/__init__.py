"""ode-models: the models of the Neural ODE paper, and the runner that trains them.

Chen, Rubanova, Bettencourt & Duvenaud (2018). Section 7.1's image
classifiers: a downsampling stem, a feature block (six or one residual
blocks, an ODE block solved by ``ode_adjoint``, or the same dynamics under
fixed-step RK4) and a pooled linear head, for MNIST and CIFAR-10, made by
``build_model``, with optional kinetic energy and Jacobian norm regularisers
(``Regularization``, Finlay et al. 2020). Section 4's continuous normalizing
flows (``CNF``, on the toy densities of ``TOY_DENSITIES`` and on MNIST's
dequantised pixels through ``LogitTransform``) and section 5's
latent ODE for irregularly sampled time series (``LatentODE``, its baseline
``LatentRNN``, the spirals of ``make_spirals``). ``load_mnist`` /
``load_cifar10`` read the datasets offline from their standard files, and
``load_embedded_mnist`` a small MNIST subset shipped with the package.
``train`` runs any of the tasks of ``TASKS`` (also the ``ode-models train``
command) and ``report`` compares runs.

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

from ._augmented import DIVERGENCES, REGULARIZERS, Regularization
from ._cnf import CNF, ConcatConvNet, ConcatMLP, LogitTransform
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
from ._latent import LatentODE, LatentRNN, SpiralDataset, make_spirals
from ._models import DATASETS, MODELS, Classifier, ConcatConv2d, ODEBlock, ODEFunc, ODEModel, ResBlock, build_model
from ._report import report, write_plots
from ._tasks import TASKS
from ._toy import TOY_DENSITIES, ToyDensity, toy_density
from ._train import train

__version__ = "0.0.1"

__all__ = [
    "CIFAR10_MEAN",
    "CIFAR10_STD",
    "CNF",
    "DATASETS",
    "DIVERGENCES",
    "MNIST_MEAN",
    "MNIST_STD",
    "MODELS",
    "REGULARIZERS",
    "TASKS",
    "TOY_DENSITIES",
    "Classifier",
    "ConcatConv2d",
    "ConcatConvNet",
    "ConcatMLP",
    "ImageDataset",
    "LatentODE",
    "LatentRNN",
    "LogitTransform",
    "ODEBlock",
    "ODEFunc",
    "ODEModel",
    "Regularization",
    "ResBlock",
    "RunError",
    "SpiralDataset",
    "ToyDensity",
    "TrainConfig",
    "build_model",
    "load_cifar10",
    "load_dataset",
    "load_embedded_mnist",
    "load_mnist",
    "make_spirals",
    "read_idx",
    "report",
    "scaled_milestones",
    "toy_density",
    "train",
    "write_plots",
]
