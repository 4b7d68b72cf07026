"""The three gradient engines.

* backprop: autograd records every operation of the forward loop; exact
  gradient of the discrete solution; memory grows with the steps.
* adjoint: the continuous adjoint of Chen et al. (2018): the forward solve
  keeps no graph; backward integrates ``[z, a_z, a_theta]`` from each output
  time to the previous one, with vector-Jacobian products from autograd.
  Memory is independent of the number of steps.
* checkpoint: the forward solve keeps each accepted step's ``(t, h, y)``;
  backward replays one step at a time with autograd and chains the
  vector-Jacobian products in reverse: backprop's gradient, to round-off,
  with a state per step instead of a graph per step. With a budget of ``K``
  checkpoints only ``K`` states are kept and the rest recomputed on a
  binomial (revolve) schedule.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ode_core
import torch
from ode_core import Status

from ._loop import FlatFunc, LoopResult, StepRecord, integrate, replay_step
from ._revolve import revolve_schedule

if TYPE_CHECKING:
    from ._odeint import GradientStats, SolveConfig

__all__ = ["adjoint_solve", "backprop_solve", "checkpoint_solve"]


def _run(
    func: FlatFunc,
    y0: torch.Tensor,
    times: Sequence[float],
    config: SolveConfig,
    *,
    norm: Callable[[torch.Tensor], float] | None = None,
    record_steps: bool = False,
    record_states: bool = True,
    first_step: float | None = None,
) -> LoopResult:
    """Forward integration: the torch loop for explicit methods, ode-core's
    generic ``solve`` (on tensors) for implicit ones."""
    norm = norm if norm is not None else config.norm
    if config.tableau.explicit:
        return integrate(
            func,
            y0,
            times,
            config.tableau,
            rtol=config.rtol,
            atol=config.atol,
            step_size=config.step_size,
            first_step=config.first_step if first_step is None else first_step,
            max_step=config.max_step,
            max_steps=config.max_steps,
            controller=config.controller,
            norm=norm,
            step_t=config.step_t,
            jump_t=config.jump_t,
            record_steps=record_steps,
            record_states=record_states,
        )
    # Error and Newton norms decide, they are not differentiated: measure
    # detached values (reading a scalar off a graph would warn).
    measure = norm if norm is not None else _rms

    def detached_norm(scaled: torch.Tensor) -> float:
        return measure(scaled.detach())

    solution = ode_core.solve(
        func,
        y0,
        list(times),
        method=config.tableau,
        rtol=config.rtol,
        atol=config.atol,
        step_size=config.step_size,
        first_step=config.first_step,
        max_step=config.max_step,
        max_steps=config.max_steps,
        controller=config.controller,
        norm=detached_norm,
        jac=_autograd_jacobian(func),
        step_t=config.step_t or None,
        jump_t=config.jump_t or None,
        dense_output=False,
    )
    stats = solution.stats
    return LoopResult(
        ys=list(solution.ys.unbind(0)),
        n_outputs=solution.ys.shape[0],
        status=solution.status,
        message=solution.message,
        nfev=stats.nfev,
        n_steps=stats.n_steps,
        n_accepted=stats.n_accepted,
        n_rejected=stats.n_rejected,
        t_final=solution.t_final,
        y_final=solution.y_final,
    )


def _autograd_jacobian(func: FlatFunc) -> Callable[[float, torch.Tensor], torch.Tensor]:
    """``df/dy`` (n, n) by autograd, for the implicit methods' Newton iteration.

    It is an aid to convergence, never differentiated itself, so it is taken
    at a detached state and returned without a graph.
    """

    def jacobian(t: float, y: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            matrix: torch.Tensor = torch.autograd.functional.jacobian(  # type: ignore[no-untyped-call]
                lambda z: func(t, z), y.detach(), vectorize=True
            )
        return matrix.detach()

    return jacobian


def _rms(vector: torch.Tensor) -> float:
    return math.sqrt(float(vector @ vector) / vector.shape[0])


def _record_forward(stats: GradientStats, result: LoopResult) -> None:
    stats.nfev = result.nfev
    stats.n_steps = result.n_steps
    stats.n_accepted = result.n_accepted
    stats.n_rejected = result.n_rejected


def backprop_solve(
    func: FlatFunc, y0: torch.Tensor, times: Sequence[float], config: SolveConfig, stats: GradientStats
) -> tuple[torch.Tensor, LoopResult]:
    """Autograd through the forward loop."""
    result = _run(func, y0, times, config)
    _record_forward(stats, result)
    return torch.stack(result.ys), result


@dataclass
class _Problem:
    """What an engine's autograd.Function needs besides tensors."""

    func: FlatFunc
    times: Sequence[float]
    config: SolveConfig
    stats: GradientStats
    parameters: tuple[torch.Tensor, ...]
    result: LoopResult | None = None
    adjoint_config: SolveConfig | None = None
    seminorm: bool = False


def _grads_or_zeros(grads: Sequence[torch.Tensor | None], like: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [torch.zeros_like(ref) if grad is None else grad for grad, ref in zip(grads, like)]


class _Adjoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, problem: _Problem, y0: torch.Tensor, *parameters: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            result = _run(problem.func, y0, problem.times, problem.config)
        problem.result = result
        _record_forward(problem.stats, result)
        ys = torch.stack(result.ys)
        ctx.problem = problem
        ctx.save_for_backward(ys, *parameters)
        return ys

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor) -> tuple[Any, ...]:
        problem: _Problem = ctx.problem
        ys, *parameters = ctx.saved_tensors
        func, times = problem.func, problem.times
        n = ys.shape[1]
        sizes = [p.numel() for p in parameters]
        config = problem.adjoint_config
        assert config is not None  # set by adjoint_solve

        def augmented(t: float, state: torch.Tensor) -> torch.Tensor:
            z = state[:n]
            adjoint = state[n : 2 * n]
            with torch.enable_grad():
                z = z.detach().requires_grad_(True)
                dz = func(t, z)
                # a' = -a df/dz and a_theta' = -a df/dtheta: vector-Jacobian
                # products with -a.
                grads = torch.autograd.grad(dz, (z, *parameters), -adjoint, allow_unused=True)
            pieces = [dz.detach(), *(g.reshape(-1) for g in _grads_or_zeros(grads, (z, *parameters)))]
            return torch.cat(pieces)

        norm = None
        if problem.seminorm:
            # Kidger, Chen & Lyons (2021): the parameter adjoints never feed
            # back into the dynamics, so leave them out of error control. The
            # mean stays over every component, so the seminorm is never above
            # the full RMS norm and never costs more steps.
            controlled = 2 * n

            def norm(scaled: torch.Tensor) -> float:
                part = scaled[:controlled]
                return math.sqrt(float(part @ part) / scaled.shape[0])

        m = ys.shape[0]
        # Each interval starts from the step size the previous one was using
        # (the first from the forward solve's last): the augmented system is
        # as smooth across an output time as within an interval, and
        # Hairer's initial-step guess from zero parameter adjoints is tiny.
        assert problem.result is not None
        first_step: float | None = problem.result.step_proposal if config.first_step is None else config.first_step
        if first_step is None or not math.isfinite(first_step) or config.step_size is not None:
            first_step = None
        adjoint = grad_ys[m - 1].clone()
        parameter_adjoint = torch.zeros(sum(sizes), dtype=ys.dtype, device=ys.device)
        for i in range(m - 1, 0, -1):
            state = torch.cat((ys[i], adjoint, parameter_adjoint))
            with torch.no_grad():
                result = _run(augmented, state, [times[i], times[i - 1]], config, norm=norm, first_step=first_step)
            if math.isfinite(result.step_proposal) and config.first_step is None and config.step_size is None:
                first_step = result.step_proposal
            problem.stats.backward_nfev += result.nfev
            problem.stats.backward_steps += result.n_steps
            if result.status is not Status.SUCCESS:
                raise RuntimeError(f"adjoint backward solve failed: {result.status.value}: {result.message}")
            end = result.y_final
            adjoint = end[n : 2 * n] + grad_ys[i - 1]
            parameter_adjoint = end[2 * n :]
        parameter_grads = list(torch.split(parameter_adjoint, sizes)) if sizes else []
        shaped = [g.reshape(p.shape) for g, p in zip(parameter_grads, parameters)]
        return (None, adjoint, *shaped)


def adjoint_solve(
    func: FlatFunc,
    y0: torch.Tensor,
    times: Sequence[float],
    config: SolveConfig,
    adjoint_config: SolveConfig,
    seminorm: bool,
    parameters: tuple[torch.Tensor, ...],
    stats: GradientStats,
) -> tuple[torch.Tensor, LoopResult]:
    problem = _Problem(func, times, config, stats, parameters, adjoint_config=adjoint_config, seminorm=seminorm)
    ys = _Adjoint.apply(problem, y0, *parameters)
    assert problem.result is not None
    return ys, problem.result


def _outputs_by_step(
    records: Sequence[StepRecord], times: Sequence[float], n_outputs: int
) -> tuple[list[list[int]], list[int | None]]:
    """For each step, the output indices strictly inside it and the index
    of the output at its end (if any), as the forward loop assigned them."""
    interior: list[list[int]] = []
    at_end: list[int | None] = []
    next_output = 1
    for record in records:
        t_end = record.t + record.h
        direction = 1.0 if record.h > 0 else -1.0
        inside = []
        end_index = None
        while next_output < n_outputs and direction * (times[next_output] - t_end) <= 0:
            if times[next_output] == t_end:
                end_index = next_output
            else:
                inside.append(next_output)
            next_output += 1
        interior.append(inside)
        at_end.append(end_index)
    return interior, at_end


class _Checkpoint(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, problem: _Problem, y0: torch.Tensor, *parameters: torch.Tensor) -> torch.Tensor:
        budget = problem.config.checkpoints
        with torch.no_grad():
            # With a budget the forward keeps the step sizes (floats) and y0
            # only; backward rebuilds states on the revolve schedule holding
            # at most `budget` of them.
            result = _run(
                problem.func, y0, problem.times, problem.config, record_steps=True, record_states=budget is None
            )
        problem.result = result
        _record_forward(problem.stats, result)
        records = result.steps
        result.steps = []  # held by ctx from here on, not by the result
        ctx.records = records
        ctx.stored_states = None if budget is not None else [r.y for r in records]
        ctx.problem = problem
        ctx.save_for_backward(*parameters)
        return torch.stack(result.ys)

    @staticmethod
    def backward(ctx: Any, grad_ys: torch.Tensor) -> tuple[Any, ...]:
        problem: _Problem = ctx.problem
        parameters = ctx.saved_tensors
        records: list[StepRecord] = ctx.records
        func, times, tableau = problem.func, problem.times, problem.config.tableau
        assert problem.result is not None
        interior, at_end = _outputs_by_step(records, times, problem.result.n_outputs)
        n_steps = len(records)
        last_end = at_end[n_steps - 1] if n_steps else None
        adjoint = grad_ys[last_end].clone() if last_end is not None else torch.zeros_like(grad_ys[0])
        parameter_grads = [torch.zeros_like(p) for p in parameters]

        def backward_step(k: int, y_start: torch.Tensor) -> None:
            nonlocal adjoint
            with torch.enable_grad():
                y = y_start.detach().requires_grad_(True)
                y_end, outputs, evaluations = replay_step(func, tableau, records[k], y, [times[i] for i in interior[k]])
                problem.stats.backward_nfev += evaluations
                problem.stats.backward_steps += 1
                roots = [y_end, *outputs]
                cotangents = [adjoint, *(grad_ys[i] for i in interior[k])]
                grads = torch.autograd.grad(roots, (y, *parameters), cotangents, allow_unused=True)
            adjoint = _grads_or_zeros(grads[:1], (y,))[0]
            for index, grad in enumerate(grads[1:]):
                if grad is not None:
                    parameter_grads[index] += grad
            end_output = at_end[k - 1] if k > 0 else None
            if end_output is not None:
                adjoint = adjoint + grad_ys[end_output]

        if ctx.stored_states is not None:
            for k in range(n_steps - 1, -1, -1):
                backward_step(k, ctx.stored_states[k])
        else:
            budget = problem.config.checkpoints
            assert budget is not None

            def advance(k: int, y: torch.Tensor) -> torch.Tensor:
                with torch.no_grad():
                    y_next, _, evaluations = replay_step(func, tableau, records[k], y, [])
                problem.stats.backward_nfev += evaluations
                return y_next

            revolve_schedule(n_steps, budget, records[0].y, advance, backward_step)
        adjoint = adjoint + grad_ys[0]
        return (None, adjoint, *parameter_grads)


def checkpoint_solve(
    func: FlatFunc,
    y0: torch.Tensor,
    times: Sequence[float],
    config: SolveConfig,
    parameters: tuple[torch.Tensor, ...],
    stats: GradientStats,
) -> tuple[torch.Tensor, LoopResult]:
    problem = _Problem(func, times, config, stats, parameters)
    ys = _Checkpoint.apply(problem, y0, *parameters)
    assert problem.result is not None
    return ys, problem.result
