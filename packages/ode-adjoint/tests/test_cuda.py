"""The engines on CUDA tensors, against the same solves on the CPU."""

from __future__ import annotations

from typing import Any

import ode_adjoint
import pytest
import torch
from _adjoint_problems import DTYPE, GRADIENTS, TimeMLP, flat_parameter_grads, relative_difference

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
]

OUTPUT_TIMES = (0.0, 0.35, 1.0)


def _solve_and_differentiate(
    device: str, gradient: str, dtype: torch.dtype = DTYPE, **solve_kwargs: Any
) -> tuple[torch.Tensor, ...]:
    """Values and gradients (y0, parameters, t) of one solve, moved to the CPU."""
    func = TimeMLP(dtype=dtype).to(device)
    y0 = torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=dtype, device=device, requires_grad=True)
    t = torch.tensor(OUTPUT_TIMES, dtype=torch.float64, device=device, requires_grad=True)
    ys = ode_adjoint.odeint(func, y0, t, gradient=gradient, **solve_kwargs)
    assert ys.device == y0.device
    ys.square().sum().backward()
    assert y0.grad is not None
    assert t.grad is not None
    assert all(p.grad is not None and p.grad.device == y0.device for p in func.parameters())
    return tuple(x.detach().cpu() for x in (ys, y0.grad, flat_parameter_grads(func), t.grad))


SETTINGS = [
    pytest.param({"method": "rk4", "options": {"step_size": 0.05}}, 1e-10, id="rk4-fixed"),
    pytest.param({"method": "dopri5", "rtol": 1e-9, "atol": 1e-9}, 1e-6, id="dopri5"),
    pytest.param(
        {"method": "tsit5", "rtol": 1e-9, "atol": 1e-9, "options": {"checkpoints": 3}}, 1e-6, id="tsit5-budget"
    ),
]


@pytest.mark.parametrize(("solve_kwargs", "closeness"), SETTINGS)
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_engines_on_cuda_match_cpu(gradient: str, solve_kwargs: dict[str, Any], closeness: float) -> None:
    """Fixed steps do the same arithmetic on both devices (up to the order of
    reductions); adaptive steps may round a step-size decision differently,
    which moves the solution by about the tolerance."""
    on_cuda = _solve_and_differentiate("cuda", gradient, **solve_kwargs)
    on_cpu = _solve_and_differentiate("cpu", gradient, **solve_kwargs)
    for name, got, expected in zip(("ys", "y0", "parameters", "t"), on_cuda, on_cpu):
        assert relative_difference(got, expected) < closeness, name


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_float32_on_cuda_matches_cpu(gradient: str) -> None:
    on_cuda = _solve_and_differentiate("cuda", gradient, dtype=torch.float32, rtol=1e-5, atol=1e-6)
    on_cpu = _solve_and_differentiate("cpu", gradient, dtype=torch.float32, rtol=1e-5, atol=1e-6)
    for name, got, expected in zip(("ys", "y0", "parameters", "t"), on_cuda, on_cpu):
        assert got.dtype == expected.dtype
        assert relative_difference(got.double(), expected.double()) < 1e-4, name


def test_implicit_method_adjoint_on_cuda_matches_cpu() -> None:
    solve_kwargs = {"method": "kvaerno5", "rtol": 1e-8, "atol": 1e-8}
    on_cuda = _solve_and_differentiate("cuda", "adjoint", **solve_kwargs)
    on_cpu = _solve_and_differentiate("cpu", "adjoint", **solve_kwargs)
    for name, got, expected in zip(("ys", "y0", "parameters", "t"), on_cuda, on_cpu):
        assert relative_difference(got, expected) < 1e-6, name


def test_func_on_the_wrong_device_is_named() -> None:
    y0 = torch.ones(2, dtype=DTYPE, device="cuda")
    with pytest.raises(ValueError, match=r"func: func\(t, y\) is on cpu, expected y0's device cuda"):
        ode_adjoint.odeint(lambda t, y: -y.cpu(), y0, [0.0, 1.0])


def test_tuple_parts_on_different_devices_are_rejected() -> None:
    state = (torch.ones(2, dtype=DTYPE, device="cuda"), torch.ones(3, dtype=DTYPE))
    with pytest.raises(ValueError, match=r"y0\[1\]: device cpu differs from y0\[0\]'s cuda"):
        ode_adjoint.odeint(lambda t, y: (-y[0], -y[1]), state, [0.0, 1.0])


def test_times_requiring_grad_on_another_device_are_rejected() -> None:
    y0 = torch.ones(2, dtype=DTYPE, device="cuda")
    t = torch.tensor([0.0, 1.0], dtype=DTYPE, requires_grad=True)
    with pytest.raises(ValueError, match=r"t: on cpu, expected y0's device cuda"):
        ode_adjoint.odeint(lambda t, y: -y, y0, t)
