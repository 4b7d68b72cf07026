"""Two-dimensional toy densities, generated in code, with their log-densities.

The three of FFJORD's toy experiments (Grathwohl et al. 2019, figure 2;
the generators of their ``lib/toy_data.py``, whose constants these follow):
two moons, eight Gaussians and a checkerboard. Each comes with the true
``log p(x)``, so a flow's negative log-likelihood can be held against the
best possible one: closed form for the Gaussian mixture and the
checkerboard, a quadrature over the moons' angle for the moons.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType

import torch

__all__ = ["TOY_DENSITIES", "ToyDensity", "toy_density"]

_SQRT2 = math.sqrt(2.0)


class ToyDensity:
    """A 2-D distribution: ``sample(n, generator)`` and ``log_density(x)``.

    Parameters
    ----------
    name : str
    sampler : callable
        ``sampler(n, generator) -> Tensor (n, 2)`` float64.
    log_density : callable
        ``log_density(x (m, 2)) -> Tensor (m,)``, the true ``log p(x)``.
    """

    def __init__(
        self,
        name: str,
        sampler: Callable[[int, torch.Generator], torch.Tensor],
        log_density: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.name = name
        self._sampler = sampler
        self._log_density = log_density

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """Points drawn from the density.

        Parameters
        ----------
        n : int
        generator : torch.Generator
            CPU generator of the draws.

        Returns
        -------
        Tensor, shape (n, 2), float64
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n: expected a positive integer, got {n!r}")
        return self._sampler(n, generator)

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        """The true log-density.

        Parameters
        ----------
        x : Tensor, shape (m, 2)

        Returns
        -------
        Tensor, shape (m,)
            ``log p(x)`` in x's dtype (``-inf`` outside a support).
        """
        if x.dim() != 2 or x.shape[1] != 2:
            raise ValueError(f"x: expected shape (m, 2), got {tuple(x.shape)}")
        return self._log_density(x.double()).to(x.dtype)

    def __repr__(self) -> str:
        return f"ToyDensity({self.name!r})"


# --- eight Gaussians: centres 4 (cos k pi/4, sin k pi/4), noise 0.5, all divided by sqrt 2 ---------------

_EIGHT_SCALE = 4.0
_EIGHT_NOISE = 0.5


def _eight_centres() -> torch.Tensor:
    unit = [(1, 0), (-1, 0), (0, 1), (0, -1), (1 / _SQRT2, 1 / _SQRT2), (1 / _SQRT2, -1 / _SQRT2)]
    unit += [(-1 / _SQRT2, 1 / _SQRT2), (-1 / _SQRT2, -1 / _SQRT2)]
    return torch.tensor(unit, dtype=torch.float64) * _EIGHT_SCALE


def _eight_gaussians(n: int, generator: torch.Generator) -> torch.Tensor:
    centres = _eight_centres()[torch.randint(0, 8, (n,), generator=generator)]
    points = torch.randn(n, 2, generator=generator, dtype=torch.float64) * _EIGHT_NOISE + centres
    return points / _SQRT2


def _eight_gaussians_log_density(x: torch.Tensor) -> torch.Tensor:
    sigma = _EIGHT_NOISE / _SQRT2
    centres = _eight_centres() / _SQRT2
    squared = (x[:, None, :] - centres[None]).pow(2).sum(-1)
    log_components = -squared / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)
    return torch.logsumexp(log_components, dim=1) - math.log(8)


# --- checkerboard: 8 of the 16 unit cells of [-2, 2]^2, doubled: uniform on area 32 --------------------


def _checkerboard(n: int, generator: torch.Generator) -> torch.Tensor:
    x1 = torch.rand(n, generator=generator, dtype=torch.float64) * 4 - 2
    x2 = torch.rand(n, generator=generator, dtype=torch.float64) - 2.0 * torch.randint(0, 2, (n,), generator=generator)
    x2 = x2 + torch.floor(x1) % 2
    return torch.stack((x1, x2), dim=1) * 2


def _checkerboard_log_density(x: torch.Tensor) -> torch.Tensor:
    cells = torch.floor(x / 2)
    inside = (x.abs() <= 4).all(dim=1) & ((cells[:, 0] + cells[:, 1]) % 2 == 0)
    return torch.where(inside, -math.log(32.0), -math.inf)


# --- two moons: scikit-learn's make_moons (noise 0.1), times 2 plus (-1, -0.2) -------------------------

_MOONS_NOISE = 0.1
_MOONS_QUADRATURE = 512  # nodes per moon: spacing 0.012 against the Gaussian's width 0.2


def _moon_curves(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    outer = torch.stack((torch.cos(theta), torch.sin(theta)), dim=-1)
    inner = torch.stack((1 - torch.cos(theta), 1 - torch.sin(theta) - 0.5), dim=-1)
    shift = torch.tensor([-1.0, -0.2], dtype=torch.float64)
    return outer * 2 + shift, inner * 2 + shift


def _two_moons(n: int, generator: torch.Generator) -> torch.Tensor:
    theta = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
    outer, inner = _moon_curves(theta)
    which = torch.randint(0, 2, (n, 1), generator=generator).bool()
    points = torch.where(which, inner, outer)
    return points + torch.randn(n, 2, generator=generator, dtype=torch.float64) * (2 * _MOONS_NOISE)


def _two_moons_log_density(x: torch.Tensor) -> torch.Tensor:
    # p(x) = 1/2 sum over moons of (1/pi) integral over [0, pi] of N(x; c(theta), s^2 I) dtheta, the integral
    # by the midpoint rule (spectrally accurate for this smooth, narrow integrand away from the ends).
    sigma = 2 * _MOONS_NOISE
    theta = (torch.arange(_MOONS_QUADRATURE, dtype=torch.float64) + 0.5) * (math.pi / _MOONS_QUADRATURE)
    outer, inner = _moon_curves(theta)
    nodes = torch.cat((outer, inner))  # (2Q, 2), each node weighing 1 / (2Q)
    result = []
    for chunk in torch.split(x, 4096):
        squared = (chunk.pow(2).sum(1, keepdim=True) + nodes.pow(2).sum(1) - 2 * chunk @ nodes.T).clamp_min(0)
        log_kernel = -squared / (2 * sigma**2) - math.log(2 * math.pi * sigma**2)
        result.append(torch.logsumexp(log_kernel, dim=1) - math.log(nodes.shape[0]))
    return torch.cat(result)


TOY_DENSITIES = MappingProxyType(
    {
        "two-moons": ToyDensity("two-moons", _two_moons, _two_moons_log_density),
        "eight-gaussians": ToyDensity("eight-gaussians", _eight_gaussians, _eight_gaussians_log_density),
        "checkerboard": ToyDensity("checkerboard", _checkerboard, _checkerboard_log_density),
    }
)
"""The toy densities by name."""


def toy_density(name: str) -> ToyDensity:
    """A toy density by name.

    Parameters
    ----------
    name : str
        One of :data:`TOY_DENSITIES`.

    Returns
    -------
    ToyDensity

    Examples
    --------
    >>> import torch
    >>> moons = toy_density("two-moons")
    >>> points = moons.sample(5, torch.Generator().manual_seed(0))
    >>> points.shape, moons.log_density(points).shape
    (torch.Size([5, 2]), torch.Size([5]))
    """
    if name not in TOY_DENSITIES:
        raise ValueError(f"name: unknown toy density {name!r}; valid names are {', '.join(TOY_DENSITIES)}")
    return TOY_DENSITIES[name]
