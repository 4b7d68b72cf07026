"""A CNF on MNIST: dequantisation, the logit transform, bits per dimension, through the runner."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from ode_models import CNF, ConcatConvNet, LogitTransform, TrainConfig, report, train
from ode_models._checkpoint import load_checkpoint
from ode_models._cli import main
from ode_models._report import write_plots
from ode_models._tasks import LOGIT_ALPHA, DequantizedImages, bits_per_dim, get_task
from torch import nn

MNIST_PIXELS = 28 * 28


def tiny(out: Path, **changes: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "task": "density",
        "dataset": "mnist",
        "rtol": 1e-2,
        "atol": 1e-2,
        "limit_train": 32,
        "limit_test": 16,
        "batch_size": 16,
        "epochs": 2,
        "threads": 1,
        "progress": False,
        "out": str(out),
    }
    return TrainConfig(**{**options, **changes})


class Scale(nn.Module):
    """f(t, z) = a z: z(T) = e^{a T} z(0), and the trace integral is a T times the dimensions."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = nn.Parameter(torch.tensor(rate, dtype=torch.float64))

    def forward(self, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.rate * z


def logit_log_density(y: torch.Tensor, alpha: float, scale: float) -> torch.Tensor:
    """log p(y) of a flow whose logits w end as scale * w under N(0, I): by the change of variables,
    written out per pixel (dw/dy by autograd, not the transform's formula)."""
    pixels = y.detach().clone().requires_grad_(True)
    s = alpha + (1 - 2 * alpha) * pixels
    w = torch.log(s / (1 - s))
    (derivative,) = torch.autograd.grad(w.sum(), pixels)  # elementwise: the Jacobian's diagonal
    z = scale * w.detach()
    gaussian = torch.distributions.Normal(0.0, 1.0).log_prob(z).flatten(1).sum(1)
    dimensions = y[0].numel()
    return gaussian + dimensions * math.log(scale) + derivative.log().flatten(1).sum(1)


def test_the_logit_transform_and_its_log_det() -> None:
    transform = LogitTransform(0.05)
    y = torch.rand(3, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    w, log_det = transform(y)
    assert w.shape == y.shape and log_det.shape == (3,)
    torch.testing.assert_close(transform.inverse(w), y)
    # The log-det is the log of the elementwise derivative (by autograd), summed over the pixels.
    pixels = y.clone().requires_grad_(True)
    (derivative,) = torch.autograd.grad(transform(pixels)[0].sum(), pixels)
    torch.testing.assert_close(log_det, derivative.log().flatten(1).sum(1))
    # Finite at the ends of [0, 1].
    ends, ends_log_det = transform(torch.tensor([[0.0, 1.0]], dtype=torch.float64))
    assert torch.isfinite(ends).all() and torch.isfinite(ends_log_det).all()
    for alpha in (0.0, 0.5, -1.0):
        with pytest.raises(ValueError, match=rf"alpha: expected a number in \(0, 0.5\), got {alpha}"):
            LogitTransform(alpha)


@pytest.mark.parametrize("gradient", ["backprop", "adjoint", "checkpoint"])
def test_an_image_flows_log_density_matches_its_closed_form(gradient: str) -> None:
    # f = a z on 4 x 4 images with the exact trace: z(T) = e^{aT} w and the trace integral 16 a T.
    rate, time = 0.3, 1.0
    flow = CNF(
        Scale(rate), (1, 4, 4), logit=LogitTransform(0.05), gradient=gradient, rtol=1e-9, atol=1e-9, time_length=time
    )
    y = torch.rand(5, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    log_prob = flow.log_prob(y)
    expected = logit_log_density(y, 0.05, math.exp(rate * time))
    assert float((log_prob - expected).detach().abs().max()) < 1e-7
    # And its gradient in a: d/da of the closed form, by autograd on it.
    log_prob.sum().backward()
    a = torch.tensor(rate, dtype=torch.float64, requires_grad=True)
    w = LogitTransform(0.05)(y)[0]
    z = torch.exp(a * time) * w
    closed = (-0.5 * z.pow(2)).sum() + 5 * 16 * a * time
    (reference,) = torch.autograd.grad(closed, a)
    assert flow.block.func.rate.grad is not None
    torch.testing.assert_close(flow.block.func.rate.grad, reference, rtol=1e-6, atol=1e-8)


def test_an_identity_flow_gives_the_logit_gaussians_bits_per_dim() -> None:
    # A ConcatConvNet with zero weights is f = 0: the flow is the identity, and the task's bits/dim that of
    # the logit-transformed Gaussian, D log 256 - log p(y) over D log 2.
    func = ConcatConvNet(1, (4,))
    for parameter in func.parameters():
        nn.init.zeros_(parameter)
    flow = CNF(func, (1, 28, 28), divergence="hutchinson", logit=LogitTransform(LOGIT_ALPHA))
    images = torch.randint(0, 256, (6, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    (values,) = DequantizedImages(images, noise_seed=3).batch(range(6))
    with torch.no_grad():  # as the runner's evaluation
        sums = get_task("density").test_sums(flow, (values,))
    expected = MNIST_PIXELS * math.log(256) - logit_log_density(values.double(), LOGIT_ALPHA, 1.0)
    assert sums["count"] == 6 and sums["pixels"] == 6 * MNIST_PIXELS and "true_count" not in sums
    assert sums["nll_sum"] == pytest.approx(float(expected.sum()), rel=1e-5)
    metrics = get_task("density").test_metrics({"true_sum": 0.0, "true_count": 0.0, **sums})
    assert metrics["test_bits_per_dim"] == pytest.approx(
        float(expected.mean()) / (MNIST_PIXELS * math.log(2)), rel=1e-5
    )
    assert "true_nll" not in metrics and bits_per_dim(math.log(2) * 10, 10) == pytest.approx(1.0)


def test_dequantized_images() -> None:
    images = torch.randint(0, 256, (10, 1, 5, 5), dtype=torch.uint8, generator=torch.Generator().manual_seed(4))
    train_set, test_set = DequantizedImages(images), DequantizedImages(images, noise_seed=7)
    assert len(train_set) == 10
    (first,) = train_set.batch([0, 3], torch.Generator().manual_seed(5))
    (again,) = train_set.batch([0, 3], torch.Generator().manual_seed(5))
    (other,) = train_set.batch([0, 3], torch.Generator().manual_seed(6))
    assert torch.equal(first, again) and not torch.equal(first, other)  # the batch's generator, new noise
    assert first.dtype == torch.float32 and first.shape == (2, 1, 5, 5)
    level = images[[0, 3]].float() / 256
    assert bool((first >= level).all()) and bool((first < level + 1 / 256).all())
    (fixed,) = test_set.batch([3])
    (fixed_again,) = test_set.batch([0, 3], torch.Generator().manual_seed(8))
    assert torch.equal(fixed[0], fixed_again[1])  # a test set's noise is fixed per image
    with pytest.raises(ValueError, match=r"images: expected a uint8 tensor of shape \(N, C, H, W\), got torch.float32"):
        DequantizedImages(images.float())


def test_defaults_of_an_image_flow() -> None:
    config = TrainConfig(task="density", dataset="mnist")
    assert (config.divergence, config.batch_size, config.initial_lr) == ("hutchinson", 200, 1e-3)
    assert TrainConfig(task="density").divergence == "exact"
    assert TrainConfig(task="density", dataset="mnist", divergence="exact").divergence == "exact"  # when asked
    assert TrainConfig().divergence is None  # classify: no flow
    flow = get_task("density").build(config)
    assert isinstance(flow, CNF) and flow.shape == (1, 28, 28) and flow.divergence == "hutchinson"
    assert flow.logit is not None and flow.logit.alpha == LOGIT_ALPHA


def test_an_mnist_flow_trains_resumes_bitwise_and_reports(tmp_path: Path) -> None:
    whole = train(tiny(tmp_path / "whole"), log=io.StringIO())
    train(tiny(tmp_path / "split", stop_after=1), log=io.StringIO())
    resumed = train(tiny(tmp_path / "split", resume=True), log=io.StringIO())
    first, second = (
        load_checkpoint(tmp_path / "whole" / "checkpoint.pt"),
        load_checkpoint(tmp_path / "split" / "checkpoint.pt"),
    )
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    for key in ("test_nll", "test_bits_per_dim", "train_nll", "nfe_forward", "nfe_backward"):
        assert resumed[key] == whole[key], key
    assert whole["test_bits_per_dim"] == pytest.approx(whole["test_nll"] / (MNIST_PIXELS * math.log(2)))
    assert whole["true_nll"] is None and whole["nll_gap"] is None
    # An untrained flow's logit Gaussian is about 9 bits/dim; two small epochs already improve on it.
    lines = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["train_bits_per_dim"] > lines[1]["train_bits_per_dim"]
    assert 1.0 < whole["test_bits_per_dim"] < 12.0

    table = report([tmp_path / "whole"]).splitlines()
    assert table[0] == "| Model | Test NLL (nats) | # Params | Memory | Time | NFE-F | NFE-B | Bits/dim |"
    assert table[2].startswith(f"| cnf | {whole['test_nll']:.4f} |")
    assert table[2].endswith(f"| {whole['test_bits_per_dim']:.3f} |")
    written = write_plots([tmp_path / "whole"], tmp_path / "plots")
    assert sorted(p.name for p in written) == ["density.png", "nfe.png", "test_nll.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


def test_the_cli_trains_an_mnist_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mnist"
    arguments = ["train", "--task", "density", "--dataset", "mnist", "--limit-train", "16", "--limit-test", "8"]
    arguments += ["--batch-size", "8", "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out)]
    assert main([*arguments, "--rtol", "1e-2", "--atol", "1e-2", "--kinetic-energy", "0.01"]) == 0
    assert "bits/dim" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "mnist" and results["config"]["divergence"] == "hutchinson"
    assert results["kinetic_energy"] > 0
