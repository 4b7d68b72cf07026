"""The ``ode-models`` command line: training runs, their files, bad inputs."""

from __future__ import annotations

import importlib.metadata
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import ode_adjoint
import ode_core
import ode_models
import pytest
from ode_models import TrainConfig
from ode_models._cli import main
from ode_models._config import long_cpu_run_hint

# <repo root>/../shared/data/MNIST/raw: read only, never written to.
REAL_MNIST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "MNIST" / "raw"
MNIST_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
needs_real_mnist = pytest.mark.skipif(
    not all((REAL_MNIST / f"{n}.gz").is_file() or (REAL_MNIST / n).is_file() for n in MNIST_NAMES),
    reason=f"the official MNIST files are not in {REAL_MNIST}",
)

RESULT_KEYS = {"test_error", "params", "peak_memory_bytes", "wall_time_s", "nfe_forward", "nfe_backward", "config"}
METRIC_KEYS = {
    "epoch",
    "train_loss",
    "train_acc",
    "test_error",
    "lr",
    "nfe_forward",
    "nfe_backward",
    "epoch_time_s",
}
FAST = ["--threads", "1", "--epochs", "1"]


def read_metrics(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(directory.rglob("*"))}


@pytest.mark.slow  # a training epoch on 60,000 images' files
@needs_real_mnist
def test_one_epoch_on_real_mnist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(REAL_MNIST)
    out = tmp_path / "odenet"
    argv = ["train", "--model", "odenet", "--rtol", "1e-2", "--atol", "1e-2", "--data-dir", str(REAL_MNIST)]
    argv += ["--limit-train", "256", "--limit-test", "128", "--batch-size", "64", "--out", str(out), *FAST]
    assert main(argv) == 0
    assert snapshot(REAL_MNIST) == before  # read, never written

    results = json.loads((out / "results.json").read_text())
    assert results.keys() >= RESULT_KEYS
    assert results["complete"] and results["epochs_completed"] == 1
    assert 0 <= results["test_error"] <= 1
    assert results["params"] == 208_266
    assert results["peak_memory_bytes"] > 0 and results["wall_time_s"] > 0
    assert results["nfe_forward"] >= 8 and results["nfe_backward"] > 0
    assert results["config"]["data_dir"] == str(REAL_MNIST) and results["config"]["limit_train"] == 256
    assert results["initial_lr"] == pytest.approx(0.1 * 64 / 128)

    (line,) = read_metrics(out)
    assert line.keys() >= METRIC_KEYS
    assert line["epoch"] == 1 and line["lr"] == pytest.approx(0.05)
    assert line["test_error"] == results["test_error"] and line["nfe_forward"] == results["nfe_forward"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "results.json"]

    err = capsys.readouterr().err  # not a terminal: no bar, the epoch's line
    assert err.startswith("epoch 1/1: train loss ") and "NFE-F" in err and "NFE-B" in err
    assert "\r" not in err and "hint" not in err and len(err.splitlines()) == 1


def test_embedded_mnist_is_the_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["train", "--model", "resnet1", "--limit-train", "64", "--limit-test", "32", "--batch-size", "32"]
    assert main([*argv, "--out", str(out), "--no-progress", *FAST]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["data_dir"] is None
    assert results["nfe_forward"] == 0 and results["params"] == 206_986
    err = capsys.readouterr().err
    assert "\r" not in err and "test error" in err  # the epoch summary without a bar


def write_cifar_batch(path: Path, n: int, seed: int) -> None:
    # The on-disk format of CIFAR-10's python batches (see test_data.py).
    rng = np.random.default_rng(seed)
    batch = {
        b"batch_label": b"synthetic batch",
        b"labels": [int(v) for v in rng.integers(0, 10, n)],
        b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(batch, handle, protocol=2)


def test_synthetic_cifar10_epoch(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for i in range(1, 6):
        write_cifar_batch(root / "cifar-10-batches-py" / f"data_batch_{i}", 8, seed=i)
    write_cifar_batch(root / "cifar-10-batches-py" / "test_batch", 10, seed=0)
    before = snapshot(root)
    out = tmp_path / "run"
    argv = ["train", "--dataset", "cifar10", "--model", "rknet", "--data-dir", str(root), "--batch-size", "20"]
    assert main([*argv, "--out", str(out), *FAST]) == 0
    assert snapshot(root) == before
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"] == "cifar10" and results["params"] == 208_266 + 2 * 64 * 9
    assert results["nfe_forward"] == 16 and results["nfe_backward"] == 0  # rk4, 4 steps, backprop
    (line,) = read_metrics(out)
    assert line["train_acc"] * 40 == pytest.approx(round(line["train_acc"] * 40))  # 40 training images
    assert line["test_error"] * 10 == pytest.approx(round(line["test_error"] * 10))


# --- bad inputs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--model", "vgg"], "argument --model: invalid choice: 'vgg'"),
        (["--dataset", "svhn"], "argument --dataset: invalid choice: 'svhn'"),
        (["--batch-size", "0"], "argument --batch-size: expected a positive integer, got '0'"),
        (["--batch-size", "-4"], "argument --batch-size: expected a positive integer, got '-4'"),
        (["--batch-size", "ten"], "argument --batch-size: expected a positive integer, got 'ten'"),
        (["--rtol", "0"], "argument --rtol: expected a positive number"),
        (["--device", "tpu"], "argument --device: invalid choice"),
        (["--method", "euler2"], "argument --method: invalid choice: 'euler2' (choose from 'euler', 'midpoint',"),
        (["--gradient", "exact"], "argument --gradient: invalid choice: 'exact'"),
    ],
)
def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["train", "--out", str(tmp_path / "run"), *args])
    assert info.value.code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_no_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (
            ["--data-dir", "{tmp}/missing"],
            "data dir '{tmp}/missing' does not exist (nothing is downloaded without --download)",
        ),
        (["--data-dir", "{tmp}"], "MNIST train data not found in data dir '{tmp}'"),
        (["--dataset", "cifar10"], "cifar10 needs a data dir"),
        (["--dataset", "cifar10", "--data-dir", "{tmp}"], "CIFAR-10 train data not found in data dir"),
        (["--resume"], "--resume: no checkpoint '{tmp}/run/checkpoint.pt' to resume from"),
        (["--model", "rknet", "--method", "dopri5"], "rknet uses a fixed-step method"),
    ],
)
def test_bad_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], match: str) -> None:
    argv = ["train", "--out", str(tmp_path / "run"), *(a.format(tmp=tmp_path) for a in args), *FAST]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("ode-models: error: ")
    assert match.format(tmp=tmp_path) in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    argv = ["train", "--model", "resnet1", "--limit-train", "32", "--limit-test", "16", "--batch-size", "16"]
    assert main([*argv, "--out", str(out), "--no-progress", *FAST]) == 0
    return out


RESNET1_TINY = ["--model", "resnet1", "--limit-train", "32", "--limit-test", "16", "--batch-size", "16"]
RESNET1_TINY += ["--no-progress"]


def test_refuses_to_overwrite_a_run(finished_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(finished_run)
    checkpoint = (finished_run / "checkpoint.pt").read_bytes()
    assert main(["train", "--out", str(finished_run), *RESNET1_TINY, *FAST]) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert snapshot(finished_run) == before
    assert (finished_run / "checkpoint.pt").read_bytes() == checkpoint


def test_resume_with_other_options_is_refused(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes((finished_run / "checkpoint.pt").read_bytes())
    assert main(["train", "--out", str(out), "--resume", *RESNET1_TINY, "--epochs", "1", "--lr", "0.5"]) == 1
    err = capsys.readouterr().err
    assert "the options differ" in err and "lr: None -> 0.5" in err


def test_resume_of_a_finished_run(finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes((finished_run / "checkpoint.pt").read_bytes())
    assert main(["train", "--out", str(out), "--resume", *RESNET1_TINY, "--epochs", "1"]) == 0
    assert "all 1 epochs already done" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["test_error"] == json.loads((finished_run / "results.json").read_text())["test_error"]


def test_console_script_entry_point() -> None:
    try:
        dist = importlib.metadata.distribution("ode-models")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("ode-models is not installed (tests run from the source tree)")
    (entry,) = [e for e in dist.entry_points if e.group == "console_scripts"]
    assert (entry.name, entry.value) == ("ode-models", "ode_models._cli:main")


def test_download_flag_uses_files_already_there(tmp_path: Path) -> None:
    """--download fetches only what is missing: with the real files present it
    reads them offline and writes nothing into the data dir."""
    if not REAL_MNIST.is_dir():
        pytest.skip(f"the official MNIST files are not in {REAL_MNIST}")
    before = snapshot(REAL_MNIST)
    out = tmp_path / "run"
    code = main(
        [
            "train", "--model", "resnet1", "--data-dir", str(REAL_MNIST), "--download", "--epochs", "1",
            "--limit-train", "64", "--limit-test", "32", "--out", str(out), "--no-progress", "--threads", "1",
        ]
    )  # fmt: skip
    assert code == 0
    assert (out / "results.json").is_file()
    assert snapshot(REAL_MNIST) == before


# --- help, and a hint before a long CPU run ------------------------------------------------


def train_help(capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``ode-models train --help``'s options: each option's text, unwrapped, by its first flag."""
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out.split("\noptions:\n", 1)[1]
    blocks = re.split(r"\n(?=  -)", "\n" + text)
    options = {}
    for block in filter(str.strip, blocks):
        flag = block.split()[0].rstrip(",")
        options[flag] = " ".join(re.sub(r"-\n\s+", "-", block).split())  # textwrap breaks odenet-notime
    return options


def test_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    options = train_help(capsys)
    assert len(options) == 33  # -h and the 32 options of TrainConfig
    for flag, text in options.items():
        if flag != "-h":
            assert "default" in text, f"{flag}: no default in {text!r}"
    assert "(default: 160, the paper's" in options["--epochs"]
    assert (
        "(default: 128 for classify, 512 for density, 100 for latent)" in options["--batch-size"]
        and "(default: 0.001)" in options["--rtol"]
    )
    assert "(required, no default)" in options["--out"]


def test_help_lists_the_valid_names(capsys: pytest.CaptureFixture[str]) -> None:
    options = train_help(capsys)
    assert f"one of {', '.join(ode_core.METHODS)} (default: dopri5; rk4 for rknet)" in options["--method"]
    assert f"one of {', '.join(ode_models.MODELS)} (default: odenet)" in options["--model"]
    assert f"one of {', '.join(ode_adjoint.GRADIENTS)} (default: adjoint for odenet" in options["--gradient"]
    assert "one of mnist, cifar10 (default: mnist)" in options["--dataset"]
    assert "one of cpu, cuda (default: cpu)" in options["--device"]


@pytest.mark.slow  # a subprocess that imports torch and loads the data
def test_a_bare_run_on_a_cpu_first_says_it_takes_long(tmp_path: Path) -> None:
    """``ode-models train --out X``: 160 epochs of the adjoint on a CPU. It starts (never refused)
    after a one-line hint on stderr; the test stops it once the hint is there."""
    err = tmp_path / "stderr"
    command = [sys.executable, "-m", "ode_models", "train", "--out", str(tmp_path / "run"), "--threads", "1"]
    with err.open("wb") as sink:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "hint:" not in err.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        running = process.poll() is None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    (hint,) = [line for line in err.read_text().splitlines() if line.startswith("hint:")]
    assert running  # the run had started, not been refused
    assert hint.startswith("hint: 160 epochs x 32 batches of odenet with the adjoint gradient on the CPU: roughly ")
    assert " minutes (at about 2.1 ms per training image, measured on a 2-core CPU); " in hint
    assert hint.endswith("for a first run try --epochs 10, or --device cuda")


@pytest.mark.parametrize(
    ("options", "n_train", "expected"),
    [
        ({}, 4000, "160 epochs x 32 batches of odenet with the adjoint gradient"),
        ({"epochs": 10, "gradient": "checkpoint"}, 4000, None),  # the quick start: minutes
        ({"epochs": 5, "gradient": "checkpoint", "data_dir": "DIR"}, 60_000, None),  # docs' full MNIST runs
        ({"epochs": 10, "data_dir": "DIR"}, 60_000, "with the adjoint gradient on the CPU: roughly 21 minutes"),
        ({"model": "resnet6", "data_dir": "DIR"}, 60_000, "469 batches of resnet6 on the CPU: roughly 2.3 hours"),
        ({"device": "cuda"}, 4000, None),
        ({"model": "rknet", "epochs": 10}, 4000, None),
    ],
)
def test_long_cpu_run_hint(options: dict[str, Any], n_train: int, expected: str | None) -> None:
    config = TrainConfig(**options)
    hint = long_cpu_run_hint(config, n_train, config.epochs)
    if expected is None:
        assert hint is None
    else:
        assert hint is not None and expected in hint and "\n" not in hint
    assert long_cpu_run_hint(TrainConfig(), 4000, epochs_to_run=1) is None  # what is left after a resume
