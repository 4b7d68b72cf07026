"""The latent ODE on irregularly sampled spirals, its RNN baseline, and ``--task latent`` through the runner."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import ode_adjoint
import pytest
import torch
from ode_models import LatentODE, LatentRNN, TrainConfig, make_spirals, report, train
from ode_models._checkpoint import load_checkpoint
from ode_models._cli import main
from ode_models._latent import SPIRAL_STOP, WINDOW, spiral_grid
from ode_models._report import write_plots

TIMES = {"train_time_s", "epoch_time_s", "samples_per_s", "peak_memory_bytes"}


def tiny(out: Path, **changes: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "task": "latent",
        "limit_train": 64,
        "limit_test": 16,
        "batch_size": 32,
        "epochs": 2,
        "threads": 1,
        "progress": False,
        "rtol": 1e-2,
        "atol": 1e-3,
        "out": str(out),
    }
    return TrainConfig(**{**options, **changes})


def test_spirals_are_irregularly_observed() -> None:
    data = make_spirals(50, 30, torch.Generator().manual_seed(0))
    values, times, window, future = data.batch(range(50))
    assert values.shape == (50, 30, 2) and times.shape == (50, 30)
    assert window.shape == future.shape == (50, WINDOW, 2)
    assert (times[:, 0] == 0).all() and (torch.diff(times, dim=1) > 0).all()
    assert len({tuple(row.tolist()) for row in times}) > 45  # each spiral its own times
    grid = spiral_grid()
    assert grid.shape == (2 * WINDOW,) and float(grid[-1]) == pytest.approx(SPIRAL_STOP * 199 / 499)
    # The observations are the window's points plus noise of standard deviation 0.3.
    index = torch.searchsorted(grid[:WINDOW].contiguous(), times.contiguous())
    truth = torch.gather(window, 1, index[:, :, None].expand(-1, -1, 2))
    assert float((values - truth).std()) == pytest.approx(0.3, rel=0.1)
    # Clockwise and counter-clockwise, about half each (the two spirals are centred at x = -5 and 5).
    counter = (window[:, :, 0].mean(1) > 0).float().mean()
    assert 0.3 < float(counter) < 0.7
    with pytest.raises(ValueError, match="n_observed: expected an integer from 2 to 100, got 1"):
        make_spirals(2, 1, torch.Generator())
    with pytest.raises(ValueError, match="n: expected a positive integer, got 0"):
        make_spirals(0, 10, torch.Generator())


def test_the_decoder_solves_each_trajectory_at_its_own_times() -> None:
    # Per-sample times (the solver's batch_dims=1) give every trajectory what solving it alone gives.
    torch.manual_seed(0)
    model = LatentODE(rtol=1e-7, atol=1e-9)
    data = make_spirals(4, 10, torch.Generator().manual_seed(1))
    _, times, _, _ = data.batch(range(4))
    z0 = torch.randn(4, 4)
    together = model.block.trajectory(z0, times)
    assert together.shape == (4, 10, 4)
    for row in range(4):
        alone = ode_adjoint.solve(model.block.func, z0[row : row + 1], times[row], rtol=1e-7, atol=1e-9).ys[:, 0]
        torch.testing.assert_close(together[row].detach(), alone.detach(), rtol=1e-5, atol=1e-6)
    assert model.block.nfe_forward > 0


@pytest.mark.parametrize("gradient", ["backprop", "adjoint", "checkpoint"])
def test_every_engine_gives_the_elbos_gradient(gradient: str) -> None:
    data = make_spirals(6, 12, torch.Generator().manual_seed(2))
    values, times, _, _ = data.batch(range(6))
    grads = {}
    for engine in ("backprop", gradient):
        torch.manual_seed(0)
        model = LatentODE(rtol=1e-8, atol=1e-8, gradient=engine).double()
        torch.manual_seed(1)  # the reparameterised z0
        model(values.double(), times.double()).mean().backward()
        grads[engine] = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    # The per-sample adjoint keeps the parameter adjoints out of its error control (the seminorm), so its
    # gradient is as good as its quadrature: a few 1e-3 relative here, against the replay's exact one.
    tolerance = 5e-3 if gradient == "adjoint" else 1e-6
    for mine, theirs in zip(grads[gradient], grads["backprop"]):
        torch.testing.assert_close(mine, theirs, rtol=tolerance, atol=tolerance * float(theirs.abs().max()))


def test_the_rnn_baseline_steps_over_time_gaps() -> None:
    torch.manual_seed(0)
    model = LatentRNN()
    data = make_spirals(3, 8, torch.Generator().manual_seed(3))
    values, times, _, _ = data.batch(range(3))
    loss = model(values, times)
    assert loss.shape == (3,) and torch.isfinite(loss).all()
    loss.sum().backward()
    predicted = model.predict(values, times, spiral_grid())
    assert predicted.shape == (3, 2 * WINDOW, 2)
    assert model.ode_blocks() == []


@pytest.mark.parametrize("model", ["latent-ode", "rnn"])
def test_a_latent_run_resumes_bitwise_and_reports(tmp_path: Path, model: str) -> None:
    whole = train(tiny(tmp_path / "whole", model=model), log=io.StringIO())
    train(tiny(tmp_path / "split", model=model, stop_after=1), log=io.StringIO())
    resumed = train(tiny(tmp_path / "split", model=model, resume=True), log=io.StringIO())
    first, second = (
        load_checkpoint(tmp_path / "whole" / "checkpoint.pt"),
        load_checkpoint(tmp_path / "split" / "checkpoint.pt"),
    )
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    strip = [{k: v for k, v in m.items() if k not in TIMES} for m in first["metrics"]]
    assert strip == [{k: v for k, v in m.items() if k not in TIMES} for m in second["metrics"]]
    for key in ("test_extrapolation_mse", "test_interpolation_mse", "train_loss"):
        assert resumed[key] == whole[key], key
    assert (whole["nfe_forward"] > 0) == (model == "latent-ode")
    table = report([tmp_path / "whole"]).splitlines()
    assert table[0].startswith("| Model | Test extrapolation MSE |") and f"| {model} |" in table[2]
    written = write_plots([tmp_path / "whole"], tmp_path / "plots")
    assert "latent.png" in [p.name for p in written]


def test_the_cli_trains_the_latent_ode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    arguments = ["train", "--task", "latent", "--limit-train", "32", "--limit-test", "8", "--batch-size", "16"]
    arguments += ["--epochs", "1", "--threads", "1", "--no-progress", "--observations", "20", "--out", str(out)]
    assert main([*arguments, "--rtol", "1e-2", "--atol", "1e-3"]) == 0
    assert "extrapolation" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "latent" and results["config"]["observations"] == 20
    assert results["initial_lr"] == 1e-2


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"model": "cnf"}, "model: unknown model 'cnf' for task 'latent'; valid names are latent-ode, rnn"),
        ({"observations": 1}, "observations: expected an integer from 2 to 100, got 1"),
        ({"kinetic_energy": 0.1}, "kinetic_energy, jacobian_norm: the latent task has no regularisers yet"),
        ({"data_dir": "x"}, "data_dir: the spirals are generated in code"),
    ],
)
def test_bad_latent_configs(tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(tmp_path, **changes)
