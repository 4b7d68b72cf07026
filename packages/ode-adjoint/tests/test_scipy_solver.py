"""torchdiffeq's ``method="scipy_solver"``: scipy's solve_ivp behind odeint, differentiated by odeint_adjoint."""

from __future__ import annotations

import numpy as np
import ode_adjoint
import pytest
import torch

scipy_integrate = pytest.importorskip("scipy.integrate")


class Linear(torch.nn.Module):
    """``y' = A y`` with a rotation-and-decay ``A``, counting evaluations."""

    def __init__(self) -> None:
        super().__init__()
        self.matrix = torch.tensor([[-0.1, 1.0], [-1.0, -0.1]], dtype=torch.float64)
        self.nfe = 0

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.nfe += 1
        return self.matrix @ y


@pytest.mark.parametrize("solver", ["LSODA", "RK45", "DOP853", "Radau", "BDF"])
@pytest.mark.parametrize("reverse", [False, True])
def test_it_is_scipys_solve(solver: str, reverse: bool) -> None:
    func = Linear()
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 7, dtype=torch.float64)
    if reverse:
        t = -t
    ys = ode_adjoint.odeint(func, y0, t, method="scipy_solver", rtol=1e-8, atol=1e-10, options={"solver": solver})
    reference = scipy_integrate.solve_ivp(
        lambda s, y: func.matrix.numpy() @ y,
        (float(t[0]), float(t[-1])),
        y0.numpy(),
        method=solver,
        t_eval=t.numpy(),
        rtol=1e-8,
        atol=1e-10,
    )
    assert ys.shape == (7, 2) and ys.dtype == torch.float64
    # Bit-level differences of f (torch against NumPy) move the implicit solvers' Newton a little.
    np.testing.assert_allclose(ys.numpy(), reference.y.T, rtol=1e-9, atol=1e-11)


def test_shapes_dtypes_tuples_and_a_single_time() -> None:
    y0 = (torch.ones(2, 3, dtype=torch.float32), torch.zeros(4, dtype=torch.float32))
    ys = ode_adjoint.odeint(lambda t, y: (-y[0], y[1] + 1.0), y0, torch.tensor([0.0, 1.0]), method="scipy_solver")
    assert [tuple(y.shape) for y in ys] == [(2, 2, 3), (2, 4)] and ys[0].dtype == torch.float32
    torch.testing.assert_close(ys[0][1], torch.full((2, 3), float(np.exp(-1.0))), rtol=1e-5, atol=0)
    torch.testing.assert_close(ys[1][1], torch.full((4,), float(np.e - 1.0)), rtol=1e-5, atol=0)
    single = ode_adjoint.odeint(lambda t, y: -y, torch.ones(3), torch.tensor([0.5]), method="scipy_solver")
    assert torch.equal(single, torch.ones(1, 3))


def test_min_step_and_max_step_reach_scipy() -> None:
    coarse, fine = Linear(), Linear()
    t = torch.tensor([0.0, 10.0], dtype=torch.float64)
    ode_adjoint.odeint(
        coarse,
        torch.ones(2, dtype=torch.float64),
        t,
        method="scipy_solver",
        options={"solver": "RK45", "max_step": 5.0},
    )
    ode_adjoint.odeint(
        fine, torch.ones(2, dtype=torch.float64), t, method="scipy_solver", options={"solver": "RK45", "max_step": 0.01}
    )
    assert fine.nfe > 5 * coarse.nfe


def test_what_it_does_not_do_is_said() -> None:
    y0 = torch.ones(2, requires_grad=True)
    with pytest.warns(UserWarning, match="scipy's solve is not differentiable"):
        ys = ode_adjoint.odeint(lambda t, y: -y, y0, torch.tensor([0.0, 1.0]), method="scipy_solver")
    assert not ys.requires_grad
    func = Linear()
    func.callback_step = lambda t, y, dt: None  # type: ignore[attr-defined]
    with pytest.warns(UserWarning, match="scipy's loop calls no callbacks; func.callback_step"):
        ode_adjoint.odeint(func, torch.ones(2, dtype=torch.float64), torch.tensor([0.0, 1.0]), method="scipy_solver")
    with pytest.warns(UserWarning, match=r"options \['first_step'\] are not used"):
        ode_adjoint.odeint(
            lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="scipy_solver", options={"first_step": 0.1}
        )
    with pytest.raises(ValueError, match="method: 'scipy_solver' hands the solve to scipy's solve_ivp"):
        ode_adjoint.solve(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="scipy_solver")
    with pytest.raises(ValueError, match=r"method 'scipy_solver': \['dense_output'\] apply to ode-core's solves only"):
        ode_adjoint.odeint(
            lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="scipy_solver", dense_output=True
        )


def test_a_failed_scipy_solve_raises_with_its_message() -> None:
    with pytest.raises(
        ode_adjoint.SolverError, match=r"scipy_solver \(RK45\): Required step size is less than spacing"
    ):
        ode_adjoint.odeint(
            lambda t, y: y**2,
            torch.ones(1, dtype=torch.float64),
            torch.tensor([0.0, 2.0]),
            method="scipy_solver",
            options={"solver": "RK45"},
        )


class Cubic(torch.nn.Module):
    """``y' = (y^3) A`` with a parameter ``A`` and a module it never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.matrix = torch.nn.Parameter(torch.tensor([[-0.1, 2.0], [-2.0, -0.1]], dtype=torch.float64))
        self.unused = torch.nn.Linear(2, 3).to(torch.float64)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return (y**3) @ self.matrix + 0.1 * torch.sin(t)


@pytest.mark.parametrize("solver", ["LSODA", "DOP853", pytest.param("Radau", marks=pytest.mark.slow)])
def test_odeint_adjoint_differentiates_scipys_solve(solver: str) -> None:
    """The adjoint equations solved backwards by the same scipy solver give
    backprop's gradients through a tight ode-core solve: y0, every output
    time and the parameters (zero for the unused ones, as torchdiffeq gives)."""
    weights = torch.linspace(0.2, 1.0, 8, dtype=torch.float64).reshape(4, 1, 2)
    grads = {}
    for name in ("scipy", "reference"):
        func = Cubic()
        y0 = torch.tensor([[0.9, 0.0]], dtype=torch.float64, requires_grad=True)
        t = torch.linspace(0.0, 3.0, 4, dtype=torch.float64, requires_grad=True)
        if name == "scipy":
            ys = ode_adjoint.odeint_adjoint(
                func, y0, t, method="scipy_solver", rtol=1e-10, atol=1e-12, options={"solver": solver}
            )
        else:
            ys = ode_adjoint.odeint(func, y0, t, method="dopri8", rtol=1e-12, atol=1e-12)
        (ys * weights).sum().backward()
        grads[name] = (y0.grad, t.grad, func.matrix.grad, func.unused.weight.grad)
    for got, expected in zip(grads["scipy"][:3], grads["reference"][:3]):
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    assert grads["scipy"][3] is not None and not grads["scipy"][3].any()


def test_odeint_adjoint_through_scipy_passes_gradcheck() -> None:
    func = Linear()
    matrix = func.matrix.clone().requires_grad_()

    def solution(y0: torch.Tensor, t: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        ys: torch.Tensor = ode_adjoint.odeint_adjoint(
            lambda time, y: matrix @ y,
            y0,
            t,
            method="scipy_solver",
            rtol=1e-11,
            atol=1e-12,
            adjoint_params=(matrix,),
            options={"solver": "DOP853"},
        )
        return ys

    inputs = (
        torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True),
        torch.tensor([0.0, 0.4, 1.0], dtype=torch.float64, requires_grad=True),
        matrix,
    )
    assert torch.autograd.gradcheck(solution, inputs, atol=1e-6, rtol=1e-5)


def test_the_adjoint_through_scipy_takes_per_element_tolerances() -> None:
    """rtol and atol of one value per state element reach the backward solve
    for the state and its adjoint, one value for the parameters' part."""
    func = Linear()
    y0 = torch.tensor([1.0, 0.5], dtype=torch.float64, requires_grad=True)
    tolerance = torch.tensor([1e-10, 1e-9], dtype=torch.float64)
    ys = ode_adjoint.odeint_adjoint(
        func,
        y0,
        torch.tensor([0.0, 1.0], dtype=torch.float64),
        method="scipy_solver",
        rtol=tolerance,
        atol=tolerance,
        adjoint_params=(),
        options={"solver": "DOP853"},
    )
    ys[-1].sum().backward()
    expected = torch.linalg.matrix_exp(func.matrix).sum(0)
    torch.testing.assert_close(y0.grad, expected, rtol=1e-7, atol=1e-8)


def test_an_adjoint_with_settings_of_its_own_is_refused_for_scipy() -> None:
    with pytest.raises(ValueError, match="an Adjoint with settings of its own applies to ode-core's solves only"):
        ode_adjoint.odeint(
            lambda t, y: -y,
            torch.ones(2),
            torch.tensor([0.0, 1.0]),
            method="scipy_solver",
            gradient=ode_adjoint.Adjoint(rtol=1e-3),
        )
