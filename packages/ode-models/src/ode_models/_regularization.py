"""Regularised dynamics: integrals of ||f||^2 and ||df/dz||_F^2 along the solve.

Finlay, Jacobsen, Nurbekyan & Oberman (2020), "How to train your neural
ODE: the world of Jacobian and kinetic regularization" (RNODE): penalising
the kinetic energy

    K = integral over [t0, t1] of ||f(t, z(t))||^2 dt

and the Jacobian's Frobenius norm

    B = integral over [t0, t1] of ||df/dz (t, z(t))||_F^2 dt

makes the learnt dynamics straight and smooth, so adaptive solvers take few
steps. Both are computed alongside the solve, as extra components of the
state (so every gradient engine differentiates them like the rest); ``B`` by
Hutchinson's estimator ``E ||eps^T df/dz||^2`` with one Gaussian ``eps`` per
solve (fixed over it, as a continuous function of time needs). Norms are
summed over a sample's state and averaged over the batch, as in Finlay et
al., so their published weights carry over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

__all__ = ["REGULARIZERS", "AugmentedDynamics", "Regularization", "state_norm", "vector_jacobian"]

REGULARIZERS = ("kinetic_energy", "jacobian_norm")
"""The regularisers' names: the fields of :class:`Regularization` and the metrics' keys."""


@dataclasses.dataclass(frozen=True)
class Regularization:
    """Weights of the RNODE regularisers in the loss (0 switches one off).

    Parameters
    ----------
    kinetic_energy : float
        Weight of the kinetic energy ``K`` (Finlay et al. use 0.01).
    jacobian_norm : float
        Weight of the Jacobian Frobenius norm ``B`` (Hutchinson's estimate).
    """

    kinetic_energy: float = 0.0
    jacobian_norm: float = 0.0

    def __post_init__(self) -> None:
        for name in REGULARIZERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name}: expected a finite number >= 0 (a weight), got {value!r}")

    @property
    def active(self) -> tuple[str, ...]:
        """The names of the regularisers with a positive weight, in :data:`REGULARIZERS` order."""
        return tuple(name for name in REGULARIZERS if getattr(self, name) > 0)

    def weight(self, name: str) -> float:
        """The weight of regulariser ``name``."""
        value: float = getattr(self, name)
        return value


def vector_jacobian(
    func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], t: torch.Tensor, z: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``f(t, z)`` and ``noise^T df/dz`` from one evaluation and one vector-Jacobian product.

    Differentiable (``create_graph``) whenever grad mode is on at the call,
    as the backward passes of the gradient engines need; otherwise values
    only (the adjoint's and the checkpointing engine's forward solves).

    Parameters
    ----------
    func : callable
        ``func(t, z)``, shaped like ``z``.
    t : Tensor, shape ()
    z : Tensor, shape (B, ...)
    noise : Tensor, shaped like z

    Returns
    -------
    f : Tensor, shaped like z
    vjp : Tensor, shaped like z
        ``noise^T df/dz`` (row by row of the batch when samples are independent).
    """
    differentiable = torch.is_grad_enabled()
    with torch.enable_grad():
        # Without grad mode at the call, z may still say requires_grad (a view of the solve's differentiable
        # y0 made under no_grad) while belonging to no graph: a fresh leaf is the only safe variable then.
        inner = z if differentiable and z.requires_grad else z.detach().requires_grad_(True)
        value = func(t, inner)
        grads = torch.autograd.grad(value, inner, noise, create_graph=differentiable, allow_unused=True)
    product: torch.Tensor | None = grads[0]
    if product is None:  # f does not depend on z
        product = torch.zeros_like(z)
    if not differentiable:
        value = value.detach()
    return value, product


def state_norm(scaled: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The error norm of an augmented solve: the RMS of the state's scaled error alone.

    The integrals ride along as quadratures of the trajectory: their own
    accuracy feeds nothing back, so it should not cost steps (a seminorm).
    """
    return scaled[0].pow(2).mean().sqrt()


class AugmentedDynamics:
    """``(z, K, B) -> (f, ||f||^2, ||eps^T df/dz||^2)``: the state and the active regularisers' rates.

    Parameters
    ----------
    func : callable
        The dynamics ``func(t, z)``. Not a module of its own (the block's
        ``func`` keeps its parameters and their names); pass ``func``'s
        parameters as the solve's ``adjoint_params``.
    regularizers : tuple of str
        Names from :data:`REGULARIZERS` to integrate; each adds a component
        of shape (B,) to the state, in :data:`REGULARIZERS` order.

    Attributes
    ----------
    noise : Tensor or None
        Hutchinson's ``eps``, shaped like ``z``: set by :meth:`draw_noise`
        before each solve (``jacobian_norm`` only).
    """

    def __init__(
        self, func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], regularizers: tuple[str, ...]
    ) -> None:
        unknown = [name for name in regularizers if name not in REGULARIZERS]
        if unknown or not regularizers:
            raise ValueError(
                f"regularizers: expected one or more of {', '.join(REGULARIZERS)}, got {tuple(regularizers)!r}"
            )
        self.func = func
        self.regularizers = tuple(name for name in REGULARIZERS if name in regularizers)  # the states' order
        self.noise: torch.Tensor | None = None

    def draw_noise(self, z: torch.Tensor) -> None:
        """Draw Hutchinson's ``eps`` for the next solve from torch's global generator (a resumed run repeats it)."""
        self.noise = torch.randn_like(z) if "jacobian_norm" in self.regularizers else None

    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(z, 0, ...)``: the integrals start at zero, one value per sample."""
        return (z, *(z.new_zeros(z.shape[0]) for _ in self.regularizers))

    def __call__(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The augmented derivative.

        Parameters
        ----------
        t : Tensor, shape ()
        state : tuple of Tensor
            ``z`` (B, ...), then one (B,) integral per regulariser.

        Returns
        -------
        tuple of Tensor
            ``dz/dt``, then the rates, each (B,).
        """
        z = state[0]
        if "jacobian_norm" not in self.regularizers:
            value = self.func(t, z)
            return (value, value.pow(2).flatten(1).sum(1))
        if self.noise is None or self.noise.shape != z.shape:
            raise RuntimeError("AugmentedDynamics: call draw_noise(z0) before the solve (jacobian_norm)")
        value, product = vector_jacobian(self.func, t, z, self.noise)
        jacobian_rate = product.pow(2).flatten(1).sum(1)
        if "kinetic_energy" in self.regularizers:
            return (value, value.pow(2).flatten(1).sum(1), jacobian_rate)
        return (value, jacobian_rate)
