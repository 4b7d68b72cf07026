"""Continuous normalizing flows and the toy densities they learn."""

from __future__ import annotations

import math

import pytest
import torch
from ode_models import CNF, TOY_DENSITIES, ConcatMLP, Regularization, toy_density
from ode_models._cnf import standard_normal_log_density
from torch import nn


class LinearFlow(nn.Module):
    """f(t, z) = z A^T + b: z(T) = e^{A T} x + A^{-1}(e^{A T} - I) b, and the trace integral is T tr A."""

    def __init__(self, matrix: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.matrix = nn.Parameter(matrix.clone())
        self.shift = nn.Parameter(shift.clone())

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z @ self.matrix.T + self.shift


def closed_form_log_prob(matrix: torch.Tensor, shift: torch.Tensor, x: torch.Tensor, time: float) -> torch.Tensor:
    exponential = torch.linalg.matrix_exp(matrix * time)
    offset = torch.linalg.solve(matrix, (exponential - torch.eye(len(shift), dtype=x.dtype)) @ shift)
    z = x @ exponential.T + offset
    return standard_normal_log_density(z) + time * torch.trace(matrix)


@pytest.mark.parametrize("gradient", ["backprop", "adjoint", "checkpoint"])
def test_log_density_of_a_linear_flow_matches_its_closed_form(gradient: str) -> None:
    torch.manual_seed(0)
    matrix = 0.5 * torch.randn(3, 3, dtype=torch.float64)
    shift = torch.randn(3, dtype=torch.float64)
    flow = CNF(LinearFlow(matrix, shift), (3,), time_length=1.5, gradient=gradient, rtol=1e-9, atol=1e-9)
    x = torch.randn(16, 3, dtype=torch.float64)
    expected = closed_form_log_prob(matrix, shift, x, 1.5)
    log_prob = flow.log_prob(x)
    torch.testing.assert_close(log_prob, expected, rtol=0, atol=1e-5)
    assert float((log_prob - expected).detach().abs().max()) < 1e-7  # far inside the acceptance's 1e-5
    # Maximum likelihood's gradient through the solve: that of the closed form.
    log_prob.mean().backward()
    reference = LinearFlow(matrix, shift)
    closed_form_log_prob(reference.matrix, reference.shift, x, 1.5).mean().backward()
    assert flow.block.func.matrix.grad is not None and reference.matrix.grad is not None
    torch.testing.assert_close(flow.block.func.matrix.grad, reference.matrix.grad, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(flow.block.func.shift.grad, reference.shift.grad, rtol=1e-6, atol=1e-8)


def test_hutchinsons_log_density_is_unbiased_on_a_linear_flow() -> None:
    torch.manual_seed(1)
    matrix = 0.5 * torch.randn(4, 4, dtype=torch.float64)
    shift = torch.zeros(4, dtype=torch.float64)
    flow = CNF(LinearFlow(matrix, shift), (4,), divergence="hutchinson", rtol=1e-8, atol=1e-8)
    x = torch.zeros(20_000, 4, dtype=torch.float64)  # one point, many draws of the noise
    with torch.no_grad():
        estimates = flow.log_prob(x)
    expected = float(closed_form_log_prob(matrix, shift, x[:1], 1.0))
    standard_error = float(estimates.std()) / math.sqrt(len(estimates))
    assert abs(float(estimates.mean()) - expected) < 4 * standard_error
    assert float(estimates.std()) > 0  # an estimate, not the exact trace


def test_sampling_inverts_the_flow() -> None:
    torch.manual_seed(2)
    flow = CNF(ConcatMLP(2, (16, 16)), (2,), rtol=1e-8, atol=1e-8).double()
    points = flow.sample(64, torch.Generator().manual_seed(3))
    z, _ = flow.block.integrate(points, times=(0.0, 1.0))
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(z.detach(), noise, rtol=1e-5, atol=1e-6)


def test_a_cnf_learns_and_counts_its_evaluations() -> None:
    # A few steps of maximum likelihood on eight Gaussians: the NLL falls, with the RNODE regularisers on.
    torch.manual_seed(0)
    density = toy_density("eight-gaussians")
    data = density.sample(256, torch.Generator().manual_seed(0)).float()
    weights = Regularization(kinetic_energy=0.01, jacobian_norm=0.01)
    flow = CNF(ConcatMLP(2, (32, 32)), (2,), rtol=1e-3, atol=1e-3, regularization=weights)
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        nll = -flow.log_prob(data).mean()
        regularization = flow.take_regularization_loss()
        assert regularization is not None
        optimizer.zero_grad()
        (nll + regularization).backward()
        optimizer.step()
        losses.append(float(nll.detach()))
    assert losses[-1] < losses[0] - 0.5
    (block,) = flow.ode_blocks()
    assert block.total_nfe_forward > 0 and block.total_nfe_backward > 0
    assert set(block.regularizer_means) == {"kinetic_energy", "jacobian_norm"}


@pytest.mark.parametrize("name", list(TOY_DENSITIES))
def test_toy_log_densities_are_normalised_and_fit_their_samples(name: str) -> None:
    density = toy_density(name)
    points = density.sample(20_000, torch.Generator().manual_seed(0))
    assert points.shape == (20_000, 2) and points.dtype == torch.float64
    log_p = density.log_density(points)
    assert torch.isfinite(log_p).all()  # every sample inside the support
    # The density integrates to one over a grid covering its support (midpoint rule).
    edges = torch.linspace(-6, 6, 301, dtype=torch.float64)
    centres = (edges[1:] + edges[:-1]) / 2
    grid = torch.cartesian_prod(centres, centres)
    total = float(density.log_density(grid).exp().sum()) * float(edges[1] - edges[0]) ** 2
    assert total == pytest.approx(1.0, abs=5e-3)
    # The samples come from it: a histogram on 1 x 1 cells agrees with the density's mass there.
    cells = torch.floor(points).long() + 6
    counts = torch.zeros(12, 12, dtype=torch.float64)
    counts.index_put_((cells[:, 0], cells[:, 1]), torch.ones(len(points), dtype=torch.float64), accumulate=True)
    cell_of_grid = (torch.floor(grid).long() + 6).clamp(0, 11)
    mass = torch.zeros(12, 12, dtype=torch.float64)
    weights = density.log_density(grid).exp() * float(edges[1] - edges[0]) ** 2
    mass.index_put_((cell_of_grid[:, 0], cell_of_grid[:, 1]), weights, accumulate=True)
    assert float((counts / len(points) - mass).abs().max()) < 0.01


def test_known_negative_log_likelihoods() -> None:
    # Checkerboard: uniform on area 32; eight Gaussians: well-separated components, so close to
    # log 8 plus a 2-D Gaussian's entropy with sigma = 0.5 / sqrt 2.
    generator = torch.Generator().manual_seed(1)
    checkerboard = toy_density("checkerboard")
    assert float(-checkerboard.log_density(checkerboard.sample(1000, generator)).mean()) == pytest.approx(math.log(32))
    eight = toy_density("eight-gaussians")
    nll = float(-eight.log_density(eight.sample(100_000, generator)).mean())
    sigma = 0.5 / math.sqrt(2)
    assert nll == pytest.approx(math.log(8) + 1 + math.log(2 * math.pi * sigma**2), abs=0.02)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="name: unknown toy density 'spiral'; valid names are two-moons"):
        toy_density("spiral")
    with pytest.raises(ValueError, match="n: expected a positive integer, got 0"):
        toy_density("two-moons").sample(0, torch.Generator())
    with pytest.raises(ValueError, match=r"x: expected shape \(m, 2\), got \(3,\)"):
        toy_density("two-moons").log_density(torch.zeros(3))
    with pytest.raises(ValueError, match="divergence: expected one of exact, hutchinson, got 'trace'"):
        CNF(ConcatMLP(2), (2,), divergence="trace")
    with pytest.raises(ValueError, match=r"time_length: expected a positive number, got 0\.0"):
        CNF(ConcatMLP(2), (2,), time_length=0.0)
    with pytest.raises(ValueError, match=r"x: expected shape \(B, 2\), got \(4, 3\)"):
        CNF(ConcatMLP(2), (2,)).log_prob(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="dim: expected a positive integer, got 0"):
        ConcatMLP(0)
