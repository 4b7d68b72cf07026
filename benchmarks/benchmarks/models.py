"""ode-models: one training step of the paper's MNIST classifiers, and the ODE-Net's evaluations per step.

A step is forward, cross-entropy, backward and one plain SGD update on a
random batch of 128 images (1 x 28 x 28), CPU, one thread. Every timed step
starts from the same initial weights (reloaded first; a negligible cost), so
that the adaptive solver's work does not drift as training moves the
weights.
"""

from __future__ import annotations

import copy
from typing import Any

import ode_models
import torch

torch.set_num_threads(1)

BATCH = 128
# name -> build_model keywords; the ODE-Net with the paper's adjoint (its default) and with the checkpointing engine.
MODELS: dict[str, dict[str, Any]] = {
    "odenet (adjoint)": {"name": "odenet", "gradient": "adjoint"},
    "odenet (checkpoint)": {"name": "odenet", "gradient": "checkpoint"},
    "resnet6": {"name": "resnet6"},
}
ODENET_ENGINES = ["adjoint", "checkpoint", "backprop"]


class _TrainingStep:
    """A model, a fixed random batch, and :meth:`step`, one SGD step from the initial weights."""

    def _build(self, **model_keywords: Any) -> None:
        torch.manual_seed(0)
        self.model = ode_models.build_model(dataset="mnist", **model_keywords)
        self.initial_state = copy.deepcopy(self.model.state_dict())
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.images = torch.randn(BATCH, 1, 28, 28)
        self.labels = torch.randint(0, 10, (BATCH,))

    def step(self) -> None:
        self.model.load_state_dict(self.initial_state)
        self.model.reset_nfe()
        self.optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(self.model(self.images), self.labels)
        loss.backward()
        self.optimizer.step()


class TrainingStep(_TrainingStep):
    """Wall time of one training step at batch 128."""

    params = (list(MODELS),)
    param_names = ("model",)
    timeout = 600.0

    def setup(self, model: str) -> None:
        self._build(**MODELS[model])
        self.step()  # warm-up: first-use costs (autograd, convolution kernels) are not a training step's

    def time_training_step(self, model: str) -> None:
        self.step()


class OdeNetEvaluations(_TrainingStep):
    """NFE-F and NFE-B of the ODE-Net's block in one training step, per gradient engine (dopri5, rtol = atol = 1e-3)."""

    params = (ODENET_ENGINES,)
    param_names = ("gradient",)
    timeout = 600.0

    def setup(self, gradient: str) -> None:
        self._build(name="odenet", gradient=gradient)

    def track_nfe_forward(self, gradient: str) -> int:
        self.step()
        return sum(block.total_nfe_forward for block in self.model.ode_blocks())

    track_nfe_forward.unit = "evaluations"  # type: ignore[attr-defined]

    def track_nfe_backward(self, gradient: str) -> int:
        """The adjoint solve's or the checkpoint replay's evaluations; 0 for backprop (autograd's backward)."""
        self.step()
        return sum(block.total_nfe_backward for block in self.model.ode_blocks())

    track_nfe_backward.unit = "evaluations"  # type: ignore[attr-defined]
