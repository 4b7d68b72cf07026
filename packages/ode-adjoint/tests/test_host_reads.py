"""The loop's reads of tensor values on the host, counted on the CPU.

On CUDA every read of a tensor's value by Python (``float(t)``, ``bool(t)``,
``t.item()``) makes the host wait for the GPU, so the loop reads only where
it must decide something: one error ratio per attempted adaptive step (two
norms for dopri8), nothing per fixed step. ``test_cuda.py`` counts the
synchronisations themselves on a GPU; this module counts the same reads on
the CPU (``aten._local_scalar_dense``, which every such read goes through),
so that CI, which has no GPU, holds the loop to the same numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ode_adjoint
from _adjoint_problems import DTYPE, GRADIENTS, TimeMLP

_READS = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default)


class HostReads(TorchDispatchMode):
    """Counts the operators that hand a tensor's value to Python while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _READS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _counted_solve(gradient: str, **solve_kwargs: Any) -> tuple[ode_adjoint.Solution, int, int]:
    """A solve and its backward: ``(solution, forward reads, backward reads)``."""
    func = TimeMLP(dtype=DTYPE)
    y0 = torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=DTYPE)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
    with HostReads() as forward:
        solution = ode_adjoint.solve(func, y0, t, gradient=gradient, **solve_kwargs)
    with HostReads() as backward:
        solution.ys.square().sum().backward()
    return solution, forward.count, backward.count


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_fixed_steps_read_nothing_per_step(gradient: str) -> None:
    coarse, coarse_reads, coarse_backward = _counted_solve(gradient, method="rk4", options={"step_size": 0.1})
    fine, fine_reads, fine_backward = _counted_solve(gradient, method="rk4", options={"step_size": 0.01})
    assert fine.stats.n_steps >= 10 * coarse.stats.n_steps - 5
    counts = f"reads {coarse_reads}/{fine_reads}, backward {coarse_backward}/{fine_backward}"
    assert fine_reads == coarse_reads <= 4, counts
    assert fine_backward == coarse_backward, counts


@pytest.mark.parametrize(("method", "per_step"), [("dopri5", 1), ("tsit5", 1), ("dopri8", 2)])
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_adaptive_steps_read_their_error_once(method: str, per_step: int, gradient: str) -> None:
    """The slope between a loose and a tight solve, so the per-solve reads drop out."""
    loose, loose_reads, _ = _counted_solve(gradient, method=method, rtol=1e-4, atol=1e-6)
    tight, tight_reads, _ = _counted_solve(gradient, method=method, rtol=1e-8, atol=1e-10)
    extra_steps = tight.stats.n_steps - loose.stats.n_steps
    assert extra_steps >= 5
    counts = f"steps {loose.stats.n_steps}/{tight.stats.n_steps}, reads {loose_reads}/{tight_reads}"
    assert tight_reads - loose_reads == per_step * extra_steps, counts
    assert loose_reads <= per_step * loose.stats.n_steps + 6, counts


@pytest.mark.parametrize(("method", "per_step"), [("dopri5", 1), ("dopri8", 2)])
def test_adjoint_backward_reads_its_error_once_per_step(method: str, per_step: int) -> None:
    settings = {"method": method, "rtol": 1e-6, "atol": 1e-8}
    loose, _, loose_backward = _counted_solve("adjoint", **settings, adjoint_rtol=1e-4, adjoint_atol=1e-6)
    tight, _, tight_backward = _counted_solve("adjoint", **settings, adjoint_rtol=1e-8, adjoint_atol=1e-10)
    extra_steps = tight.stats.backward_steps - loose.stats.backward_steps
    assert extra_steps >= 5
    counts = f"backward steps {loose.stats.backward_steps}/{tight.stats.backward_steps}, "
    counts += f"reads {loose_backward}/{tight_backward}"
    assert tight_backward - loose_backward == per_step * extra_steps, counts


def test_checkpoint_replay_reads_nothing() -> None:
    """Replaying recorded steps takes no decision."""
    solution, _, backward = _counted_solve("checkpoint", method="dopri5", rtol=1e-8, atol=1e-10)
    assert solution.stats.backward_steps > 10
    assert backward == 0
