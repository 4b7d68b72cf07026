"""The torch vector fields of the gradient benchmarks, and the peers' solver set-up.

Every field counts its calls in ``calls`` (the peers report no evaluation
counts of their own), except a van der Pol batch made with ``count=False``
(a field with Python side effects is no graph for ``torch.compile``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

MEMORY_WIDTH = 16


class VanDerPolBatch(nn.Module):
    """Van der Pol oscillators, one ``mu`` per sample: ``y`` of shape (batch, 2), each row its own ODE."""

    def __init__(self, mu: torch.Tensor, count: bool = True) -> None:
        super().__init__()
        self.register_buffer("mu", mu)
        self.count = count
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.count:
            self.calls += 1
        position, velocity = y[..., 0], y[..., 1]
        return torch.stack((velocity, self.mu * (1 - position**2) * velocity - position), dim=-1)

    def sample(self, i: int) -> VanDerPolBatch:
        """Sample ``i`` alone, as a batch of one (counting its calls)."""
        return VanDerPolBatch(self.mu[i : i + 1])


class RateMLPBatch(nn.Module):
    """A neural field with one rate per sample, carried in the state: ``y = (x, rate)`` with
    ``x' = rate * (W2 tanh(W1 x + b1) - 0.1 x)`` and ``rate' = 0``.

    Row-wise, with no per-sample data of its own (the rate is part of each
    sample's state), so the samples are independent ODEs, each as stiff as
    its rate makes it, and any subset of rows can be evaluated (the
    per-sample mode's ``compact``); fixed random weights (seed 0).
    """

    def __init__(self, hidden: int = 64, count: bool = True, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.w1 = nn.Parameter(torch.randn(2, hidden, generator=generator, dtype=dtype))
        self.b1 = nn.Parameter(torch.randn(hidden, generator=generator, dtype=dtype))
        self.w2 = nn.Parameter(torch.randn(hidden, 2, generator=generator, dtype=dtype) / hidden**0.5)
        self.count = count
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.count:
            self.calls += 1
        x, rate = y[..., :2], y[..., 2:]
        return torch.cat((rate * (torch.tanh(x @ self.w1 + self.b1) @ self.w2 - 0.1 * x), torch.zeros_like(rate)), -1)

    def sample(self, i: int) -> RateMLPBatch:
        """A field for sample ``i`` alone: the same weights, counting its own calls."""
        single = RateMLPBatch(self.w1.shape[1], dtype=self.w1.dtype).to(self.w1.device)
        single.load_state_dict(self.state_dict())
        return single


# The heterogeneous batches of bench_heterogeneous.py and peers.HeterogeneousBatch.
HETEROGENEOUS_MU = (0.2, 5.0)
HETEROGENEOUS_TOLERANCES = (1e-6, 1e-8)  # rtol, atol


def heterogeneous_batch(batch: int = 32, count: bool = True) -> tuple[VanDerPolBatch, torch.Tensor, torch.Tensor]:
    """``(field, y0, t)``: van der Pol with ``mu`` spread over ``HETEROGENEOUS_MU``, from ``(2, 0)``,
    outputs at ``t = 0, 1, ..., 10``, float64."""
    mu = torch.linspace(*HETEROGENEOUS_MU, batch, dtype=torch.float64)
    y0 = torch.tensor([2.0, 0.0], dtype=torch.float64).expand(batch, 2).contiguous()
    return VanDerPolBatch(mu, count), y0, torch.linspace(0.0, 10.0, 11, dtype=torch.float64)


def heterogeneous_neural_batch(batch: int = 128, count: bool = True) -> tuple[RateMLPBatch, torch.Tensor, torch.Tensor]:
    """``(field, y0, t)``: :class:`RateMLPBatch` (hidden 64), ``x0`` standard normal (seed 1) and rates
    from 0.5 to 8 over the batch, outputs at ``t = 0, 0.5, ..., 5``, float64."""
    rates = torch.linspace(0.5, 8.0, batch, dtype=torch.float64)
    x0 = torch.randn(batch, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y0 = torch.cat((x0, rates[:, None]), dim=1)
    return RateMLPBatch(count=count), y0, torch.linspace(0.0, 5.0, 11, dtype=torch.float64)


HETEROGENEOUS_PROBLEMS = {
    "van der Pol, mu from 0.2 to 5": (heterogeneous_batch, 32, False),
    "neural field (MLP 2-64-2), rates from 0.5 to 8 in the state": (heterogeneous_neural_batch, 128, True),
}
"""The heterogeneous batches by title: ``(make(batch, count) -> (field, y0, t), default batch, compactable)``;
a compactable field has no per-sample data of its own (van der Pol's ``mu`` is)."""


class MLPField(nn.Module):
    """``f(t, y) = Linear(tanh(Linear(y)))``, time ignored: the small MLP of the overhead benchmarks."""

    def __init__(self, dim: int = 2, hidden: int = 50) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc2(torch.tanh(self.fc1(y)))


class ConcatConv2d(nn.Module):
    """Conv2d on the input with a constant channel ``t`` prepended (Chen et al.'s ``ConcatConv2d``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels + 1, channels, 3, padding=1)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        time_channel = torch.ones_like(x[:, :1]) * t.to(x.dtype)
        return self.conv(torch.cat((time_channel, x), 1))


class ODENetField(nn.Module):
    """The MNIST ODE-Net's ODE block (Chen, Rubanova, Bettencourt & Duvenaud 2018)."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(32, channels), channels)
        self.conv1 = ConcatConv2d(channels)
        self.norm2 = nn.GroupNorm(min(32, channels), channels)
        self.conv2 = ConcatConv2d(channels)
        self.norm3 = nn.GroupNorm(min(32, channels), channels)
        self.calls = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = torch.relu(self.norm1(x))
        out = torch.relu(self.norm2(self.conv1(t, out)))
        return self.norm3(self.conv2(t, out))


class MemoryField(nn.Module):
    """``dy/dt = tanh(Y W + b) - Y``, ``Y`` the flat state as rows of 16: cheap, with a state of any size.

    The memory benchmarks use a state of 32,768 float32 (128 KiB), so that
    what an engine keeps per step dominates everything else.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(MEMORY_WIDTH, MEMORY_WIDTH) / MEMORY_WIDTH**0.5)
        self.bias = nn.Parameter(torch.zeros(MEMORY_WIDTH))
        self.calls = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        rows = y.view(-1, MEMORY_WIDTH)
        return (torch.tanh(rows @ self.weight + self.bias) - rows).reshape(-1)


def torchode_dopri5(func: nn.Module, y0: torch.Tensor, t: torch.Tensor, rtol: float, atol: float) -> tuple[Any, Any]:
    """torchode's dopri5 with its integral controller, built once and run eagerly: ``(solver, problem)``.

    torchode steps every sample of the batch (``y0``'s first axis) with its
    own step size; ``solver.solve(problem).ys`` is (batch, time, ...).
    """
    import torchode

    term = torchode.ODETerm(func)
    solver = torchode.AutoDiffAdjoint(
        torchode.Dopri5(term=term), torchode.IntegralController(atol=atol, rtol=rtol, term=term)
    )
    problem = torchode.InitialValueProblem(y0=y0, t_eval=t.expand(y0.shape[0], -1))
    return solver, problem
