"""Augmented dynamics: the divergence of f and the RNODE regularisers, integrated with the state.

A continuous normalizing flow (Chen et al. 2018, section 4) needs the change
of log-density along the solve, the integral of the divergence
``tr(df/dz)``: exact, from one vector-Jacobian product per state dimension
(small dimensions), or Hutchinson's estimate ``eps^T (df/dz) eps`` from one
product (Grathwohl et al. 2019, FFJORD).

Finlay, Jacobsen, Nurbekyan & Oberman (2020), "How to train your neural
ODE: the world of Jacobian and kinetic regularization" (RNODE): penalising
the kinetic energy

    K = integral over [t0, t1] of ||f(t, z(t))||^2 dt

and the Jacobian's Frobenius norm

    B = integral over [t0, t1] of ||df/dz (t, z(t))||_F^2 dt

makes the learnt dynamics straight and smooth, so adaptive solvers take few
steps. ``B`` is Hutchinson's estimate ``E ||eps^T df/dz||^2``, from the same
product as the divergence's estimate when both are on (as in RNODE).

All are extra components of the state, so every gradient engine
differentiates them like the rest. The noise ``eps`` is Gaussian, drawn once
per solve (fixed over it: the integrand must be a function of time). The
regularisers' norms are summed over a sample's state and averaged over the
batch, as in Finlay et al., so their published weights carry over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

__all__ = [
    "DIVERGENCES",
    "REGULARIZERS",
    "AugmentedDynamics",
    "Regularization",
    "controlled_norm",
    "exact_divergence",
]

DIVERGENCES = ("exact", "hutchinson")
"""How the augmented dynamics compute ``tr(df/dz)``: exactly, or by Hutchinson's estimator."""

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
        """The weight of a regulariser.

        Parameters
        ----------
        name : str
            One of :data:`REGULARIZERS`.

        Returns
        -------
        float
        """
        value: float = getattr(self, name)
        return value


def exact_divergence(value: torch.Tensor, inner: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """``tr(d value / d inner)`` per sample, one vector-Jacobian product per state dimension.

    Parameters
    ----------
    value : Tensor, shape (B, ...)
        ``f(t, inner)``, computed with grad mode on.
    inner : Tensor, shape (B, ...)
        Requires grad; samples independent (row ``b`` of ``value`` depends on row ``b`` only).
    create_graph : bool
        Keep the products differentiable (the backward passes).

    Returns
    -------
    Tensor, shape (B,)
    """
    flat_value = value.flatten(1)
    n = flat_value.shape[1]
    total = value.new_zeros(value.shape[0])
    for index in range(n):
        (row,) = torch.autograd.grad(
            flat_value[:, index].sum(), inner, create_graph=create_graph, retain_graph=True, allow_unused=True
        )
        if row is not None:
            total = total + row.flatten(1)[:, index]
    return total


def controlled_norm(n_controlled: int) -> Callable[[tuple[torch.Tensor, ...]], torch.Tensor]:
    """An augmented solve's error norm: torchdiffeq's mixed norm (the largest RMS) of the first components.

    The state (and a flow's log-density change, the result itself) control the
    steps; the regularisers ride along as quadratures of the trajectory whose
    accuracy feeds nothing back, so they cost no steps (a seminorm).

    Parameters
    ----------
    n_controlled : int
        How many leading components of the scaled error count.

    Returns
    -------
    callable
        ``norm(scaled errors tuple) -> Tensor`` of shape ().
    """
    if n_controlled == 1:
        return _first_rms

    def norm(scaled: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.stack([part.pow(2).mean().sqrt() for part in scaled[:n_controlled]]).max()

    return norm


def _first_rms(scaled: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return scaled[0].pow(2).mean().sqrt()


class AugmentedDynamics:
    """``(z, [D], [K], [B]) -> (f, [tr df/dz], [||f||^2], [||eps^T df/dz||^2])``.

    Parameters
    ----------
    func : callable
        The dynamics ``func(t, z)``, samples independent along the first
        dimension. Not a module of its own (the block's ``func`` keeps its
        parameters and their names); pass ``func``'s parameters as the
        solve's ``adjoint_params``.
    regularizers : tuple of str
        Names from :data:`REGULARIZERS` to integrate; each adds a component
        of shape (B,) to the state, in :data:`REGULARIZERS` order.
    divergence : {"exact", "hutchinson"}, optional
        Integrate ``D``, the integral of ``tr(df/dz)``, as the component after
        ``z`` (a flow's log-density change).

    Attributes
    ----------
    components : tuple of str
        The names of the state's components after ``z``:
        ``"divergence"`` first when on, then the regularisers.
    noise : Tensor or None
        Hutchinson's ``eps``, shaped like ``z``: set by :meth:`draw_noise`
        before each solve (when an estimate needs it).
    """

    def __init__(
        self,
        func: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        regularizers: tuple[str, ...] = (),
        *,
        divergence: str | None = None,
    ) -> None:
        unknown = [name for name in regularizers if name not in REGULARIZERS]
        if unknown:
            raise ValueError(
                f"regularizers: expected names from {', '.join(REGULARIZERS)}, got {tuple(regularizers)!r}"
            )
        if divergence is not None and divergence not in DIVERGENCES:
            raise ValueError(f"divergence: expected one of {', '.join(DIVERGENCES)} or None, got {divergence!r}")
        if divergence is None and not regularizers:
            raise ValueError("regularizers, divergence: nothing to integrate beside z (give one or both)")
        self.func = func
        self.regularizers = tuple(name for name in REGULARIZERS if name in regularizers)  # the states' order
        self.divergence = divergence
        self.components = (("divergence",) if divergence is not None else ()) + self.regularizers
        self.needs_noise = divergence == "hutchinson" or "jacobian_norm" in self.regularizers
        self.noise: torch.Tensor | None = None

    def draw_noise(self, z: torch.Tensor) -> None:
        """Draw Hutchinson's ``eps`` for the next solve from torch's global generator (a resumed run repeats it)."""
        self.noise = torch.randn_like(z) if self.needs_noise else None

    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(z, 0, ...)``: the integrals start at zero, one value per sample."""
        return (z, *(z.new_zeros(z.shape[0]) for _ in self.components))

    def __call__(self, t: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The augmented derivative.

        Parameters
        ----------
        t : Tensor, shape ()
        state : tuple of Tensor
            ``z`` (B, ...), then one (B,) integral per component.

        Returns
        -------
        tuple of Tensor
            ``dz/dt``, then the components' rates, each (B,).
        """
        z = state[0]
        if self.divergence is None and not self.needs_noise:  # the kinetic energy alone: no product
            value = self.func(t, z)
            return (value, _squares(value))
        noise = self.noise
        if self.needs_noise and (noise is None or noise.shape != z.shape):
            raise RuntimeError("AugmentedDynamics: call draw_noise(z0) before the solve (Hutchinson's noise)")
        # Differentiable (create_graph) whenever grad mode is on at the call, as the engines' backward
        # passes need; values only otherwise (the adjoint's and the checkpointing engine's forward solves).
        differentiable = torch.is_grad_enabled()
        product: torch.Tensor | None = None
        trace: torch.Tensor | None = None
        with torch.enable_grad():
            # Without grad mode at the call, z may still say requires_grad (a view of the solve's
            # differentiable y0 made under no_grad) while belonging to no graph: a fresh leaf is the only
            # safe variable then.
            inner = z if differentiable and z.requires_grad else z.detach().requires_grad_(True)
            value = self.func(t, inner)
            if noise is not None:
                grads = torch.autograd.grad(
                    value, inner, noise, create_graph=differentiable, retain_graph=True, allow_unused=True
                )
                # None where f does not depend on z (the stubs say Tensor).
                product = torch.zeros_like(z) if grads[0] is None else grads[0]
            if self.divergence == "exact":
                trace = exact_divergence(value, inner, differentiable)
            elif self.divergence == "hutchinson" and product is not None and noise is not None:  # E[eps^T J eps] = tr J
                trace = (product * noise).flatten(1).sum(1)
        rates = [rate for rate in (trace,) if rate is not None]
        if "kinetic_energy" in self.regularizers:
            rates.append(_squares(value))
        if "jacobian_norm" in self.regularizers and product is not None:
            rates.append(_squares(product))
        if not differentiable:
            return (value.detach(), *(rate.detach() for rate in rates))
        return (value, *rates)


def _squares(value: torch.Tensor) -> torch.Tensor:
    """``||value_b||^2`` per sample ``b``: (B, ...) -> (B,)."""
    return value.pow(2).flatten(1).sum(1)
