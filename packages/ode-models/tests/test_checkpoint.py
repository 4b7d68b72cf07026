"""The checkpoint: its format and checks, plain errors for files that are not ours, recovery after a kill."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from ode_models import RunError, TrainConfig, train
from ode_models._checkpoint import (
    CHECKPOINT,
    KILL_BEFORE_RENAME,
    VERSION,
    checkpoint_digest,
    load_checkpoint,
)
from ode_models._cli import main

TIMES = {"train_time_s", "epoch_time_s", "samples_per_s", "peak_memory_bytes", "wall_time_s"}
TINY = ["--model", "resnet1", "--limit-train", "32", "--limit-test", "16", "--batch-size", "16", "--threads", "1"]
TINY += ["--no-progress"]
# odenet with the adjoint: the kill test's runs go through adaptive solves forward and backward.
ODE_TINY = ["--model", "odenet", "--rtol", "1e-2", "--atol", "1e-2", "--limit-train", "32", "--limit-test", "16"]
ODE_TINY += ["--batch-size", "16", "--epochs", "3", "--threads", "1", "--no-progress"]


def tiny(out: Path, **changes: Any) -> TrainConfig:
    """The Python API's TINY."""
    options = {"model": "resnet1", "limit_train": 32, "limit_test": 16, "batch_size": 16, "epochs": 2}
    return TrainConfig(**{**options, "threads": 1, "progress": False, "out": str(out), **changes})


def read_metrics(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_times(line: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in line.items() if k not in TIMES}


def files(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch resnet1 run of a 2-epoch schedule (resumable)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--epochs", "2", "--stop-after", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def copy_of(tmp_path: Path) -> Callable[[Path], Path]:
    def copy(run: Path) -> Path:
        target = tmp_path / "copy"
        shutil.copytree(run, target)
        return target

    return copy


# --- the format -----------------------------------------------------------------


def test_format_and_digest(finished: Path) -> None:
    checkpoint = torch.load(finished / CHECKPOINT, weights_only=True)  # plain torch, as documented
    assert checkpoint["format"] == "ode-models-checkpoint" and checkpoint["version"] == VERSION == 2
    assert checkpoint["epoch"] == 1 and checkpoint["digest"] == checkpoint_digest(checkpoint)
    assert load_checkpoint(finished / CHECKPOINT)["epoch"] == 1
    key = next(iter(checkpoint["model"]))
    checkpoint["model"][key] = checkpoint["model"][key].clone()
    checkpoint["model"][key].view(-1)[0] += 1
    assert checkpoint_digest(checkpoint) != checkpoint["digest"]


def test_version_1_checkpoints_still_load(finished: Path, tmp_path: Path) -> None:
    old = torch.load(finished / CHECKPOINT, weights_only=True)
    del old["digest"]
    old["version"] = 1
    torch.save(old, tmp_path / CHECKPOINT)
    assert load_checkpoint(tmp_path / CHECKPOINT)["epoch"] == 1


def write_random_bytes(path: Path, finished: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def write_json(path: Path, finished: Path) -> None:
    path.write_text(json.dumps({"epoch": 1, "model": "resnet1"}))


def write_truncated(path: Path, finished: Path) -> None:
    data = (finished / CHECKPOINT).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def write_other_torch_file(path: Path, finished: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, path)


def write_pickled_module(path: Path, finished: Path) -> None:
    torch.save(torch.nn.Linear(2, 2), path)  # weights_only=True refuses it; torch would advise weights_only=False


def write_newer_version(path: Path, finished: Path) -> None:
    checkpoint = torch.load(finished / CHECKPOINT, weights_only=True)
    checkpoint["version"] = 99
    torch.save(checkpoint, path)


def write_damaged_tensor(path: Path, finished: Path) -> None:
    data = bytearray((finished / CHECKPOINT).read_bytes())
    weight = torch.load(finished / CHECKPOINT, weights_only=True)["model"]["features.conv1.weight"]
    at = data.find(weight.numpy().tobytes()[:64])
    assert at > 0
    data[at + 3] ^= 0x40  # a flipped bit in a weight: the archive still loads
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("write", "found"),
    [
        (write_random_bytes, "not an ode-models checkpoint: not a torch archive (a zip file); it starts with"),
        (write_json, 'not an ode-models checkpoint: not a torch archive (a zip file); it starts with b\'{"epoch"'),
        (lambda path, finished: path.write_bytes(b""), "not an ode-models checkpoint: the file is empty"),
        (write_truncated, "not a readable checkpoint: a truncated or damaged torch archive"),
        (write_other_torch_file, "a torch file without the checkpoint's format key (it holds keys 'weights')"),
        (write_pickled_module, "a torch file with objects other than tensors, numbers, strings and containers"),
        (write_newer_version, "checkpoint format version 99; this ode-models reads versions 1 and 2"),
        (write_damaged_tensor, "damaged checkpoint: its contents differ from the digest"),
    ],
    ids=["random-bytes", "json", "empty", "truncated", "other-torch-file", "pickled-module", "newer", "bit-flip"],
)
def test_a_file_that_is_not_our_checkpoint_gets_a_plain_message(
    finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], write: Any, found: str
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    write(out / CHECKPOINT, finished)
    before = (out / CHECKPOINT).read_bytes()
    assert main(["train", *TINY, "--epochs", "2", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ode-models: error: {out / CHECKPOINT}: ")  # names the path
    assert found in err
    if "not an ode-models checkpoint" in found:
        assert "expected the torch.save archive that 'ode-models train' writes" in err
    assert "weights_only" not in err and "will likely succeed" not in err
    assert "left as it is" in err
    assert (out / CHECKPOINT).read_bytes() == before
    assert files(out) == [CHECKPOINT]


# --- recovery after a kill ----------------------------------------------------------------


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    assert main(["train", *ODE_TINY, "--out", str(out)]) == 0
    return out


def killed_run(out: Path, epoch: int) -> subprocess.CompletedProcess[str]:
    """``ode-models train`` in a subprocess that SIGKILLs itself at the worst moment of epoch ``epoch``'s checkpoint:
    complete in its temporary file, not yet renamed (the test hook, rather than racing a real kill)."""
    env = {**os.environ, KILL_BEFORE_RENAME: str(epoch), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ode_models", "train", *ODE_TINY, "--out", str(out)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow  # training subprocesses
@pytest.mark.parametrize("killed_at", [1, 2], ids=["no-checkpoint-yet", "checkpoint-one-epoch-older"])
def test_a_kill_before_the_rename_costs_no_epoch(
    uninterrupted: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], killed_at: int
) -> None:
    out = tmp_path / "run"
    killed = killed_run(out, killed_at)
    assert killed.returncode in (-signal.SIGKILL, 137), killed.stderr[-2000:]
    (temporary,) = out.glob(".checkpoint.pt.*.tmp")
    assert load_checkpoint(temporary)["epoch"] == killed_at
    if killed_at == 1:
        assert not (out / CHECKPOINT).exists()
    else:
        assert load_checkpoint(out / CHECKPOINT)["epoch"] == killed_at - 1
    assert len(read_metrics(out)) == killed_at  # the epoch's line was written before its checkpoint

    assert main(["train", *ODE_TINY, "--resume", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: resuming from {temporary.name} (epoch {killed_at}, complete" in err
    assert err.count("train loss") == 3 - killed_at  # only the epochs after the kill are trained
    assert files(out) == [CHECKPOINT, "metrics.jsonl", "results.json"]  # promoted, nothing left over

    # Bit for bit the uninterrupted run: results, every metrics line, weights and optimizer state.
    resumed, whole = (json.loads((run / "results.json").read_text()) for run in (out, uninterrupted))
    for results in (resumed, whole):
        del results["config"]["out"], results["config"]["resume"]
    assert without_times(resumed) == without_times(whole)
    assert [without_times(m) for m in read_metrics(out)] == [without_times(m) for m in read_metrics(uninterrupted)]
    mine, theirs = load_checkpoint(out / CHECKPOINT), load_checkpoint(uninterrupted / CHECKPOINT)
    assert mine["model"].keys() == theirs["model"].keys()
    for key, value in mine["model"].items():
        assert torch.equal(value, theirs["model"][key]), key
    for state, other in zip(mine["optimizer"]["state"].values(), theirs["optimizer"]["state"].values()):
        assert torch.equal(state["momentum_buffer"], other["momentum_buffer"])
    assert torch.equal(mine["rng"]["torch"], theirs["rng"]["torch"])


def test_orphaned_temporary_files_are_removed(finished: Path, copy_of: Callable[[Path], Path]) -> None:
    out = copy_of(finished)
    (out / ".checkpoint.pt.cut0ff00.tmp").write_bytes((out / CHECKPOINT).read_bytes()[:5000])  # killed mid-write
    shutil.copy(out / CHECKPOINT, out / ".checkpoint.pt.0ldc0py0.tmp")  # complete, but not newer
    (out / ".metrics.jsonl.x1y2z3w4.tmp").write_text("{}\n")
    (out / ".results.json.x1y2z3w4.tmp").write_text("{")
    log = io.StringIO()
    results = train(tiny(out, resume=True), log=log)
    assert results["complete"] and results["epochs_completed"] == 2
    assert "resuming from" not in log.getvalue()  # checkpoint.pt was the newest
    assert files(out) == [CHECKPOINT, "metrics.jsonl", "results.json"]


def test_a_fresh_run_does_not_discard_a_complete_temporary_checkpoint(
    finished: Path, copy_of: Callable[[Path], Path]
) -> None:
    out = copy_of(finished)
    (out / CHECKPOINT).rename(out / ".checkpoint.pt.k1ll3d00.tmp")  # killed before the first rename
    with pytest.raises(RunError, match="already holds a run"):
        train(tiny(out), log=io.StringIO())
    assert files(out) == [".checkpoint.pt.k1ll3d00.tmp", "metrics.jsonl"]


def test_a_fresh_run_removes_an_incomplete_temporary_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.pt.cut0ff00.tmp").write_bytes(b"PK\x03\x04" + bytes(100))
    train(tiny(out, epochs=1), log=io.StringIO())
    assert files(out) == [CHECKPOINT, "metrics.jsonl", "results.json"]


def test_resume_with_only_an_incomplete_temporary_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / ".checkpoint.pt.cut0ff00.tmp").write_bytes(b"PK\x03\x04" + bytes(100))
    assert main(["train", *TINY, "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--resume: no checkpoint '{out / CHECKPOINT}' to resume from (only 1 incomplete temporary file" in err


TASK_TINY = {
    "density": ["--task", "density", "--limit-train", "128", "--limit-test", "64", "--batch-size", "64"],
    "density-mnist": [
        "--task",
        "density",
        "--dataset",
        "mnist",
        "--limit-train",
        "16",
        "--limit-test",
        "8",
        "--batch-size",
        "8",
    ],
    "latent": ["--task", "latent", "--limit-train", "64", "--limit-test", "16", "--batch-size", "32"],
}


@pytest.mark.slow  # training subprocesses
@pytest.mark.parametrize("task", list(TASK_TINY))
def test_a_killed_flow_or_latent_run_resumes_bit_for_bit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str
) -> None:
    arguments = [*TASK_TINY[task], "--rtol", "1e-2", "--atol", "1e-2", "--epochs", "2", "--threads", "1"]
    arguments += ["--no-progress"]
    whole = tmp_path / "whole"
    assert main(["train", *arguments, "--out", str(whole)]) == 0
    out = tmp_path / "killed"
    env = {**os.environ, KILL_BEFORE_RENAME: "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ode_models", "train", *arguments, "--out", str(out)]
    killed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert killed.returncode in (-signal.SIGKILL, 137), killed.stderr[-2000:]
    assert main(["train", *arguments, "--resume", "--out", str(out)]) == 0
    assert "note: resuming from" in capsys.readouterr().err
    assert [without_times(m) for m in read_metrics(out)] == [without_times(m) for m in read_metrics(whole)]
    mine, theirs = load_checkpoint(out / CHECKPOINT), load_checkpoint(whole / CHECKPOINT)
    for key, value in mine["model"].items():
        assert torch.equal(value, theirs["model"][key]), key
    assert torch.equal(mine["rng"]["torch"], theirs["rng"]["torch"])
