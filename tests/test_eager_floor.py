"""benchmarks/benchmarks/_eager_floor.py: the hand-written reference takes ode_adjoint.solve's steps exactly,
so the benchmark's ratio of their times compares the same work."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import ode_adjoint
import pytest
import torch


@pytest.fixture(scope="module")
def floor(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    benchmark_script("bench_adjoint_vs_peers")  # puts benchmarks/ on the path, as the script runs
    from benchmarks import _eager_floor

    return _eager_floor


@pytest.mark.parametrize("rtol", [1e-3, 1e-6, 1e-8])
def test_the_floor_takes_the_solvers_steps(floor: ModuleType, rtol: float) -> None:
    from benchmarks._fields import MLPField

    torch.manual_seed(0)
    func, y0, t = MLPField(), torch.randn(16, 2), torch.linspace(0.0, 10.0, 11)
    with torch.no_grad():
        ys, nfev = floor.hand_written_dopri5(func, y0, t, rtol, 1e-2 * rtol)
        solution = ode_adjoint.solve(func, y0, t, rtol=rtol, atol=1e-2 * rtol, method="dopri5")
    assert nfev == solution.stats.nfev
    assert ys.shape == solution.ys.shape
    torch.testing.assert_close(ys, solution.ys, rtol=0.0, atol=1e-6)
