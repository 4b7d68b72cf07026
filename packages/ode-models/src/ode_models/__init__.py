"""ode-models: ResNet / ODE-Net architectures and MNIST / CIFAR-10 runners.

This release is a skeleton; the models and the CLI land with their issue.
"""

from __future__ import annotations

__version__ = "0.0.1"

__all__: list[str] = []
