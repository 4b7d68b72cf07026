"""ode-adjoint's gradient engines: forward and backward time, evaluations, and memory against the number of steps.

:class:`Engines` runs the small MLP of ``bench_adjoint_vs_peers.py``
(2-50-2, tanh, batch 16, outputs at ``linspace(0, 10, 11)``, dopri5,
``rtol = 1e-6``, ``atol = 1e-8``, float32, CPU, one thread), where the
solver's own overhead is most of the cost. :class:`Memory` and
:class:`CudaMemory` follow ``bench_memory.py``: a 32,768-float state, rk4
with 10, 100 and 1,000 fixed steps, one forward and one backward; backprop
keeps every step's graph (memory grows with the steps), the adjoint keeps
only the outputs (flat).

asv runs each parameter combination in a fresh process, so ``peakmem_``
(the process's peak resident set, torch's own ~0.3 GiB included) shows the
growth; ``track_rss_increment`` reads the increment alone (the peak over the
level right before the solve), which is what to compare across engines.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import ode_adjoint
import torch

from ._common import current_rss_kib, fix_mmap_threshold, peak_rss_kib, reset_peak_rss
from ._fields import MEMORY_WIDTH, MemoryField, MLPField

torch.set_num_threads(1)

ENGINES = ["backprop", "adjoint", "checkpoint"]
MLP_RTOL, MLP_ATOL = 1e-6, 1e-8
BACKWARD_REPEATS = 5

MEMORY_ENGINES = {
    "backprop": ("backprop", None),
    "checkpoint": ("checkpoint", None),
    "checkpoint K=16": ("checkpoint", 16),
    "adjoint": ("adjoint", None),
}
MEMORY_STEPS = [10, 100, 1000]
MEMORY_STATE_SIZE = 2**15


class Engines:
    """Forward, forward + backward and backward alone of ``loss = sum(y**2)`` over every output, per engine."""

    params = (ENGINES,)
    param_names = ("gradient",)

    def setup(self, gradient: str) -> None:
        torch.manual_seed(0)
        self.func = MLPField()
        self.y0 = torch.randn(16, 2)
        self.t = torch.linspace(0.0, 10.0, 11)
        self.gradient = gradient
        # Warm-up: the first solve of a process pays for autograd's and the tableau's first use (x10 here),
        # which asv --quick, running each benchmark once, would otherwise report as the cost.
        self._forward_backward()

    def _forward(self) -> ode_adjoint.Solution:
        return ode_adjoint.solve(
            self.func, self.y0, self.t, rtol=MLP_RTOL, atol=MLP_ATOL, method="dopri5", gradient=self.gradient
        )

    def _forward_backward(self) -> ode_adjoint.Solution:
        self.func.zero_grad(set_to_none=True)
        solution = self._forward()
        solution.ys.pow(2).sum().backward()
        return solution

    def time_forward(self, gradient: str) -> None:
        """The forward solve with autograd on: what the engine records for its backward is part of the cost."""
        self._forward()

    def time_forward_backward(self, gradient: str) -> None:
        self._forward_backward()

    def track_backward_time(self, gradient: str) -> float:
        """``backward()`` alone, after an untimed forward: the best of 5, in seconds."""
        best = float("inf")
        for _ in range(BACKWARD_REPEATS):
            self.func.zero_grad(set_to_none=True)
            loss = self._forward().ys.pow(2).sum()
            start = time.perf_counter()
            loss.backward()
            best = min(best, time.perf_counter() - start)
        return best

    track_backward_time.unit = "seconds"  # type: ignore[attr-defined]

    def track_nfev(self, gradient: str) -> int:
        """Evaluations of ``f`` in the forward solve."""
        return int(self._forward_backward().stats.nfev)

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_backward_nfev(self, gradient: str) -> int:
        """Evaluations of ``f`` in the backward pass: the adjoint solve's, the checkpoint replay's, 0 for backprop."""
        backward = self._forward_backward().backward_stats
        return 0 if backward is None else int(backward.nfev)

    track_backward_nfev.unit = "evaluations"  # type: ignore[attr-defined]


def _memory_case(engine: str, steps: int, device: torch.device) -> tuple[Any, Any]:
    """A warmed-up ``forward_backward(y0)`` for the engine and step count, and the state ``y0`` it runs on."""
    gradient, checkpoints = MEMORY_ENGINES[engine]
    options: dict[str, Any] = {"step_size": 1.0 / steps}
    if checkpoints is not None:
        options["checkpoints"] = checkpoints
    torch.manual_seed(0)
    func = MemoryField().to(device)

    def forward_backward(y0: torch.Tensor) -> ode_adjoint.Solution:
        solution = ode_adjoint.solve(func, y0, [0.0, 1.0], method="rk4", options=options, gradient=gradient)
        solution.ys[-1].square().sum().backward()
        return solution

    # Warm-up on a tiny state: autograd's and the engine's first-call allocations are not the engine's memory.
    warm_up_options = {**options, "step_size": 1.0 / 3}
    small = torch.randn(4 * MEMORY_WIDTH, device=device, requires_grad=True)
    solution = ode_adjoint.solve(func, small, [0.0, 1.0], method="rk4", options=warm_up_options, gradient=gradient)
    solution.ys[-1].square().sum().backward()
    y0 = torch.randn(MEMORY_STATE_SIZE, device=device, requires_grad=True)
    return forward_backward, y0


class Memory:
    """Peak memory of one forward + backward on the CPU, per engine and number of rk4 steps."""

    params = (list(MEMORY_ENGINES), MEMORY_STEPS)
    param_names = ("gradient", "steps")
    timeout = 300.0

    def setup(self, engine: str, steps: int) -> None:
        # As bench_memory.py's MALLOC_MMAP_THRESHOLD_: tensors of 64 KiB or more get their own mappings,
        # returned on free, so the resident set follows the live tensors rather than heap fragmentation.
        fix_mmap_threshold()
        self.forward_backward, self.y0 = _memory_case(engine, steps, torch.device("cpu"))
        self.steps = steps
        gc.collect()

    def peakmem_forward_backward(self, engine: str, steps: int) -> None:
        stats = self.forward_backward(self.y0).stats
        if stats.n_steps != steps:
            raise RuntimeError(f"{engine} took {stats.n_steps} steps, expected {steps}")

    def track_rss_increment(self, engine: str, steps: int) -> float:
        """Peak resident set during the solve minus the resident set right before it, in MiB."""
        reset_peak_rss()
        before = current_rss_kib()
        if before is None:  # no /proc: the increment over the process's peak so far
            before = peak_rss_kib()
        self.forward_backward(self.y0)
        return (peak_rss_kib() - before) / 1024

    track_rss_increment.unit = "MiB"  # type: ignore[attr-defined]


class CudaMemory:
    """``torch.cuda.max_memory_allocated`` increment of one forward + backward (skipped without CUDA)."""

    params = (list(MEMORY_ENGINES), MEMORY_STEPS)
    param_names = ("gradient", "steps")
    timeout = 300.0

    def setup(self, engine: str, steps: int) -> None:
        if not torch.cuda.is_available():
            raise NotImplementedError("CUDA is not available")
        self.device = torch.device("cuda")
        self.forward_backward, self.y0 = _memory_case(engine, steps, self.device)

    def track_max_allocated_increment(self, engine: str, steps: int) -> float:
        """Allocated tensor memory at its peak minus before the solve, in MiB (the caching allocator's view)."""
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        before = torch.cuda.memory_allocated(self.device)
        self.forward_backward(self.y0)
        torch.cuda.synchronize(self.device)
        return (torch.cuda.max_memory_allocated(self.device) - before) / 2**20

    track_max_allocated_increment.unit = "MiB"  # type: ignore[attr-defined]
