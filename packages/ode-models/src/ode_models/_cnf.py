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
from ._models import ConcatConv2d, ODEBlock, ODEModel

__all__ = ["CNF", "ConcatConvNet", "ConcatMLP", "LogitTransform", "standard_normal_log_density"]


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


class ConcatConvNet(nn.Module):
    """``f(t, z)`` for images: :class:`ConcatConv2d` layers (3x3 convolutions seeing the time).

    The "concat" convolutions of FFJORD's image flows, softplus between
    them (FFJORD's MNIST nonlinearity: smooth, so the trace's products are
    too), same-size padding throughout, for states of shape (B, C, H, W).

    Parameters
    ----------
    channels : int
        The image's channels (MNIST: 1).
    hidden : sequence of int
        Channels of the hidden layers.
    """

    def __init__(self, channels: int, hidden: Sequence[int] = (32, 32, 32)) -> None:
        super().__init__()
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels: expected a positive integer, got {channels!r}")
        widths = [channels, *hidden, channels]
        self.layers = nn.ModuleList(ConcatConv2d(width, out) for width, out in itertools.pairwise(widths))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The dynamics.

        Parameters
        ----------
        t : Tensor, shape ()
        z : Tensor, shape (B, C, H, W)

        Returns
        -------
        Tensor, shape (B, C, H, W)
        """
        out = z
        for index, layer in enumerate(self.layers):
            out = layer(t, out)
            if index < len(self.layers) - 1:
                out = nn.functional.softplus(out)
        return out


class LogitTransform:
    """``w = logit(alpha + (1 - 2 alpha) y)``: pixel values ``y`` in [0, 1] to the real line, with its log-det.

    A flow on images models ``w`` (unbounded, as the Gaussian base is);
    the change of variables adds ``log |dw/dy|`` summed over the pixels
    (RealNVP, Dinh et al. 2017; FFJORD's ``alpha`` = 1e-6 for MNIST).

    Parameters
    ----------
    alpha : float
        In (0, 1/2): keeps the logit finite at 0 and 1.
    """

    def __init__(self, alpha: float = 1e-6) -> None:
        if not 0 < alpha < 0.5:
            raise ValueError(f"alpha: expected a number in (0, 0.5), got {alpha!r}")
        self.alpha = float(alpha)

    def __call__(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The logits and the transform's log-det.

        Parameters
        ----------
        y : Tensor, shape (B, ...)
            Values in [0, 1].

        Returns
        -------
        w : Tensor, shape (B, ...)
        log_det : Tensor, shape (B,)
            ``log |dw/dy|`` summed over each sample's values.
        """
        s = self.alpha + (1 - 2 * self.alpha) * y
        w = torch.log(s) - torch.log1p(-s)
        # dw/dy = (1 - 2 alpha) / (s (1 - s))
        log_det = math.log(1 - 2 * self.alpha) - torch.log(s) - torch.log1p(-s)
        return w, log_det.flatten(1).sum(1)

    def inverse(self, w: torch.Tensor) -> torch.Tensor:
        """The values from their logits.

        Parameters
        ----------
        w : Tensor, shape (B, ...)

        Returns
        -------
        Tensor, shape (B, ...)
            ``y``, clamped into [0, 1].
        """
        return ((torch.sigmoid(w) - self.alpha) / (1 - 2 * self.alpha)).clamp(0.0, 1.0)

    def __repr__(self) -> str:
        return f"LogitTransform(alpha={self.alpha!r})"


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
    logit : LogitTransform, optional
        For images with values in [0, 1]: the flow models their logits and
        :meth:`log_prob` adds the transform's log-det, so it is the density
        of the pixel values themselves; :meth:`sample` maps back.

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
        logit: LogitTransform | None = None,
    ) -> None:
        super().__init__()
        if divergence not in DIVERGENCES:
            raise ValueError(f"divergence: expected one of {', '.join(DIVERGENCES)}, got {divergence!r}")
        if not time_length > 0 or not math.isfinite(time_length):
            raise ValueError(f"time_length: expected a positive number, got {time_length!r}")
        self.shape = tuple(int(size) for size in shape)
        self.divergence = divergence
        self.time_length = float(time_length)
        self.logit = logit
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
        log_det: torch.Tensor | float = 0.0
        if self.logit is not None:
            x, log_det = self.logit(x)
        z, divergence_integral = self.block.integrate(x, times=(0.0, self.time_length), divergence=self.divergence)
        if divergence_integral is None:  # pragma: no cover - integrate returns it when asked
            raise RuntimeError("CNF: the solve returned no divergence integral")
        return standard_normal_log_density(z) + divergence_integral + log_det

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
        return x if self.logit is None else self.logit.inverse(x)
