"""``ode-models train --task density``: a CNF on a toy density through the runner, resumed, reported."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from ode_models import TrainConfig, report, train
from ode_models._checkpoint import load_checkpoint
from ode_models._cli import main
from ode_models._report import write_plots
from ode_models._tasks import TOY_TEST_POINTS, PointDataset, get_task

TIMES = {"train_time_s", "epoch_time_s", "samples_per_s", "peak_memory_bytes"}


def tiny(out: Path, **changes: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "task": "density",
        "rtol": 1e-2,
        "atol": 1e-2,
        "limit_train": 256,
        "limit_test": 128,
        "batch_size": 64,
        "epochs": 2,
        "threads": 1,
        "progress": False,
        "out": str(out),
    }
    return TrainConfig(**{**options, **changes})


def without_times(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k not in TIMES} for m in metrics]


def test_defaults_of_the_density_task() -> None:
    config = TrainConfig(task="density")
    assert (config.dataset, config.model, config.batch_size, config.initial_lr) == ("eight-gaussians", "cnf", 512, 1e-3)
    assert TrainConfig().dataset == "mnist" and TrainConfig().model == "odenet" and TrainConfig().batch_size == 128


def test_a_density_run_resumes_bitwise_and_reports(tmp_path: Path) -> None:
    weights = {"kinetic_energy": 0.01, "jacobian_norm": 0.01, "divergence": "hutchinson"}
    whole = train(tiny(tmp_path / "whole", **weights), log=io.StringIO())
    train(tiny(tmp_path / "split", stop_after=1, **weights), log=io.StringIO())
    resumed = train(tiny(tmp_path / "split", resume=True, **weights), log=io.StringIO())
    first, second = (
        load_checkpoint(tmp_path / "whole" / "checkpoint.pt"),
        load_checkpoint(tmp_path / "split" / "checkpoint.pt"),
    )
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    assert without_times(first["metrics"]) == without_times(second["metrics"])
    for key in ("test_nll", "train_nll", "true_nll", "kinetic_energy", "jacobian_norm", "nfe_forward", "nfe_backward"):
        assert resumed[key] == whole[key], key
    assert whole["task"] == "density" and "best_test_nll" in whole and "milestones" not in whole
    assert whole["nll_gap"] == pytest.approx(whole["test_nll"] - whole["true_nll"])
    # The true density's NLL on the test points: eight Gaussians' is about log 8 + 0.76 nats.
    assert whole["true_nll"] == pytest.approx(2.84, abs=0.15)

    table = report([tmp_path / "whole"]).splitlines()
    assert table[0].startswith("| Model | Test NLL (nats) | # Params |")
    assert table[2].startswith(f"| cnf | {whole['test_nll']:.4f} | 8,836 |")
    written = write_plots([tmp_path / "whole"], tmp_path / "plots")
    assert sorted(p.name for p in written) == ["density.png", "nfe.png", "test_nll.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


def test_classifier_and_flow_runs_get_a_table_each(tmp_path: Path) -> None:
    train(tiny(tmp_path / "flow", epochs=1), log=io.StringIO())
    classifier = {"model": "rknet", "limit_train": 32, "limit_test": 16, "batch_size": 32, "epochs": 1}
    train(TrainConfig(**classifier, threads=1, progress=False, out=str(tmp_path / "net")), log=io.StringIO())
    tables = report([tmp_path / "flow", tmp_path / "net"]).split("\n\n")
    assert len(tables) == 2
    assert tables[0].startswith("| Model | Test NLL (nats) |") and tables[1].startswith("| Model | Test error |")


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
def test_every_engine_trains_the_flow(tmp_path: Path, gradient: str) -> None:
    results = train(tiny(tmp_path / gradient, gradient=gradient, epochs=1), log=io.StringIO())
    assert results["complete"] and results["test_nll"] < results["train_nll"] + 1.0
    assert results["config"]["gradient"] == gradient


def test_the_cli_trains_a_flow(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "moons"
    arguments = ["train", "--task", "density", "--dataset", "two-moons", "--limit-train", "128", "--limit-test"]
    arguments += ["64", "--batch-size", "64", "--epochs", "1", "--threads", "1", "--no-progress", "--out", str(out)]
    assert main([*arguments, "--rtol", "1e-2", "--atol", "1e-2"]) == 0
    assert "test NLL" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "two-moons" and results["config"]["batch_size"] == 64
    assert main(["report", str(out)]) == 0
    captured = capsys.readouterr()
    assert "| cnf |" in captured.out and "density.png" in captured.err


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"model": "resnet6"}, "model: unknown model 'resnet6' for task 'density'; valid names are cnf"),
        ({"dataset": "cifar10"}, "dataset: unknown dataset 'cifar10' for task 'density'; valid names are two-moons"),
        ({"data_dir": "somewhere"}, "data_dir: the toy densities are generated in code"),
        ({"divergence": "trace"}, "divergence: expected one of exact, hutchinson, got 'trace'"),
        ({"task": "segment"}, "task: unknown task 'segment'; valid names are classify, density"),
        ({"step_size": 0.1}, "step_size: the density task does not use it, got 0.1"),
        ({"task": "latent", "divergence": "hutchinson"}, "divergence: the latent task does not use it"),
        ({"task": "classify", "observations": 50}, "observations: the classify task does not use it, got 50"),
    ],
)
def test_bad_density_configs(tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        tiny(tmp_path, **changes)


def test_toy_data_of_a_run() -> None:
    task = get_task("density")
    train_set, test_set = task.load_data(TrainConfig(task="density", limit_train=100))
    assert len(train_set) == 100 and len(test_set) == TOY_TEST_POINTS
    assert isinstance(test_set, PointDataset) and test_set.log_density is not None
    points, log_density = test_set.batch([0, 1])
    assert points.shape == (2, 2) and log_density.shape == (2,)
    # The test points do not depend on the number of training points.
    _, other = task.load_data(TrainConfig(task="density", limit_train=300))
    assert isinstance(other, PointDataset)
    assert torch.equal(other.points, test_set.points)
    with pytest.raises(ValueError, match=r"points: expected shape \(N, d\), got \(3,\)"):
        PointDataset(torch.zeros(3))
    with pytest.raises(ValueError, match=r"log_density: expected shape \(3,\), got \(2,\)"):
        PointDataset(torch.zeros(3, 2), torch.zeros(2))
