"""ode_models.train: schedule, exact resume, crash-safe checkpoints."""

from __future__ import annotations

import dataclasses
import io
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import torch
from ode_models import RunError, TrainConfig, scaled_milestones, train
from ode_models._checkpoint import load_checkpoint

replace = dataclasses.replace
TIMES = {"train_time_s", "epoch_time_s", "samples_per_s", "peak_memory_bytes"}


def tiny(out: Path, **changes: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "model": "odenet",
        "rtol": 1e-2,
        "atol": 1e-2,
        "limit_train": 64,
        "limit_test": 32,
        "batch_size": 32,
        "epochs": 2,
        "threads": 1,
        "progress": False,
        "out": str(out),
    }
    return TrainConfig(**{**options, **changes})


def without_times(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in m.items() if k not in TIMES} for m in metrics]


def assert_same_state(a: Path, b: Path) -> None:
    first, second = load_checkpoint(a / "checkpoint.pt"), load_checkpoint(b / "checkpoint.pt")
    assert first["epoch"] == second["epoch"]
    assert first["model"].keys() == second["model"].keys()
    for key, value in first["model"].items():
        assert torch.equal(value, second["model"][key]), key
    momenta = [s["momentum_buffer"] for s in first["optimizer"]["state"].values()]
    assert len(momenta) == len(second["optimizer"]["state"])
    for value, other in zip(momenta, (s["momentum_buffer"] for s in second["optimizer"]["state"].values())):
        assert torch.equal(value, other)
    assert first["scheduler"] == second["scheduler"]
    assert torch.equal(first["rng"]["torch"], second["rng"]["torch"])
    assert without_times(first["metrics"]) == without_times(second["metrics"])


def test_paper_milestones_rescaled() -> None:
    assert scaled_milestones(160) == [60, 100, 140]
    assert scaled_milestones(10) == [4, 6, 9]  # 3.75, 6.25, 8.75 to the nearest epoch
    assert scaled_milestones(16) == [6, 10, 14]
    assert scaled_milestones(8) == [3, 5, 7]  # 3.0, 5.0, 7.0
    assert scaled_milestones(2) == [1, 1, 2]
    assert scaled_milestones(1) == [1, 1, 1]  # never before the first epoch


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="batch_size: expected a positive integer, got 0"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="model: unknown model 'vgg'"):
        TrainConfig(model="vgg")
    with pytest.raises(ValueError, match="dataset: unknown dataset 'svhn'"):
        train({"dataset": "svhn"})
    with pytest.raises(ValueError, match="epochs: expected a positive integer"):
        TrainConfig(epochs=True)
    assert TrainConfig(batch_size=256).initial_lr == pytest.approx(0.2)
    assert TrainConfig(batch_size=256, lr=0.01).initial_lr == 0.01


def test_resume_reproduces_an_uninterrupted_run(tmp_path: Path) -> None:
    whole = train(tiny(tmp_path / "whole"))
    assert whole["complete"] and whole["epochs_completed"] == 2
    metrics = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [m["lr"] for m in metrics] == pytest.approx([0.025, 0.00025])  # milestones 1, 1, 2 for 2 epochs

    first = train(tiny(tmp_path / "split", stop_after=1))
    assert not first["complete"] and first["epochs_completed"] == 1
    assert not (tmp_path / "split" / "results.json").exists()
    resumed = train(tiny(tmp_path / "split", resume=True))

    assert_same_state(tmp_path / "whole", tmp_path / "split")
    for key in ("test_error", "test_loss", "train_loss", "train_acc", "nfe_forward", "nfe_backward", "params"):
        assert resumed[key] == whole[key], key
    assert resumed["nfe_forward"] > 0 and resumed["nfe_backward"] > 0


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    config = tiny(out, model="rknet", limit_train=64)
    train(replace(config, stop_after=1))
    good = (out / "checkpoint.pt").read_bytes()

    def crash(obj: object, handle: io.BufferedWriter) -> None:
        handle.write(good[:1000])  # half-written, then the process dies
        raise OSError("No space left on device (simulated)")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="simulated"):
        train(replace(config, resume=True))
    monkeypatch.undo()

    assert (out / "checkpoint.pt").read_bytes() == good
    assert load_checkpoint(out / "checkpoint.pt")["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]  # no temporary file left
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2  # epoch 2 was logged before the crash

    # Resuming drops the orphan epoch-2 line and redoes the epoch exactly.
    train(replace(config, resume=True))
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    train(replace(config, out=str(tmp_path / "whole")))
    assert_same_state(tmp_path / "whole", out)


def test_unwritable_temporary_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    config = tiny(out, model="resnet1", limit_train=32, limit_test=16, batch_size=16)
    train(replace(config, stop_after=1))
    good = (out / "checkpoint.pt").read_bytes()

    mkstemp = tempfile.mkstemp

    def no_temp(*args: Any, **kwargs: Any) -> tuple[int, str]:
        if kwargs.get("prefix") == ".checkpoint.pt.":
            raise PermissionError("cannot create the temporary file (simulated)")
        return mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", no_temp)
    with pytest.raises(PermissionError, match="simulated"):
        train(replace(config, resume=True))
    monkeypatch.undo()
    assert (out / "checkpoint.pt").read_bytes() == good


def test_fresh_run_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "run"
    config = tiny(out, model="resnet1", limit_train=32, limit_test=16, batch_size=16, epochs=1)
    train(config)
    good = (out / "checkpoint.pt").read_bytes()
    with pytest.raises(RunError, match="already holds a run"):
        train(config)
    assert (out / "checkpoint.pt").read_bytes() == good
