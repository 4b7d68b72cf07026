"""The RNODE regularisers: kinetic energy and the Jacobian's Frobenius norm, integrated with the solve."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import ode_adjoint
import pytest
import torch
from ode_models import ODEBlock, Regularization, TrainConfig, build_model, report, train
from ode_models._augmented import AugmentedDynamics, controlled_norm
from ode_models._cli import main
from torch import nn

ENGINES = ("backprop", "adjoint", "checkpoint")


class Linear(nn.Module):
    """f(t, z) = z A^T on (B, n) states: K and B have closed forms."""

    def __init__(self, matrix: torch.Tensor) -> None:
        super().__init__()
        self.matrix = nn.Parameter(matrix.clone())

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return z @ self.matrix.T


def solve_augmented(
    dynamics: AugmentedDynamics, z0: torch.Tensor, gradient: str, parameters: tuple[torch.Tensor, ...]
) -> list[torch.Tensor]:
    solution = ode_adjoint.solve(
        dynamics,
        dynamics.initial_state(z0),
        [0.0, 1.0],
        rtol=1e-9,
        atol=1e-10,
        options={"norm": controlled_norm(1)},
        gradient=gradient,
        adjoint_params=parameters,
    )
    return [component[-1] for component in solution.ys]


@pytest.mark.parametrize("gradient", ENGINES)
def test_integrals_match_closed_forms_of_a_linear_flow(gradient: str) -> None:
    # f = a z: z(t) = z0 e^{a t}, so K = a^2 |z0|^2 (e^{2a} - 1) / (2a); the Jacobian a I gives
    # |eps^T J|^2 = a^2 |eps|^2 at every time, so B = a^2 |eps|^2 exactly (for the drawn eps).
    torch.manual_seed(0)
    a = -0.7
    func = Linear(a * torch.eye(3, dtype=torch.float64))
    z0 = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)  # y0 needing grad: the engines' edge case
    dynamics = AugmentedDynamics(func, ("kinetic_energy", "jacobian_norm"))
    dynamics.draw_noise(z0)
    assert dynamics.noise is not None
    z1, kinetic, jacobian = solve_augmented(dynamics, z0, gradient, tuple(func.parameters()))
    squared = z0.detach().pow(2).sum(1)
    torch.testing.assert_close(z1.detach(), z0.detach() * math.exp(a), rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(kinetic.detach(), a**2 * squared * (math.exp(2 * a) - 1) / (2 * a), rtol=1e-7, atol=0)
    torch.testing.assert_close(jacobian.detach(), a**2 * dynamics.noise.pow(2).sum(1), rtol=1e-9, atol=0)


def test_hutchinson_estimates_the_frobenius_norm_and_the_trace() -> None:
    # E |eps^T A|^2 = |A|_F^2 and E eps^T A eps = tr A for Gaussian eps: means over many draws, within
    # 4 standard errors; the exact divergence is tr A itself.
    torch.manual_seed(1)
    matrix = torch.randn(5, 5, dtype=torch.float64)
    func = Linear(matrix)
    z = torch.randn(20_000, 5, dtype=torch.float64)
    dynamics = AugmentedDynamics(func, ("jacobian_norm",), divergence="hutchinson")
    dynamics.draw_noise(z)
    with torch.no_grad():
        value, trace, squares = dynamics(torch.tensor(0.0), dynamics.initial_state(z))
    torch.testing.assert_close(value, z @ matrix.T)
    for samples, expected in ((squares, matrix.pow(2).sum()), (trace, matrix.trace())):
        standard_error = float(samples.std()) / math.sqrt(len(samples))
        assert abs(float(samples.mean()) - float(expected)) < 4 * standard_error
    exact = AugmentedDynamics(func, divergence="exact")
    with torch.no_grad():
        _, trace = exact(torch.tensor(0.0), exact.initial_state(z[:3]))
    torch.testing.assert_close(trace, matrix.trace().expand(3))


def test_the_rates_are_differentiable_under_grad_mode_only() -> None:
    func = Linear(torch.tensor([[0.0, 1.0], [-2.0, 0.5]], dtype=torch.float64))
    z = torch.ones(1, 2, dtype=torch.float64)
    dynamics = AugmentedDynamics(func, ("jacobian_norm",))
    dynamics.noise = noise = torch.tensor([[1.0, -1.0]], dtype=torch.float64)
    _, squares = dynamics(torch.tensor(0.0), dynamics.initial_state(z))
    torch.testing.assert_close(squares, (noise @ func.matrix.detach()).pow(2).sum(1))
    squares.sum().backward()  # d/dA |eps^T A|^2 = 2 eps (eps^T A)
    assert func.matrix.grad is not None
    torch.testing.assert_close(func.matrix.grad, 2 * noise.T @ (noise @ func.matrix.detach()))
    with torch.no_grad():
        value, squares = dynamics(torch.tensor(0.0), dynamics.initial_state(z))
    assert not value.requires_grad and not squares.requires_grad
    constant = nn.Parameter(torch.ones(2, dtype=torch.float64))
    independent = AugmentedDynamics(lambda t, z: constant.expand_as(z), ("jacobian_norm",), divergence="exact")
    independent.noise = noise
    _, trace, squares = independent(torch.tensor(0.0), independent.initial_state(z))
    assert float(trace.detach()) == 0.0 and float(squares.detach()) == 0.0  # f independent of z


def regularized_gradients(gradient: str, weights: Regularization) -> tuple[float, list[torch.Tensor]]:
    torch.manual_seed(0)
    model = build_model("odenet", "mnist", gradient=gradient, rtol=1e-6, atol=1e-6, regularization=weights).double()
    images = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    model.train()
    torch.manual_seed(5)  # Hutchinson's noise
    loss = model(images).square().mean()
    regularization = model.take_regularization_loss()
    assert regularization is not None and regularization.requires_grad
    (loss + regularization).backward()
    return float(regularization.detach()), [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.slow  # double backward of a convolutional f
def test_checkpointing_gives_backprops_regularised_gradient() -> None:
    weights = Regularization(kinetic_energy=1e-3, jacobian_norm=1e-3)
    value, reference = regularized_gradients("backprop", weights)
    other_value, grads = regularized_gradients("checkpoint", weights)
    assert other_value == pytest.approx(value, rel=1e-9)
    for mine, theirs in zip(grads, reference):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("regularizers", [("kinetic_energy",), ("jacobian_norm",), ("kinetic_energy", "jacobian_norm")])
def test_the_adjoint_of_the_augmented_solve_matches_backprop(regularizers: tuple[str, ...]) -> None:
    # The adjoint's own accuracy follows its tolerance (on the ODE-Net at 1e-6 its stem gradients are a few
    # percent off backprop's, with or without regularisers): a small smooth f shows the augmented system's
    # adjoint (a_z picking up d||f||^2/dz and the double backward of eps^T J) exact to the tolerance.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    z0 = torch.randn(4, 3, dtype=torch.float64)
    grads = {}
    for gradient in ("backprop", "adjoint"):
        dynamics = AugmentedDynamics(lambda t, z: net(z), regularizers)
        z = z0.clone().requires_grad_()
        torch.manual_seed(3)
        dynamics.draw_noise(z)
        final = solve_augmented(dynamics, z, gradient, tuple(net.parameters()))
        loss = final[0].pow(2).sum() + sum(integral.sum() for integral in final[1:])
        grads[gradient] = torch.autograd.grad(loss, (z, *net.parameters()))
    for mine, theirs in zip(grads["adjoint"], grads["backprop"]):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-9)


def test_kinetic_gradient_on_a_linear_flow_matches_finite_differences() -> None:
    torch.manual_seed(2)
    func = Linear(0.3 * torch.randn(2, 2, dtype=torch.float64))
    z0 = torch.randn(3, 2, dtype=torch.float64)
    dynamics = AugmentedDynamics(func, ("kinetic_energy",))

    def energy() -> torch.Tensor:
        return solve_augmented(dynamics, z0, "adjoint", (func.matrix,))[1].sum()

    energy().backward()
    assert func.matrix.grad is not None
    step = 1e-6
    for index in [(0, 0), (0, 1), (1, 0)]:
        with torch.no_grad():
            func.matrix[index] += step
            up = float(energy())
            func.matrix[index] -= 2 * step
            down = float(energy())
            func.matrix[index] += step
        assert float(func.matrix.grad[index]) == pytest.approx((up - down) / (2 * step), rel=1e-5)


def test_the_block_regularises_training_solves_only() -> None:
    torch.manual_seed(0)
    weights = Regularization(kinetic_energy=0.5, jacobian_norm=0.25)
    model = build_model("odenet", "mnist", gradient="backprop", regularization=weights)
    (block,) = model.ode_blocks()
    images = torch.randn(2, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        model(images)
    assert model.take_regularization_loss() is None and block.regularizer_means == {
        "kinetic_energy": 0.0,
        "jacobian_norm": 0.0,
    }
    model.train()
    model(images)
    model(images)  # two solves before the loss takes them: both count
    loss = model.take_regularization_loss()
    assert loss is not None and model.take_regularization_loss() is None
    means = block.regularizer_means
    assert means["kinetic_energy"] > 0 and means["jacobian_norm"] > 0
    # Summed over the two solves, each weighted: the means are per solve.
    assert float(loss.detach()) == pytest.approx(
        2 * (0.5 * means["kinetic_energy"] + 0.25 * means["jacobian_norm"]), rel=1e-5
    )
    block.reset_nfe()
    assert block.regularizer_means == {"kinetic_energy": 0.0, "jacobian_norm": 0.0}
    assert "kinetic_energy=0.5, jacobian_norm=0.25" in repr(block)


def test_unregularised_blocks_are_unchanged() -> None:
    torch.manual_seed(0)
    plain = build_model("odenet", "mnist")
    torch.manual_seed(0)
    off = build_model("odenet", "mnist", regularization=Regularization())
    images = torch.randn(2, 1, 28, 28)
    torch.testing.assert_close(plain(images), off(images), rtol=0, atol=0)
    assert off.take_regularization_loss() is None
    assert plain.state_dict().keys() == off.state_dict().keys()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"kinetic_energy": -1.0}, ValueError, r"kinetic_energy: expected a finite number >= 0 \(a weight\), got -1.0"),
        ({"jacobian_norm": float("nan")}, ValueError, "jacobian_norm: expected a finite number >= 0"),
        ({"jacobian_norm": True}, ValueError, "jacobian_norm: expected a finite number >= 0"),
    ],
)
def test_bad_weights(kwargs: dict[str, float], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        Regularization(**kwargs)


def test_bad_uses() -> None:
    with pytest.raises(ValueError, match="regularization: kinetic_energy regularise an ODE block; 'resnet6' has none"):
        build_model("resnet6", "mnist", regularization=Regularization(kinetic_energy=1.0))
    with pytest.raises(ValueError, match="regularization: jacobian_norm regularise an ODE block; 'resnet1'"):
        TrainConfig(model="resnet1", jacobian_norm=0.1)
    with pytest.raises(TypeError, match="regularization: expected a Regularization or None, got dict"):
        ODEBlock(nn.Identity(), regularization={"kinetic_energy": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="regularizers, divergence: nothing to integrate beside z"):
        AugmentedDynamics(nn.Identity(), ())
    with pytest.raises(
        ValueError, match=r"regularizers: expected names from kinetic_energy, jacobian_norm, got \('x',\)"
    ):
        AugmentedDynamics(nn.Identity(), ("x",))
    with pytest.raises(ValueError, match="divergence: expected one of exact, hutchinson or None, got 'trace'"):
        AugmentedDynamics(nn.Identity(), divergence="trace")
    dynamics = AugmentedDynamics(lambda t, z: z, ("jacobian_norm",))
    with pytest.raises(RuntimeError, match=r"call draw_noise\(z0\) before the solve"):
        dynamics(torch.tensor(0.0), (torch.ones(1, 2), torch.zeros(1)))


def test_a_regularised_run_reports_and_resumes_bitwise(tmp_path: Path) -> None:
    options = {
        "model": "odenet",
        "rtol": 1e-2,
        "atol": 1e-2,
        "limit_train": 64,
        "limit_test": 32,
        "batch_size": 32,
        "epochs": 2,
        "threads": 1,
        "progress": False,
        "gradient": "backprop",
        "kinetic_energy": 0.01,
        "jacobian_norm": 0.01,
    }
    whole = train(TrainConfig(**options, out=str(tmp_path / "whole")), log=io.StringIO())
    train(TrainConfig(**options, out=str(tmp_path / "split"), stop_after=1), log=io.StringIO())
    resumed = train(TrainConfig(**options, out=str(tmp_path / "split"), resume=True), log=io.StringIO())
    for key in ("kinetic_energy", "jacobian_norm", "train_loss", "test_loss"):
        assert resumed[key] == whole[key], key  # Hutchinson's noise comes from the checkpointed generator
    lines = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert all(line["kinetic_energy"] > 0 and line["jacobian_norm"] > 0 for line in lines)
    assert whole["config"]["kinetic_energy"] == 0.01
    table = report([tmp_path / "whole"]).splitlines()
    assert table[0].endswith("| NFE-B | Kinetic energy | Jacobian norm |")
    assert table[2].endswith(f"| {lines[-1]['kinetic_energy']:.4g} | {lines[-1]['jacobian_norm']:.4g} |")


def test_cli_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    common = ["train", "--model", "odenet", "--limit-train", "32", "--limit-test", "16", "--batch-size", "32"]
    common += ["--epochs", "1", "--threads", "1", "--no-progress", "--rtol", "1e-2", "--atol", "1e-2"]
    assert main([*common, "--kinetic-energy", "0.1", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["kinetic_energy"] > 0 and "jacobian_norm" not in results
    with pytest.raises(SystemExit):
        main([*common, "--jacobian-norm", "-1", "--out", str(tmp_path / "bad")])
    assert "--jacobian-norm: expected a number >= 0, got '-1'" in capsys.readouterr().err
    assert main([*common, "--model", "resnet1", "--kinetic-energy", "1", "--out", str(tmp_path / "r")]) == 1
    assert "'resnet1' has none" in capsys.readouterr().err
