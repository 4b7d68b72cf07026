"""The same solver code on torch tensors (CPU here; CUDA when present)."""

from __future__ import annotations

import math

import numpy as np
import ode_core
import pytest
from ode_core.validation import check_method

torch = pytest.importorskip("torch")


def oscillator_numpy(t: float, y: np.ndarray) -> np.ndarray:
    return np.stack((y[..., 1], -y[..., 0] + 0.1 * math.sin(t)), axis=-1)


def oscillator_torch(t: float, y: torch.Tensor) -> torch.Tensor:
    return torch.stack((y[..., 1], -y[..., 0] + 0.1 * math.sin(t)), dim=-1)


# dopri87's local error at its first step (h = 0.014 here, error ~ h**8) is
# at round-off level, where NumPy's and torch's matrix products (summed in
# different orders) give error estimates that differ by tens of percent; the
# second steps then differ by a few percent and so do the interpolated
# outputs, by a fraction of the solve's rtol (measured: 9e-9 at rtol 1e-8).
AGREEMENT = {"dopri87": 1e-8}


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "dopri8", "dopri87", "bosh3", "cash_karp"])
def test_torch_float64_matches_numpy(method: str, device: str) -> None:
    y0 = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, -1.0]])
    t = np.linspace(0.0, 3.0, 7)
    expected = ode_core.solve(oscillator_numpy, y0, t, method=method, rtol=1e-8, atol=1e-10)
    got = ode_core.solve(
        oscillator_torch, torch.tensor(y0, device=device), torch.tensor(t), method=method, rtol=1e-8, atol=1e-10
    )
    assert got.success
    assert isinstance(got.ys, torch.Tensor)
    assert got.ys.device.type == device
    assert got.ys.shape == (7, 3, 2)
    assert got.ts.dtype == torch.float64
    assert got.stats == expected.stats
    agreement = AGREEMENT.get(method, 1e-12)
    np.testing.assert_allclose(got.ys.cpu().numpy(), expected.ys, rtol=agreement, atol=agreement)
    assert got.dense is not None
    np.testing.assert_allclose(got.dense(1.23).cpu().numpy(), expected.dense(1.23), rtol=agreement, atol=agreement)


def test_torch_float32_state_with_float64_time(device: str) -> None:
    y0 = torch.tensor([1.0, 0.0], dtype=torch.float32, device=device)
    # float32 cannot tell 1e4 from 1e4 + 1e-3; float64 time must.
    t = torch.tensor([1e4, 1e4 + 1e-3, 1e4 + 1.0], dtype=torch.float64)
    seen_time_types = set()

    def f(time: float, y: torch.Tensor) -> torch.Tensor:
        seen_time_types.add(type(time))
        return torch.stack((y[1], -y[0]))

    sol = ode_core.solve(f, y0, t, method="tsit5", rtol=1e-5, atol=1e-6)
    assert sol.success, sol.message
    assert sol.ys.dtype == torch.float32
    assert sol.ts.dtype == torch.float64
    assert float(sol.ts[1]) == 1e4 + 1e-3
    assert seen_time_types == {float}
    expected = torch.tensor([[1.0, 0.0], [math.cos(1e-3), -math.sin(1e-3)], [math.cos(1.0), -math.sin(1.0)]])
    assert torch.allclose(sol.ys.cpu(), expected, atol=1e-4)


@pytest.mark.parametrize("method", ["rk4", "euler", "midpoint"])
def test_torch_fixed_step(method: str) -> None:
    y0 = torch.ones(4, dtype=torch.float64)
    sol = ode_core.solve(lambda t, y: -y, y0, [0.0, 1.0], method=method, step_size=0.01)
    assert sol.success
    order = check_method(method).order
    assert abs(float(sol.ys[-1, 0]) - math.exp(-1.0)) < 10 * 0.01**order


def test_torch_tolerance_arrays_and_norm() -> None:
    y0 = torch.tensor([1.0, 1.0], dtype=torch.float64)
    sol = ode_core.solve(
        lambda t, y: -y, y0, [0.0, 1.0], rtol=torch.tensor([1e-8, 1e-3]), atol=1e-12, norm=ode_core.max_norm
    )
    assert sol.success
    assert abs(float(sol.ys[-1, 0]) - math.exp(-1.0)) < 1e-7


def test_torch_wrong_output_library_is_named() -> None:
    with pytest.raises(TypeError, match="f: expected f"):
        ode_core.solve(lambda t, y: np.zeros(2), torch.zeros(2, dtype=torch.float64), [0.0, 1.0])


def test_torch_integer_state_becomes_float64() -> None:
    solution = ode_core.solve(lambda t, y: -y, torch.ones(2, dtype=torch.int64), [0.0, 1.0])
    assert solution.ys.dtype == torch.float64
    torch.testing.assert_close(
        solution.ys[-1], torch.full((2,), math.exp(-1.0), dtype=torch.float64), rtol=1e-5, atol=0
    )


def test_torch_status_on_nan() -> None:
    sol = ode_core.solve(lambda t, y: y * float("nan"), torch.ones(2, dtype=torch.float64), [0.0, 1.0])
    assert sol.status is ode_core.Status.NON_FINITE
