"""options['linear_solver'] = 'krylov': a matrix-free Newton with autograd's Jacobian-vector products."""

from __future__ import annotations

import ode_adjoint
import pytest
import torch

N = 60
DIFFUSION = torch.tensor(0.1, dtype=torch.float64)


def reaction_diffusion(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    laplacian = torch.cat([u[1:2] - 2 * u[:1], u[:-2] - 2 * u[1:-1] + u[2:], u[-2:-1] - 2 * u[-1:]])
    return DIFFUSION * (N + 1) ** 2 * laplacian - u**3


U0 = torch.sin(torch.pi * torch.arange(1, N + 1, dtype=torch.float64) / (N + 1))
T = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)


@pytest.mark.parametrize(
    "method", ["bdf", pytest.param("radau5", marks=pytest.mark.slow), pytest.param("kvaerno5", marks=pytest.mark.slow)]
)
def test_autograd_products_give_the_direct_solve(method: str) -> None:
    with torch.no_grad():
        direct = ode_adjoint.solve(reaction_diffusion, U0, T, method=method, rtol=1e-7, atol=1e-10)
        krylov = ode_adjoint.solve(
            reaction_diffusion, U0, T, method=method, rtol=1e-7, atol=1e-10, options={"linear_solver": "krylov"}
        )
    assert krylov.stats.nlu == 0 and krylov.stats.n_steps == direct.stats.n_steps
    # autograd's products are exact: no evaluations of f beyond the Newton iterations'
    assert krylov.stats.nfev == direct.stats.nfev - direct.stats.nfev_jacobian
    torch.testing.assert_close(krylov.ys, direct.ys, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("method", "gradient"),
    [
        ("bdf", "backprop"),
        pytest.param("kvaerno5", "checkpoint", marks=pytest.mark.slow),
        pytest.param("radau5", "backprop", marks=pytest.mark.slow),
    ],
)
def test_the_gradient_through_krylov_solves_is_the_direct_ones(method: str, gradient: str) -> None:
    """The solve's derivative is (a I + b J)^{-1} with J held fixed, as a direct solve's factors are: the
    gradient equals the direct backprop's, and both the finite differences'."""
    diffusion = torch.tensor(0.1, dtype=torch.float64, requires_grad=True)

    def field(t: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        laplacian = torch.cat([u[1:2] - 2 * u[:1], u[:-2] - 2 * u[1:-1] + u[2:], u[-2:-1] - 2 * u[-1:]])
        return diffusion * (u.shape[0] + 1) ** 2 * laplacian - u**3

    u0 = U0[::3].clone().requires_grad_()  # 20 states: the check, not the scale
    times = T[:2] * 0.4
    options = {"method": method, "rtol": 1e-8, "atol": 1e-10, "gradient": gradient}
    grads = {}
    for solver in ("direct", "krylov"):
        solution = ode_adjoint.solve(field, u0, times, options={"linear_solver": solver}, **options)
        grads[solver] = torch.autograd.grad(solution.ys[-1].square().sum(), (diffusion, u0))
    for direct, krylov in zip(grads["direct"], grads["krylov"]):
        torch.testing.assert_close(krylov, direct, rtol=1e-8, atol=1e-10)
    with torch.no_grad():
        step = 1e-6

        def loss(value: float) -> float:
            diffusion.fill_(value)
            ys = ode_adjoint.solve(field, u0.detach(), times, options={"linear_solver": "krylov"}, **options).ys
            return float(ys[-1].square().sum())

        difference = (loss(0.1 + step) - loss(0.1 - step)) / (2 * step)
        diffusion.fill_(0.1)
    assert abs(float(grads["krylov"][0]) - difference) <= 1e-5 * abs(difference)


def test_an_unknown_linear_solver_is_refused() -> None:
    with pytest.raises(ValueError, match=r"options\['linear_solver'\]: expected 'direct' or 'krylov'"), torch.no_grad():
        ode_adjoint.solve(reaction_diffusion, U0, T, method="bdf", options={"linear_solver": "gmres"})


@pytest.mark.slow
@pytest.mark.parametrize("method", ["bdf", "radau5"])
def test_the_adjoint_engine_with_krylov_solves_gives_the_direct_adjoints_gradient(method: str) -> None:
    """Forward and backward solves matrix-free (the backward on forward differences of the augmented
    system): the adjoint's gradient as with direct solves. A rotation with mild damping, so that the
    backward reconstruction of z stays stable (a strongly dissipative field makes it ill-posed)."""
    generator = torch.Generator().manual_seed(0)
    n = 12
    matrix = torch.randn(n, n, dtype=torch.float64, generator=generator)
    matrix = 3 * (matrix - matrix.T) - 0.5 * torch.eye(n, dtype=torch.float64)
    theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return theta * (matrix @ y) - 0.1 * y**3

    y0 = torch.randn(n, dtype=torch.float64, generator=generator)
    times = torch.tensor([0.0, 1.0], dtype=torch.float64)
    grads = {}
    for solver in ("direct", "krylov"):
        solution = ode_adjoint.solve(
            field,
            y0,
            times,
            method=method,
            rtol=1e-9,
            atol=1e-11,
            gradient="adjoint",
            adjoint_params=(theta,),
            options={"linear_solver": solver},
            adjoint_options={"linear_solver": solver},
        )
        (grads[solver],) = torch.autograd.grad(solution.ys[-1].square().sum(), theta)
    torch.testing.assert_close(grads["krylov"], grads["direct"], rtol=1e-9, atol=0)
