"""ode-adjoint's per-sample mode: torchdiffeq's arguments, gradients as if each sample were alone, compile."""

from __future__ import annotations

import functools
import math
from typing import Any

import ode_adjoint
import pytest
import torch
from _adjoint_problems import TimeMLP
from ode_core import Status

B = 6


class SampleField(torch.nn.Module):
    """An MLP field with one rate per sample: the samples are different ODEs."""

    def __init__(self, dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.hidden = torch.nn.Linear(3, 16, dtype=dtype)
        self.output = torch.nn.Linear(16, 2, dtype=dtype)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype) * 0.7)
        self.register_buffer("rates", torch.linspace(0.3, 4.0, B, dtype=dtype))
        self.seen: list[tuple[torch.Size, torch.dtype]] = []

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.rates[:, None] * self.output(torch.tanh(self.hidden(torch.cat((y, t[:, None]), dim=1))))

    def one(self, b: int) -> Any:
        def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.rates[b] * self.output(torch.tanh(self.hidden(torch.cat((y, t.reshape(1, 1)), dim=1))))

        return field


def _y0(dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, 2 * B, dtype=dtype).reshape(B, 2).requires_grad_()


T = torch.linspace(0.0, 2.0, 5, dtype=torch.float64)
SETTINGS: dict[str, Any] = {"rtol": 1e-7, "atol": 1e-9}


def test_func_sees_one_time_per_sample_in_the_state_dtype() -> None:
    seen = []

    def func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.append((tuple(t.shape), t.dtype, tuple(y.shape)))
        return -y

    y0 = torch.ones(2, 3, 4, dtype=torch.float32)
    solution = ode_adjoint.solve(func, y0, [0.0, 1.0], batch_dims=2)
    assert set(seen) == {((2, 3), torch.float32, (2, 3, 4))}
    assert solution.ys.shape == (2, 2, 3, 4) and solution.ys.dtype == torch.float32
    assert solution.stats.n_steps.shape == (2, 3) and solution.t_final.shape == (2, 3)
    torch.testing.assert_close(solution.ys[-1], torch.full_like(y0, 0.36787944117), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("gradient", ["checkpoint", "adjoint"])
def test_backward_statistics_count_every_evaluation(gradient: str) -> None:
    """One sample: the backward pass's ``nfev`` is the number of calls of f it made (the checkpoint's
    replay, the adjoint's backward solves with their quadrature's extra evaluation a step)."""
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2).double()
    calls = []

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return torch.tanh(net(y))

    y0 = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    # The adjoint's backward solves step in blocks of sync_every; steps after the sample's end (no sample's
    # own) are not counted, so one a block. The checkpoint's replay skips the forward's such steps itself.
    solution = ode_adjoint.solve(
        field,
        y0,
        torch.linspace(0.0, 1.0, 5, dtype=torch.float64),
        batch_dims=1,
        gradient=gradient,
        adjoint_params=tuple(net.parameters()),
        sync_every=1 if gradient == "adjoint" else 8,
    )
    if gradient == "checkpoint":  # 5 steps: the forward's block of 8 took 3 more, which no sample needed
        assert int(solution.stats.n_steps[0]) == 5 and len(calls) > int(solution.stats.nfev[0]) + 6
    calls.clear()
    solution.ys.square().sum().backward()
    assert solution.backward_stats is not None
    assert int(solution.backward_stats.nfev[0]) == len(calls)


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
@pytest.mark.parametrize("method", ["dopri5", "tsit5", "bosh3", "rk4"])
def test_gradients_as_if_each_sample_were_alone(method: str, gradient: str) -> None:
    field = SampleField()
    settings = dict(SETTINGS, method=method, options={"step_size": 0.05} if method == "rk4" else None)
    y0 = _y0()
    solution = ode_adjoint.solve(field, y0, T, batch_dims=1, gradient=gradient, **settings)
    assert solution.status is Status.SUCCESS
    (solution.ys.square().sum() + solution.ys[-1, :, 0].sum() + solution.y_final[:, 1].sum()).backward()
    if gradient == "checkpoint":
        assert torch.equal(solution.backward_stats.n_steps, solution.stats.n_steps)
    batch_grads = [y0.grad.clone(), *(p.grad.clone() for p in field.parameters())]
    y0.grad = None
    field.zero_grad()
    total = torch.zeros((), dtype=torch.float64)
    for b in range(B):
        alone = ode_adjoint.solve(field.one(b), y0[b : b + 1], T, **settings)
        assert alone.stats.nfev == int(solution.stats.nfev[b])
        total = total + alone.ys.square().sum() + alone.ys[-1, 0, 0] + alone.y_final[0, 1]
    total.backward()
    alone_grads = [y0.grad, *(p.grad for p in field.parameters())]
    for batch_grad, alone_grad in zip(batch_grads, alone_grads, strict=True):
        torch.testing.assert_close(batch_grad, alone_grad, rtol=1e-10, atol=1e-12)


def test_odeint_takes_the_mode_and_per_sample_times() -> None:
    field = SampleField()
    times = torch.stack([torch.linspace(0.0, 1.0 + 0.3 * b, 4, dtype=torch.float64) for b in range(B)])
    with torch.no_grad():
        ys = ode_adjoint.odeint(field, _y0(), times, batch_dims=1, **SETTINGS)
        assert ys.shape == (4, B, 2)
        for b in (0, B - 1):
            alone = ode_adjoint.odeint(field.one(b), _y0()[b : b + 1], times[b], **SETTINGS)
            torch.testing.assert_close(ys[:, b], alone[:, 0], rtol=1e-10, atol=1e-12)


def test_failures_raise_or_return_per_sample() -> None:
    def func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack((y[0] ** 2, -y[1]))

    y0 = torch.ones(2, 1, dtype=torch.float64)
    with pytest.raises(ode_adjoint.SolverError, match="1 of 2 samples failed; the first, sample 0"):
        ode_adjoint.solve(func, y0, [0.0, 2.0], batch_dims=1)
    solution = ode_adjoint.solve(func, y0, [0.0, 2.0], batch_dims=1, on_failure="return")
    assert solution.sample_status == (Status.STEP_SIZE_UNDERFLOW, Status.SUCCESS)
    assert abs(float(solution.ys[-1, 1, 0]) - 0.1353352832) < 1e-6


@pytest.mark.parametrize(
    ("arguments", "error", "match"),
    [
        ({"gradient": ode_adjoint.Adjoint(norm=lambda s: s.abs().max())}, ValueError, "keeps the parameter adjoint"),
        ({"gradient": ode_adjoint.Checkpoint(budget=3)}, ValueError, "keeps every step's state; got a budget of 3"),
        ({"method": "implicit_euler"}, ValueError, "method: 'backward_euler' is implicit"),
        ({"dense_output": True}, ValueError, "dense_output: not available"),
        ({"options": {"grid_constructor": lambda f, y, t: t}}, ValueError, "grid_constructor"),
        ({"options": {"perturb": True}, "method": "euler"}, ValueError, "one_sided_steps"),
        ({"batch_dims": 3}, ValueError, "batch_dims: expected 0 to 2"),
        ({"compile": "yes"}, TypeError, "compile: expected True, False or a callable"),
    ],
)
def test_what_the_mode_refuses(arguments: dict[str, Any], error: type[Exception], match: str) -> None:
    settings = {"batch_dims": 1, **arguments}
    with pytest.raises(error, match=match):
        ode_adjoint.solve(SampleField(), _y0(), T, **settings)


def test_refused_inputs_of_the_mode() -> None:
    with pytest.raises(TypeError, match="y0: the per-sample mode takes a tensor or a tuple of tensors"):
        ode_adjoint.solve(lambda t, y: y, [[1.0], [2.0]], T, batch_dims=1)
    with pytest.raises(ValueError, match=r"y0\[1\]: expected the batch dimensions \(2,\) first"):
        ode_adjoint.solve(lambda t, y: y, (torch.ones(2, 1), torch.ones(3, 1)), T, batch_dims=1)
    with pytest.raises(ValueError, match="t: gradients with respect to the output times need batch_dims"):
        ode_adjoint.solve(SampleField(), _y0(), T.clone().requires_grad_(), device_control=True)
    with pytest.raises(ValueError, match="compile: compiles the per-sample mode's step; give batch_dims"):
        ode_adjoint.solve(SampleField(), _y0(), T, compile=True)


def test_the_compiled_step_has_no_graph_break() -> None:
    """``fullgraph=True`` raises at the first graph break; dynamo's own backend keeps the test fast."""
    torch._dynamo.reset()
    field = SampleField()
    compiled = functools.partial(torch.compile, fullgraph=True, backend="eager")
    with torch.no_grad():
        eager = ode_adjoint.solve(field, _y0(), T, batch_dims=1, **SETTINGS)
        traced = ode_adjoint.solve(field, _y0(), T, batch_dims=1, compile=compiled, **SETTINGS)
        again = ode_adjoint.solve(field, _y0(), T, batch_dims=1, compile=compiled, **SETTINGS)
    assert torch.equal(traced.ys, eager.ys) and torch.equal(again.stats.nfev, eager.stats.nfev)


@pytest.mark.slow
# dynamo reads .grad of the non-leaf state while it traces (its warning, not ours)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_compiled_by_inductor_solves_and_differentiates_as_eager() -> None:
    torch._dynamo.reset()
    field = SampleField()
    results = []
    for compile_step in (False, True):
        y0 = _y0()
        solution = ode_adjoint.solve(field, y0, T, batch_dims=1, compile=compile_step, **SETTINGS)
        solution.ys.square().sum().backward()
        results.append((solution.ys.detach(), solution.stats.nfev, y0.grad, field.hidden.weight.grad.clone()))
        field.zero_grad()
    (ys, nfev, grad, weight), (ys_c, nfev_c, grad_c, weight_c) = results
    assert torch.equal(nfev, nfev_c)
    torch.testing.assert_close(ys_c, ys, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad_c, grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(weight_c, weight, rtol=1e-10, atol=1e-12)


@pytest.mark.cuda
def test_per_sample_on_cuda_matches_the_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    field = SampleField()
    with torch.no_grad():
        cpu = ode_adjoint.solve(field, _y0(), T, batch_dims=1, **SETTINGS)
        gpu = ode_adjoint.solve(field.cuda(), _y0().cuda(), T.cuda(), batch_dims=1, **SETTINGS)
    assert torch.equal(gpu.stats.nfev.cpu(), cpu.stats.nfev)
    torch.testing.assert_close(gpu.ys.cpu(), cpu.ys, rtol=1e-9, atol=1e-11)


@pytest.mark.cuda
def test_a_block_of_steps_replays_as_one_cuda_graph() -> None:
    """Eight steps captured in one CUDA graph and replayed until every sample is done: the solve's own steps."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    import numpy as np
    import ode_core
    from ode_adjoint._namespace import TORCH

    field = SampleField().cuda()
    y0 = _y0().detach().cuda()
    settings = ode_core.validation.check_settings("dopri5", 1e-7, 1e-9, xp=TORCH, y0=y0[0])
    times = np.broadcast_to(T.numpy(), (B, len(T)))
    block = 8

    def steps(run: ode_core.PerSampleRun, carry: Any) -> Any:
        for _ in range(block):
            carry = ode_core.per_sample_step(run.problem, carry)
        return carry

    with torch.no_grad():
        expected = ode_core.integrate_per_sample(field, y0, times, settings, sync_every=block, namespace=TORCH)
        run = ode_core.PerSampleRun(field, y0, times, settings, namespace=TORCH)
        inputs = run.carry
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            steps(run, inputs)  # warm-up, as CUDA graph capture asks
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = steps(run, inputs)
        leaves_in = [x for x in torch.utils._pytree.tree_leaves(inputs) if isinstance(x, torch.Tensor)]
        leaves_out = [x for x in torch.utils._pytree.tree_leaves(outputs) if isinstance(x, torch.Tensor)]
        replays = 0
        while run.running():
            graph.replay()
            for into, value in zip(leaves_in, leaves_out, strict=True):
                into.copy_(value)
            replays += 1
        captured = run.solution()
    assert replays == -(-int(expected.stats.n_steps.max()) // block)
    assert torch.equal(captured.stats.nfev, expected.stats.nfev)
    torch.testing.assert_close(captured.ys, expected.ys, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("method", ["dopri5", "tsit5", "rk4"])
def test_device_control_is_the_joint_solve(method: str) -> None:
    """A joint solve with its decisions on the device: the same steps, values and gradients."""
    field = TimeMLP(dtype=torch.float64)
    settings = dict(SETTINGS, method=method, options={"step_size": 0.1} if method == "rk4" else None)
    solutions, grads = [], []
    for device_control in (False, True):
        y0 = _y0()
        solution = ode_adjoint.solve(field, y0, T, device_control=device_control, **settings)
        solution.ys.square().sum().backward()
        solutions.append(solution)
        grads.append((y0.grad, *(p.grad.clone() for p in field.parameters())))
        field.zero_grad()
    host, device = solutions
    assert device.stats == host.stats and device.status is Status.SUCCESS and device.t_final == host.t_final
    torch.testing.assert_close(device.ys, host.ys, rtol=1e-12, atol=1e-14)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


def test_device_control_refusals_and_failures() -> None:
    with pytest.raises(ValueError, match="device_control: the per-sample mode"):
        ode_adjoint.solve(SampleField(), _y0(), T, batch_dims=1, device_control=True)
    with pytest.raises(TypeError, match="device_control: expected True or False"):
        ode_adjoint.solve(SampleField(), _y0(), T, device_control=1)
    with pytest.raises(ValueError, match="t: device_control solves one problem"):
        ode_adjoint.solve(SampleField(), _y0(), T.expand(B, -1), device_control=True)
    with pytest.raises(ode_adjoint.SolverError, match=r"step_size_underflow: stopped at t=0\.99"):
        ode_adjoint.solve(lambda t, y: y**2, torch.ones(1), [0.0, 2.0], device_control=True)


def test_checkpoint_replays_what_backprop_differentiates() -> None:
    """Backwards in time, each sample its own output times: the replayed gradient is backprop's."""
    field = SampleField()
    times = torch.stack([torch.linspace(1.0 + 0.2 * b, -0.5, 4 + 0 * b, dtype=torch.float64) for b in range(B)])
    grads = []
    for gradient in ("backprop", "checkpoint"):
        y0 = _y0()
        solution = ode_adjoint.solve(field, y0, times, batch_dims=1, gradient=gradient, **SETTINGS)
        (solution.ys[1:].square().sum() + solution.y_final.sum()).backward()
        grads.append([y0.grad, *(p.grad.clone() for p in field.parameters())])
        field.zero_grad()
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-11, atol=1e-13)


class StateRateField(torch.nn.Module):
    """SampleField with each sample's rate in its state (``y = (x1, x2, rate)``, ``rate' = 0``): no per-sample data."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = SampleField()

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        inner = self.inner
        state, rate = y[:, :2], y[:, 2:]
        slope = rate * inner.output(torch.tanh(inner.hidden(torch.cat((state, t[:, None]), dim=1))))
        return torch.cat((slope, torch.zeros_like(rate)), dim=1)


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint", "adjoint"])
def test_compact_is_the_whole_batch_s(gradient: str) -> None:
    """Finished samples leave the batch (f sees fewer rows) with every engine: the values and gradients of
    the solve without compaction (checkpointing replays each step on its own rows; the adjoint compacts its
    forward and backward solves)."""
    field = StateRateField()
    rows: list[int] = []
    hook = field.register_forward_pre_hook(lambda module, inputs: rows.append(inputs[1].shape[0]))
    results = []
    for compact in (False, True):
        rows.clear()
        y0 = torch.cat((_y0(), field.inner.rates[:, None]), dim=1).detach().requires_grad_()
        solution = ode_adjoint.solve(
            field, y0, T, batch_dims=1, compact=compact, sync_every=2, gradient=gradient, **SETTINGS
        )
        forward_rows = min(rows)
        rows.clear()
        solution.ys.square().sum().backward()
        backward_rows = min(rows, default=0)  # backprop's backward calls no f
        results.append((solution, y0.grad, field.inner.hidden.weight.grad.clone(), forward_rows, backward_rows))
        field.zero_grad()
    hook.remove()
    (whole, grad, weight, *_), (compacted, grad_c, weight_c, forward_rows, backward_rows) = results
    assert forward_rows < B and backward_rows < B
    assert torch.equal(compacted.stats.nfev, whole.stats.nfev)
    torch.testing.assert_close(compacted.ys, whole.ys, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(grad_c, grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(weight_c, weight, rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="compact: takes rows out of one batch dimension; got batch_dims=2"):
        ode_adjoint.solve(field, torch.ones(2, 3, 3, dtype=torch.float64), T, batch_dims=2, compact=True)


def test_compact_needs_the_per_sample_mode() -> None:
    field = StateRateField()
    with pytest.raises(ValueError, match="compact: takes finished samples out of a per-sample solve's batch"):
        ode_adjoint.solve(field, torch.ones(B, 3, dtype=torch.float64), T, compact=True)


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_gradients_with_respect_to_each_sample_s_times(gradient: str) -> None:
    """d loss / d t for every sample's own output times: as each sample's alone (the joint solve's rule)."""
    field = SampleField()
    times = torch.stack([torch.linspace(0.1 * b, 1.0 + 0.2 * b, 4, dtype=torch.float64) for b in range(B)])
    times.requires_grad_()
    y0 = _y0()
    solution = ode_adjoint.solve(field, y0, times, batch_dims=1, gradient=gradient, **SETTINGS)
    (solution.ys.square().sum() + solution.y_final.sum()).backward()
    for b in range(B):
        alone_times = times[b].detach().clone().requires_grad_()
        alone = ode_adjoint.solve(field.one(b), y0[b : b + 1].detach(), alone_times, **SETTINGS)
        (alone.ys.square().sum() + alone.y_final.sum()).backward()
        torch.testing.assert_close(times.grad[b], alone_times.grad, rtol=1e-9, atol=1e-11)


def test_tuple_states_per_sample_as_alone() -> None:
    """A tuple state: each tensor with the batch first; torchdiffeq's tuple norm, per sample."""
    rates = torch.linspace(0.5, 3.0, B, dtype=torch.float64)

    def field(rate: torch.Tensor) -> Any:
        def f(t: torch.Tensor, y: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            a, c = y
            rate_column = rate.reshape(-1, 1)
            return -rate_column * c.sum(-1, keepdim=True) * a, rate_column * torch.sin(a).sum(-1, keepdim=True) * c

        return f

    y0 = (torch.ones(B, 2, dtype=torch.float64), torch.linspace(0, 1, 3 * B, dtype=torch.float64).reshape(B, 3))
    solution = ode_adjoint.solve(field(rates), y0, T, batch_dims=1, **SETTINGS)
    assert isinstance(solution.ys, tuple) and [p.shape for p in solution.ys] == [(5, B, 2), (5, B, 3)]
    assert isinstance(solution.y_final, tuple) and solution.y_final[1].shape == (B, 3)
    for b in (0, B - 1):
        alone = ode_adjoint.solve(field(rates[b]), (y0[0][b : b + 1], y0[1][b : b + 1]), T, **SETTINGS)
        assert alone.stats.nfev == int(solution.stats.nfev[b])
        for part, alone_part in zip(solution.ys, alone.ys, strict=True):
            torch.testing.assert_close(part[:, b], alone_part[:, 0], rtol=1e-11, atol=1e-13)


def _gradients(field: torch.nn.Module, times: torch.Tensor, **settings: Any) -> tuple[ode_adjoint.Solution, list]:
    y0 = _y0()
    solution = ode_adjoint.solve(field, y0, times, batch_dims=1, **settings)
    (solution.ys[1:].square().sum() + solution.y_final[:, 0].sum()).backward()
    grads = [y0.grad, *(p.grad.clone() for p in field.parameters())]
    field.zero_grad()
    return solution, grads


@pytest.mark.slow
@pytest.mark.parametrize("backwards", [False, True])
def test_the_adjoint_converges_to_the_gradient(backwards: bool) -> None:
    """Each sample's backward solve on its own steps, the parameter adjoint summed over the samples: the
    error against a tight backprop falls with the tolerances (the continuous adjoint, not the discrete one)."""
    field = SampleField()
    times = torch.stack([torch.linspace(0.1 * b, 1.5 + 0.2 * b, 4, dtype=torch.float64) for b in range(B)])
    times = times.flip(1) if backwards else times
    _, exact = _gradients(field, times, rtol=1e-12, atol=1e-14)
    errors = []
    for tolerance in (1e-6, 1e-10):
        solution, grads = _gradients(
            field,
            times,
            rtol=1e-10,
            atol=1e-12,
            gradient="adjoint",
            adjoint_rtol=tolerance,
            adjoint_atol=tolerance / 100,
        )
        errors.append(max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(grads, exact, strict=True)))
        assert solution.backward_stats.n_steps.shape == (B,) and int(solution.backward_stats.n_steps.min()) > 0
    assert errors[0] < 1e-5 and errors[1] < 1e-7 and errors[1] < errors[0] / 10, errors


def test_the_adjoint_of_a_plain_function_with_adjoint_params() -> None:
    weight = torch.tensor([[-1.0, 0.3], [0.2, -0.5]], dtype=torch.float64, requires_grad=True)
    rates = torch.linspace(0.5, 2.0, B, dtype=torch.float64)

    def func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return rates[:, None] * (y @ weight)

    grads = []
    for gradient in ("backprop", "adjoint"):
        solution = ode_adjoint.solve(
            func, _y0().detach(), T, batch_dims=1, gradient=gradient, adjoint_params=(weight,), **SETTINGS
        )
        (grad,) = torch.autograd.grad(solution.ys.sum(), weight)
        grads.append(grad)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-8)


def _free_fall(
    heights: torch.Tensor, times: list[float], gradient: str, **settings: Any
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Balls falling from ``heights`` until they reach the ground (a terminal event): the solution, the
    gravity and the initial states, both differentiable."""
    gravity = torch.tensor(9.81, dtype=torch.float64, requires_grad=True)
    y0 = torch.stack([heights, torch.zeros_like(heights)], dim=1).requires_grad_()

    def fall(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[:, 1], -gravity * torch.ones_like(y[:, 0])], dim=1)

    def ground(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0]

    ground.terminal, ground.direction = True, -1  # type: ignore[attr-defined]
    solution = ode_adjoint.solve(
        fall, y0, times, batch_dims=1, events=ground, adjoint_params=(gravity,), gradient=gradient, **settings
    )
    return solution, gravity, y0


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint", "adjoint"])
def test_events_differentiable_per_sample(gradient: str) -> None:
    """Balls falling from their own heights: each sample's event time and final state with the joint
    solve's implicit-function gradient, against the closed form t = sqrt(2 h / g), v = -sqrt(2 g h)."""
    heights = torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64)
    solution, gravity, y0 = _free_fall(heights, [0.0, 2.0], gradient)
    assert solution.status is Status.EVENT and solution.sample_status == (Status.EVENT,) * 3
    times = torch.stack([found[0] for found in solution.t_events[0]])
    torch.testing.assert_close(times, torch.sqrt(2 * heights / 9.81), rtol=1e-12, atol=0)
    d_gravity, d_heights = torch.autograd.grad(times.sum() + solution.y_final[:, 1].sum(), (gravity, y0))
    expected_gravity = (-0.5 * torch.sqrt(2 * heights) * 9.81**-1.5 - 0.5 * torch.sqrt(2 * heights / 9.81)).sum()
    torch.testing.assert_close(d_gravity, expected_gravity, rtol=1e-10, atol=0)
    expected_heights = 1 / torch.sqrt(2 * heights * 9.81) - torch.sqrt(9.81 / (2 * heights))
    torch.testing.assert_close(d_heights[:, 0], expected_heights, rtol=1e-10, atol=0)


def _falling_with_drag(gradient: str, terminal: bool, device: str = "cpu") -> tuple[Any, tuple[torch.Tensor, ...]]:
    """Three balls with quadratic drag, two events (reaching the ground, terminal or not, and half their
    height), outputs on either side of the events: a loss on every output, event time, event state and
    final state, differentiated by ``gradient``. The third ball reaches neither event before t = 2, so
    the samples have different numbers of events."""
    heights = torch.tensor([1.0, 2.0, 40.0], dtype=torch.float64, device=device)
    gravity = torch.tensor(9.81, dtype=torch.float64, device=device, requires_grad=True)
    drag = torch.tensor(0.03, dtype=torch.float64, device=device, requires_grad=True)
    y0 = torch.stack([heights, torch.zeros_like(heights)], dim=1).requires_grad_()

    def fall(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.stack([y[:, 1], -gravity - drag * y[:, 1] * y[:, 1].abs()], dim=1)

    def ground(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0]

    def half(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0] - 0.5 * heights

    ground.terminal, ground.direction = terminal, -1  # type: ignore[attr-defined]
    solution = ode_adjoint.solve(
        fall,
        y0,
        torch.tensor([0.0, 0.3, 0.6, 1.0, 2.0], dtype=torch.float64, device=device),
        batch_dims=1,
        events=[ground, half],
        adjoint_params=(gravity, drag),
        gradient=gradient,
        rtol=1e-10,
        atol=1e-12,
    )
    loss = (
        sum((times**2).sum() for found in solution.t_events for times in found)
        + sum((states**2).sum() for found in solution.y_events for states in found)
        + (torch.nan_to_num(solution.ys) ** 2).sum()
        + solution.y_final[:, 1].sum()
    )
    return solution, torch.autograd.grad(loss, (gravity, drag, y0))


@pytest.mark.parametrize("terminal", [True, False])
@pytest.mark.parametrize(("gradient", "close"), [("checkpoint", 1e-12), ("adjoint", 1e-7)])
def test_events_per_sample_with_every_engine(gradient: str, close: float, terminal: bool) -> None:
    """The checkpoint and adjoint engines differentiate each sample's event times, event states and the
    final state of a stopped sample as backprop does: checkpointing replays the same steps (equal to
    round-off), the adjoint solves back through each sample's events (to its tolerance)."""
    expected_solution, expected = _falling_with_drag("backprop", terminal)
    solution, found = _falling_with_drag(gradient, terminal)
    stopped = (Status.EVENT, Status.EVENT, Status.SUCCESS) if terminal else (Status.SUCCESS,) * 3
    assert solution.sample_status == expected_solution.sample_status == stopped
    assert [len(times) for found_e in solution.t_events for times in found_e] == [1, 1, 0, 1, 1, 0]
    torch.testing.assert_close(solution.ys, expected_solution.ys, rtol=1e-12, atol=0, equal_nan=True)
    for value, reference in zip(found, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=close, atol=close * float(reference.abs().max()))


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint", "adjoint"])
def test_events_with_compaction_differentiate_as_without(gradient: str) -> None:
    """``compact=True`` with a terminal event (floors carried in the state): stopped samples leave the
    batch, and the values and gradients are those of the solve without compaction."""
    drag = torch.tensor(0.05, dtype=torch.float64, requires_grad=True)
    rows: list[int] = []

    def fall(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        rows.append(y.shape[0])
        return torch.stack([y[:, 1], -9.81 - drag * y[:, 1] * y[:, 1].abs(), 0 * y[:, 2]], dim=1)

    def floor(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return y[:, 0] - y[:, 2]

    floor.terminal, floor.direction = True, -1  # type: ignore[attr-defined]
    heights = torch.tensor([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0], dtype=torch.float64)
    floors = torch.tensor([0.0, 0.5, -1.0, 7.9, 0.0, 0.0, -300.0, -400.0], dtype=torch.float64)

    def solved(compact: bool) -> tuple[Any, tuple[torch.Tensor, ...]]:
        y0 = torch.stack([heights, torch.zeros(8, dtype=torch.float64), floors], dim=1).requires_grad_()
        solution = ode_adjoint.solve(
            fall,
            y0,
            torch.linspace(0.0, 8.0, 9),
            batch_dims=1,
            events=floor,
            compact=compact,
            sync_every=2,
            gradient=gradient,
            adjoint_params=(drag,),
        )
        loss = (
            sum((times**2).sum() for times in solution.t_events[0])
            + (solution.y_final[:, :2] ** 2).sum()
            + (torch.nan_to_num(solution.ys) ** 2).sum()
        )
        return solution, torch.autograd.grad(loss, (drag, y0))

    expected_solution, expected = solved(False)
    rows.clear()
    solution, found = solved(True)
    assert min(rows) < 8 and solution.sample_status == expected_solution.sample_status
    assert solution.sample_status.count(Status.EVENT) == 6
    torch.testing.assert_close(solution.ys, expected_solution.ys, rtol=1e-12, atol=1e-13, equal_nan=True)
    for value, reference in zip(found, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.parametrize("gradient", ["backprop", "checkpoint", "adjoint"])
def test_events_per_sample_on_cuda_match_the_cpu(gradient: str) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    cpu_solution, cpu = _falling_with_drag(gradient, True)
    gpu_solution, gpu = _falling_with_drag(gradient, True, "cuda")
    assert gpu_solution.sample_status == cpu_solution.sample_status
    torch.testing.assert_close(gpu_solution.ys.cpu(), cpu_solution.ys, rtol=1e-9, atol=1e-11, equal_nan=True)
    for value, reference in zip(gpu, cpu, strict=True):
        torch.testing.assert_close(value.cpu(), reference, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("gradient", ["checkpoint", "adjoint"])
def test_outputs_past_a_terminal_event_carry_no_gradient(gradient: str) -> None:
    """Outputs past a sample's terminal event are NaN and depend on nothing, whatever cotangent they are
    given (here ones, an output just after the event, inside the step that found it): as backprop."""
    heights = torch.tensor([1.0, 2.0, 40.0], dtype=torch.float64)
    landing = math.sqrt(2.0 / 9.81)

    def vjp(gradient: str) -> tuple[torch.Tensor, ...]:
        solution, gravity, y0 = _free_fall(heights, [0.0, 0.3, landing + 1e-3, 1.0], gradient, rtol=1e-10)
        assert torch.isnan(solution.ys[2:, 0]).all() and torch.isnan(solution.ys[3, 1]).all()
        return torch.autograd.grad(solution.ys, (gravity, y0), torch.ones_like(solution.ys))

    for value, reference in zip(vjp(gradient), vjp("backprop"), strict=True):
        torch.testing.assert_close(value, reference, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("gradient", ["backprop", "adjoint", "checkpoint"])
def test_a_float32_network_sees_float32_states_only(gradient: str) -> None:
    # The per-sample first-step guess steps y0 by h0, which lives in the times' float64: the trial state
    # must stay float32, or a float32 nn.Linear refuses it.
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 2)
    seen: set[torch.dtype] = set()

    def func(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        seen.add(y.dtype)
        return torch.tanh(net(y))

    times = torch.linspace(0.0, 1.0, 4).expand(3, 4).contiguous()
    solution = ode_adjoint.solve(func, torch.ones(3, 2), times, batch_dims=1, gradient=gradient)
    solution.ys.sum().backward()
    assert seen == {torch.float32} and solution.ys.dtype == torch.float32
    assert net.weight.grad is not None and torch.isfinite(net.weight.grad).all()
