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


def test_a_gradient_through_the_krylov_solve_is_refused() -> None:
    u0 = U0.clone().requires_grad_()
    with pytest.raises(ValueError, match=r"options\['linear_solver'\]: the matrix-free Newton \('krylov'\) is not"):
        ode_adjoint.solve(reaction_diffusion, u0, T, method="bdf", options={"linear_solver": "krylov"})
    with pytest.raises(ValueError, match=r"options\['linear_solver'\]: expected 'direct' or 'krylov'"), torch.no_grad():
        ode_adjoint.solve(reaction_diffusion, U0, T, method="bdf", options={"linear_solver": "gmres"})
