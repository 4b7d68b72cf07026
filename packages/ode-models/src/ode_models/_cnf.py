"""Continuous normalizing flows (Chen et al. 2018, section 4; FFJORD, Grathwohl et al. 2019).

Data ``x`` flows to ``z = z(T)`` under ``dz/dt = f(t, z)``; the
instantaneous change of variables gives

    log p(x) = log N(z(T); 0, I) + integral over [0, T] of tr(df/dz) dt,

the trace exact or Hutchinson's estimate (:class:`AugmentedDynamics`), so
one solve of the :class:`ODEBlock` gives the log-likelihood and every
gradient engine trains it by maximum likelihood. Sampling runs the flow
backwards from Gaussian noise.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import nn

from ._augmented import DIVERGENCES, Regularization
from ._models import ODEBlock, ODEModel

__all__ = ["CNF", "ConcatMLP", "standard_normal_log_density"]


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` per sample: (B, ...) -> (B,)."""
    flat = z.flatten(1)
    return -0.5 * flat.pow(2).sum(1) - 0.5 * flat.shape[1] * math.log(2 * math.pi)


class ConcatMLP(nn.Module):
    """``f(t, z)``: a tanh MLP seeing the time as one more input of every layer.

    The time-dependent dynamics of FFJORD's toy flows (their "concat"
    layers), for states of shape (B, dim).

    Parameters
    ----------
    dim : int
        State dimension.
    hidden : sequence of int
        Widths of the hidden layers (FFJORD's toys: 64, 64, 64).
    """

    def __init__(self, dim: int, hidden: Sequence[int] = (64, 64, 64)) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim: expected a positive integer, got {dim!r}")
        widths = [dim, *hidden, dim]
        self.layers = nn.ModuleList(nn.Linear(width + 1, out) for width, out in itertools.pairwise(widths))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The dynamics.

        Parameters
        ----------
        t : Tensor, shape ()
        z : Tensor, shape (B, dim)

        Returns
        -------
        Tensor, shape (B, dim)
        """
        time = t.to(z.dtype).expand(z.shape[0], 1)
        out = z
        for index, layer in enumerate(self.layers):
            out = layer(torch.cat((time, out), dim=1))
            if index < len(self.layers) - 1:
                out = torch.tanh(out)
        return out


class CNF(ODEModel):
    """A continuous normalizing flow: ``log_prob(x)`` and ``sample(n)``.

    Parameters
    ----------
    func : nn.Module
        The dynamics ``func(t, z)``, samples independent along the first
        dimension (for example :class:`ConcatMLP`).
    shape : sequence of int
        One sample's shape (``(2,)`` for the toy densities).
    divergence : {"exact", "hutchinson"}
        The trace: exact (one product per dimension, small states) or
        Hutchinson's unbiased estimate (one product, any size).
    time_length : float
        ``T``, the end of the flow.
    method, rtol, atol, gradient, seminorm, regularization
        The :class:`ODEBlock`'s (default ``dopri5``, ``1e-5``, ``1e-5``,
        the adjoint, as FFJORD).

    Examples
    --------
    >>> import torch
    >>> flow = CNF(ConcatMLP(2, (16,)), (2,))
    >>> flow.log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
    >>> flow.sample(4, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self,
        func: nn.Module,
        shape: Sequence[int],
        *,
        divergence: str = "exact",
        time_length: float = 1.0,
        method: str = "dopri5",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        gradient: str = "adjoint",
        seminorm: bool = False,
        regularization: Regularization | None = None,
    ) -> None:
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence: expected one of {', '.join(DIVERGENCES)}, got {divergence!r}")
        if not time_length > 0 or not math.isfinite(time_length):
            raise ValueError(f"time_length: expected a positive number, got {time_length!r}")
        self.shape = tuple(int(size) for size in shape)
        self.divergence = divergence
        self.time_length = float(time_length)
        self.block = ODEBlock(
            func,
            method=method,
            rtol=rtol,
            atol=atol,
            gradient=gradient,
            seminorm=seminorm,
            regularization=regularization,
        )

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"x: expected shape (B, {', '.join(map(str, self.shape))}), got {tuple(x.shape)}")

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """``log p(x)`` per sample, in nats.

        Parameters
        ----------
        x : Tensor, shape (B, *shape)

        Returns
        -------
        Tensor, shape (B,)
        """
        self._check(x)
        z, divergence_integral = self.block.integrate(x, times=(0.0, self.time_length), divergence=self.divergence)
        if divergence_integral is None:  # pragma: no cover - integrate returns it when asked
            raise RuntimeError("CNF: the solve returned no divergence integral")
        return standard_normal_log_density(z) + divergence_integral

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`log_prob` (so DistributedDataParallel can wrap the flow).

        Parameters
        ----------
        x : Tensor, shape (B, *shape)

        Returns
        -------
        Tensor, shape (B,)
            ``log p(x)`` in nats.
        """
        return self.log_prob(x)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples: Gaussian noise flowed back from ``T`` to 0 (no gradients, no trace).

        Parameters
        ----------
        n : int
        generator : torch.Generator, optional
            Of the noise (CPU); default torch's global one.

        Returns
        -------
        Tensor, shape (n, *shape)
        """
        parameter = next(self.parameters())
        noise = torch.randn((n, *self.shape), generator=generator, dtype=parameter.dtype)
        with torch.no_grad():
            x, _ = self.block.integrate(noise.to(parameter.device), times=(self.time_length, 0.0))
        return x
