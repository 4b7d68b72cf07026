"""Host-device synchronisations of the loop, on a GPU and, by proxy, on the CPU.

On CUDA every read of a tensor's value by Python (``float(t)``, ``bool(t)``,
``t.item()``, a copy to the host) makes the host wait for the GPU, so the
loop reads only where it must decide something: one error ratio per
attempted adaptive step (two norms for dopri8), nothing per fixed step, as
``_loop.py`` documents. On CUDA the tests count the synchronisations with
torch's sync debug mode; on the CPU they count the same reads of values
(``aten._local_scalar_dense``, which every such read goes through), so that
CI, which has no GPU, holds the loop to the same numbers. The counts per
step are slopes between a loose and a tight solve, so the few reads each
solve makes once (input checks, the first step's size) drop out.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import ode_adjoint
import pytest
import torch
from _adjoint_problems import DTYPE, GRADIENTS, TimeMLP
from torch.utils._python_dispatch import TorchDispatchMode

_READS = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.is_nonzero.default)


class _HostReads(TorchDispatchMode):
    """Counts the operators that hand a tensor's value to Python while active."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in _READS:
            self.count += 1
        return func(*args, **(kwargs or {}))


def _host_reads(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and how many times it read a tensor's value on the host."""
    with _HostReads() as reads:
        result = call()
    return result, reads.count


def _synchronisations(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and how many times it made the host wait for the GPU.

    torch's sync debug mode warns at every synchronising call (``.item()``,
    ``float``/``bool`` of a tensor, device-to-host copies).
    """
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = call()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return result, sum("synchroniz" in str(w.message) for w in caught)


def _counted_solve(device: str, gradient: str, **solve_kwargs: Any) -> tuple[ode_adjoint.Solution, int, int]:
    """A solve and its backward: ``(solution, forward count, backward count)``."""
    count = _synchronisations if device == "cuda" else _host_reads
    func = TimeMLP(dtype=DTYPE).to(device)
    y0 = torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=DTYPE, device=device)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64, device=device)
    solution, forward = count(lambda: ode_adjoint.solve(func, y0, t, gradient=gradient, **solve_kwargs))
    _, backward = count(solution.ys.square().sum().backward)
    return solution, forward, backward


@pytest.mark.parametrize("gradient", GRADIENTS)
def test_fixed_steps_synchronise_a_fixed_number_of_times(device: str, gradient: str) -> None:
    """Ten times the steps, the same count: none of them is per step."""
    _counted_solve(device, gradient, method="rk4", options={"step_size": 0.1})  # warm-up (CUDA's lazy set-up)
    coarse, coarse_count, coarse_backward = _counted_solve(device, gradient, method="rk4", options={"step_size": 0.1})
    fine, fine_count, fine_backward = _counted_solve(device, gradient, method="rk4", options={"step_size": 0.01})
    assert fine.stats.n_steps >= 10 * coarse.stats.n_steps - 5
    counts = f"forward {coarse_count}/{fine_count}, backward {coarse_backward}/{fine_backward}"
    assert fine_count == coarse_count <= 4, counts
    assert fine_backward == coarse_backward, counts  # the adjoint's backward steps are fixed too


@pytest.mark.parametrize(("method", "per_step"), [("dopri5", 1), ("tsit5", 1), ("dopri8", 2), ("dopri87", 1)])
@pytest.mark.parametrize("gradient", GRADIENTS)
def test_adaptive_steps_synchronise_as_documented(device: str, method: str, per_step: int, gradient: str) -> None:
    """One per attempted step (two for dopri8's two-norm estimate)."""
    settings = {"method": method, "rtol": 1e-4, "atol": 1e-6}
    _counted_solve(device, gradient, **settings)  # warm-up
    loose, loose_count, _ = _counted_solve(device, gradient, **settings)
    tight, tight_count, _ = _counted_solve(device, gradient, method=method, rtol=1e-8, atol=1e-10)
    extra_steps = tight.stats.n_steps - loose.stats.n_steps
    assert extra_steps >= 5
    counts = f"steps {loose.stats.n_steps}/{tight.stats.n_steps}, count {loose_count}/{tight_count}"
    assert tight_count - loose_count == per_step * extra_steps, counts
    assert loose_count <= per_step * loose.stats.n_steps + 6, counts


@pytest.mark.parametrize(("method", "per_step"), [("dopri5", 1), ("dopri8", 2)])
def test_adjoint_backward_synchronises_once_per_step(device: str, method: str, per_step: int) -> None:
    settings = {"method": method, "rtol": 1e-6, "atol": 1e-8}
    _counted_solve(device, "adjoint", **settings)  # warm-up
    loose, _, loose_backward = _counted_solve(device, "adjoint", **settings, adjoint_rtol=1e-4, adjoint_atol=1e-6)
    tight, _, tight_backward = _counted_solve(device, "adjoint", **settings, adjoint_rtol=1e-8, adjoint_atol=1e-10)
    extra_steps = tight.backward_stats.n_steps - loose.backward_stats.n_steps
    assert extra_steps >= 5
    counts = f"backward steps {loose.backward_stats.n_steps}/{tight.backward_stats.n_steps}, "
    counts += f"count {loose_backward}/{tight_backward}"
    assert tight_backward - loose_backward == per_step * extra_steps, counts


def test_checkpoint_replay_synchronises_nowhere(device: str) -> None:
    """Replaying recorded steps takes no decision."""
    solution, _, backward = _counted_solve(device, "checkpoint", method="dopri5", rtol=1e-8, atol=1e-10)
    assert solution.backward_stats is not None and solution.backward_stats.n_steps > 10
    assert backward == 0


def _per_sample_counted(device: str, **settings: Any) -> tuple[ode_adjoint.Solution, int, int]:
    """A per-sample solve of samples with different rates, and its backward: ``(solution, forward, backward)``."""
    count = _synchronisations if device == "cuda" else _host_reads
    rates = torch.linspace(0.5, 6.0, 8, dtype=DTYPE, device=device)
    weight = torch.tensor(0.3, dtype=DTYPE, device=device, requires_grad=True)

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return -rates[:, None] * y + weight * torch.sin(rates[:, None] * t[:, None])

    y0 = torch.ones(8, 3, dtype=DTYPE, device=device)
    t = torch.linspace(0.0, 3.0, 4, dtype=torch.float64, device=device)
    solution, forward = count(lambda: ode_adjoint.solve(field, y0, t, batch_dims=1, **settings))
    _, backward = count(solution.ys.square().sum().backward)
    return solution, forward, backward


def test_per_sample_steps_read_nothing_between_synchronisations(device: str) -> None:
    """The host reads once every ``sync_every`` steps (is every sample done?) and nowhere else in the loop."""
    settings = {"rtol": 1e-8, "atol": 1e-10}
    _per_sample_counted(device, **settings)  # warm-up
    # One block longer than the solve (its last steps are wasted: every sample is done).
    solution, once, _ = _per_sample_counted(device, sync_every=256, **settings)
    iterations = int(solution.stats.n_steps.max())
    assert 30 < iterations < 256 and int(solution.stats.n_steps.min()) < iterations  # samples of their own pace
    for sync_every in (1, 16):
        _, count, backward = _per_sample_counted(device, sync_every=sync_every, **settings)
        blocks = -(-iterations // sync_every)
        assert count - once == blocks - 1, (sync_every, iterations, count, once)
        assert backward == 0
    assert once <= 4, once  # the reads of a whole solve: one block, the statuses at the end


def test_per_sample_fixed_steps_read_a_fixed_number_of_times(device: str) -> None:
    """The number of fixed steps is known beforehand: no read depends on it."""
    _, coarse, _ = _per_sample_counted(device, method="rk4", options={"step_size": 0.1})
    fine, fine_count, backward = _per_sample_counted(device, method="rk4", options={"step_size": 0.01})
    assert int(fine.stats.n_steps.max()) == 300
    assert fine_count == coarse <= 4 and backward == 0


@pytest.mark.slow
def test_device_control_reads_once_a_block(device: str) -> None:
    """The joint solve with its decisions on the device: one read every sync_every steps, none in between."""
    count = _synchronisations if device == "cuda" else _host_reads
    func = TimeMLP(dtype=DTYPE).to(device)
    y0 = torch.tensor([[0.6, -0.4], [0.1, 0.9], [-1.2, 0.3]], dtype=DTYPE, device=device)
    t = torch.linspace(0.0, 2.0, 5, dtype=torch.float64, device=device)
    settings = {"rtol": 1e-9, "atol": 1e-11, "device_control": True}
    solution, once = count(lambda: ode_adjoint.solve(func, y0, t, sync_every=512, **settings))
    assert 20 < solution.stats.n_steps < 512
    _, every_four = count(lambda: ode_adjoint.solve(func, y0, t, sync_every=4, **settings))
    assert every_four - once == -(-solution.stats.n_steps // 4) - 1


@pytest.mark.slow
def test_per_sample_adjoint_backward_reads_once_a_block(device: str) -> None:
    """The per-sample adjoint's backward solves read once every sync_every steps of each interval, no more."""
    _per_sample_counted(device, gradient="adjoint")  # warm-up
    solution, _, often = _per_sample_counted(device, gradient="adjoint", sync_every=1, rtol=1e-8, atol=1e-10)
    _, _, rarely = _per_sample_counted(device, gradient="adjoint", sync_every=64, rtol=1e-8, atol=1e-10)
    stats = solution.backward_stats
    assert stats is not None and int(stats.n_steps.max()) > 20
    intervals = 3  # four output times
    assert rarely <= 3 * intervals, rarely  # one block an interval, its statuses, the last output's
    assert often - rarely >= int(stats.n_steps.max()) - intervals * 2, (often, rarely)
