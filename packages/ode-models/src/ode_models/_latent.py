"""The latent ODE for irregularly sampled time series (Chen et al. 2018, section 5), and its RNN baseline.

Data: 2-D spirals generated in code, clockwise and counter-clockwise, as in
the paper's section 5.1 and torchdiffeq's ``examples/latent_ode.py`` (whose
constants these follow: 500 points over [0, 6 pi], windows of 100
consecutive points, Gaussian noise of standard deviation 0.3, radius
``a + b z`` with a = 0, b = 0.3). Each trajectory is observed at its own
random subset of its window's times (irregular sampling), always including
the window's start ``t = 0``; the 100 points after the window are kept,
noise-free, for extrapolation.

Model: a recognition GRU runs backwards over the observations (values and
time gaps) to ``q(z0)``; ``z(t)`` follows a learnt ODE from ``z0`` and a
decoder maps it to the observation space; training maximises the ELBO. The
ODE is solved once per batch in ode-adjoint's per-sample mode, each
trajectory at its own observation times. The baseline replaces the ODE by
a GRU stepped over the time gaps (the same encoder and decoder).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._models import ODEBlock, ODEModel

__all__ = ["LatentODE", "LatentRNN", "SpiralDataset", "make_spirals", "spiral_grid"]

SPIRAL_POINTS = 500
SPIRAL_STOP = 6 * math.pi
WINDOW = 100
"""Points of an observation window (and of the extrapolation after it)."""
SPIRAL_NOISE = 0.3
_A, _B = 0.0, 0.3  # radius a + b z


def spiral_grid(dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> torch.Tensor:
    """The times of a window and of its extrapolation, relative to the window's start: (200,)."""
    grid = torch.linspace(0.0, SPIRAL_STOP, SPIRAL_POINTS, dtype=torch.float64)[: 2 * WINDOW]
    return grid.to(dtype=dtype, device=device)


def _spiral_curves() -> tuple[torch.Tensor, torch.Tensor]:
    times = torch.linspace(0.0, SPIRAL_STOP, SPIRAL_POINTS, dtype=torch.float64)
    angle_cw = SPIRAL_STOP + 1.0 - times
    radius_cw = _A + _B * 50.0 / angle_cw
    clockwise = torch.stack((radius_cw * torch.cos(angle_cw) - 5.0, radius_cw * torch.sin(angle_cw)), dim=1)
    radius_cc = _A + _B * times
    counter = torch.stack((radius_cc * torch.cos(times) + 5.0, radius_cc * torch.sin(times)), dim=1)
    return clockwise, counter


class SpiralDataset:
    """Irregularly observed spirals with their noise-free windows and continuations.

    Parameters
    ----------
    observed_values : Tensor, shape (N, k, 2)
    observed_times : Tensor, shape (N, k)
        Increasing per trajectory, starting at 0.
    window, future : Tensor, shape (N, 100, 2)
        The noise-free trajectory at ``window_times`` and ``future_times``.

    Attributes
    ----------
    window_times, future_times : Tensor, shape (100,)
        The times of the window and of the 100 points after it, from the window's start.

    :meth:`batch` returns ``(observed_values, observed_times, window, future)`` of the indices.
    """

    def __init__(
        self, observed_values: torch.Tensor, observed_times: torch.Tensor, window: torch.Tensor, future: torch.Tensor
    ) -> None:
        self.observed_values = observed_values
        self.observed_times = observed_times
        self.window = window
        self.future = future
        grid = spiral_grid(observed_values.dtype)
        self.window_times, self.future_times = grid[:WINDOW], grid[WINDOW:]

    def __len__(self) -> int:
        return int(self.observed_values.shape[0])

    def batch(
        self, indices: torch.Tensor | Sequence[int], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The trajectories ``indices``.

        Parameters
        ----------
        indices : Tensor or sequence of int, shape (B,)
        generator : torch.Generator, optional
            Unused: no augmentation.

        Returns
        -------
        tuple of Tensor
            ``observed_values`` (B, k, 2), ``observed_times`` (B, k), ``window`` and ``future`` (B, 100, 2).
        """
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.observed_values[index], self.observed_times[index], self.window[index], self.future[index]


def make_spirals(n: int, n_observed: int, generator: torch.Generator) -> SpiralDataset:
    """``n`` spirals, each observed at ``n_observed`` of its window's 100 times (the first always).

    Parameters
    ----------
    n : int
        Trajectories, clockwise or counter-clockwise with probability 1/2.
    n_observed : int
        Observations per trajectory, 2 to 100.
    generator : torch.Generator
        Starts, directions, the observed subsets and the noise.

    Returns
    -------
    SpiralDataset
        float32.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    if isinstance(n_observed, bool) or not isinstance(n_observed, int) or not 2 <= n_observed <= WINDOW:
        raise ValueError(f"n_observed: expected an integer from 2 to {WINDOW}, got {n_observed!r}")
    clockwise, counter = _spiral_curves()
    # Windows start after the first 100 points and leave room for the 100 extrapolated after them.
    starts = torch.randint(WINDOW, SPIRAL_POINTS - 2 * WINDOW + 1, (n,), generator=generator)
    counterwise = torch.rand(n, generator=generator) > 0.5
    offsets = torch.arange(2 * WINDOW)
    curves = torch.where(
        counterwise[:, None, None], counter[starts[:, None] + offsets], clockwise[starts[:, None] + offsets]
    )
    window, future = curves[:, :WINDOW], curves[:, WINDOW:]
    # Each trajectory's observed subset: t = 0 and n_observed - 1 others, in order.
    others = torch.rand(n, WINDOW - 1, generator=generator).argsort(dim=1)[:, : n_observed - 1] + 1
    chosen = torch.cat((torch.zeros(n, 1, dtype=torch.int64), others.sort(dim=1).values), dim=1)
    grid = torch.linspace(0.0, SPIRAL_STOP, SPIRAL_POINTS, dtype=torch.float64)
    observed = torch.gather(window, 1, chosen[:, :, None].expand(-1, -1, 2))
    observed = observed + SPIRAL_NOISE * torch.randn(observed.shape, generator=generator, dtype=torch.float64)
    return SpiralDataset(observed.float(), grid[chosen].float(), window.float(), future.float())


class RecognitionRNN(nn.Module):
    """A GRU over the observations, last to first, with the time gaps as inputs: ``q(z0)``'s mean and log-variance.

    Parameters
    ----------
    latent_dim, obs_dim, hidden : int
    """

    def __init__(self, latent_dim: int = 4, obs_dim: int = 2, hidden: int = 25) -> None:
        super().__init__()
        self.cell = nn.GRUCell(obs_dim + 1, hidden)
        self.out = nn.Linear(hidden, 2 * latent_dim)
        self.hidden = hidden

    def forward(self, values: torch.Tensor, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_variance)``, each (B, latent_dim), from values (B, k, obs_dim) at times (B, k)."""
        gaps = torch.diff(times, dim=1, append=times[:, -1:])  # the gap to the next observation
        state = values.new_zeros(values.shape[0], self.hidden)
        for index in range(values.shape[1] - 1, -1, -1):
            state = self.cell(torch.cat((values[:, index], gaps[:, index : index + 1]), dim=1), state)
        mean, log_variance = self.out(state).chunk(2, dim=1)
        return mean, log_variance


class LatentDynamics(nn.Module):
    """``dz/dt = f(z)``: an ELU MLP (torchdiffeq's latent ODE example: 4 -> 20 -> 20 -> 4)."""

    def __init__(self, latent_dim: int = 4, hidden: int = 20) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(), nn.Linear(hidden, latent_dim)
        )

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Autonomous: ``t`` (one time per sample in the per-sample mode) is unused."""
        out: torch.Tensor = self.net(z)
        return out


def _decoder(latent_dim: int, obs_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, obs_dim))


def gaussian_log_likelihood(values: torch.Tensor, mean: torch.Tensor, noise_std: float) -> torch.Tensor:
    """``sum log N(values; mean, noise_std^2)`` per trajectory: (B, k, d) -> (B,)."""
    squared = (values - mean).pow(2).flatten(1)
    return -0.5 * (squared / noise_std**2 + math.log(2 * math.pi * noise_std**2)).sum(1)


class LatentODE(ODEModel):
    """Encoder -> ``z0`` -> ODE -> decoder, trained by the ELBO.

    Parameters
    ----------
    latent_dim, obs_dim : int
        4 and 2 for the spirals.
    method, rtol, atol, gradient
        The latent ODE's solve (default dopri5, 1e-3, 1e-4, backprop).
    noise_std : float
        The observation model's standard deviation.
    """

    def __init__(
        self,
        latent_dim: int = 4,
        obs_dim: int = 2,
        *,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-4,
        gradient: str = "backprop",
        noise_std: float = SPIRAL_NOISE,
    ) -> None:
        super().__init__()
        self.encoder = RecognitionRNN(latent_dim, obs_dim)
        self.block = ODEBlock(LatentDynamics(latent_dim), method=method, rtol=rtol, atol=atol, gradient=gradient)
        self.decoder = _decoder(latent_dim, obs_dim, 20)
        self.noise_std = noise_std

    def negative_elbo(self, values: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """``-ELBO`` per trajectory: one reparameterised ``z0``, each trajectory decoded at its own times.

        Parameters
        ----------
        values : Tensor, shape (B, k, obs_dim)
            The observations.
        times : Tensor, shape (B, k)
            Their times, increasing per trajectory from 0.

        Returns
        -------
        Tensor, shape (B,)
            The KL term minus the Gaussian log-likelihood of the observations.
        """
        mean, log_variance = self.encoder(values, times)
        z0 = mean + torch.randn_like(mean) * torch.exp(0.5 * log_variance)
        latent = self.block.trajectory(z0, times)  # (B, k, latent)
        likelihood = gaussian_log_likelihood(values, self.decoder(latent), self.noise_std)
        kl = 0.5 * (mean.pow(2) + log_variance.exp() - 1.0 - log_variance).sum(1)
        result: torch.Tensor = kl - likelihood
        return result

    def forward(self, values: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """:meth:`negative_elbo` (so DistributedDataParallel can wrap the model).

        Parameters
        ----------
        values : Tensor, shape (B, k, obs_dim)
        times : Tensor, shape (B, k)

        Returns
        -------
        Tensor, shape (B,)
        """
        return self.negative_elbo(values, times)

    def predict(self, values: torch.Tensor, times: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The decoded trajectory from ``q(z0)``'s mean at shared times.

        Parameters
        ----------
        values : Tensor, shape (B, k, obs_dim)
        times : Tensor, shape (B, k)
            The observations that ``q(z0)`` sees.
        grid : Tensor, shape (m,)
            The times to decode at, from 0.

        Returns
        -------
        Tensor, shape (B, m, obs_dim)
        """
        mean, _ = self.encoder(values, times)
        decoded: torch.Tensor = self.decoder(self.block.trajectory(mean, grid))
        return decoded


class LatentRNN(ODEModel):
    """The baseline: the same encoder and decoder, a GRU stepped over the time gaps instead of the ODE.

    Trained by the same Gaussian likelihood (without the KL term: its ``z0`` is the encoder's mean).

    Parameters
    ----------
    latent_dim, obs_dim : int
        4 and 2 for the spirals.
    noise_std : float
        The observation model's standard deviation.
    """

    def __init__(self, latent_dim: int = 4, obs_dim: int = 2, *, noise_std: float = SPIRAL_NOISE) -> None:
        super().__init__()
        self.encoder = RecognitionRNN(latent_dim, obs_dim)
        self.cell = nn.GRUCell(1, latent_dim)
        self.decoder = _decoder(latent_dim, obs_dim, 20)
        self.noise_std = noise_std

    def _trajectory(self, z0: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        rows = times if times.dim() == 2 else times.expand(z0.shape[0], -1)
        gaps = torch.diff(rows, dim=1, prepend=torch.zeros_like(rows[:, :1]))
        state, states = z0, []
        for index in range(rows.shape[1]):
            state = self.cell(gaps[:, index : index + 1], state)
            states.append(state)
        return torch.stack(states, dim=1)

    def forward(self, values: torch.Tensor, times: torch.Tensor) -> torch.Tensor:
        """The negative log-likelihood of the observations per trajectory.

        Parameters
        ----------
        values : Tensor, shape (B, k, obs_dim)
        times : Tensor, shape (B, k)

        Returns
        -------
        Tensor, shape (B,)
        """
        mean, _ = self.encoder(values, times)
        decoded = self.decoder(self._trajectory(mean, times))
        result: torch.Tensor = -gaussian_log_likelihood(values, decoded, self.noise_std)
        return result

    def predict(self, values: torch.Tensor, times: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        """The decoded trajectory at shared times.

        Parameters
        ----------
        values : Tensor, shape (B, k, obs_dim)
        times : Tensor, shape (B, k)
            The observations the encoder sees.
        grid : Tensor, shape (m,)
            The times to decode at, from 0.

        Returns
        -------
        Tensor, shape (B, m, obs_dim)
        """
        mean, _ = self.encoder(values, times)
        decoded: torch.Tensor = self.decoder(self._trajectory(mean, grid))
        return decoded
