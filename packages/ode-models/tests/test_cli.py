"""The ``ode-models`` command line: training runs, their files, bad inputs."""

from __future__ import annotations

import importlib.metadata
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from ode_models._cli import main

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

    err = capsys.readouterr().err
    assert "\r" in err and "NFE-F" in err and "NFE-B" in err and "img/s" in err and "4/4" in err


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
        (["--method", "euler2"], "method: unknown method 'euler2'"),
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


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda data: data[: len(data) // 2], "not a readable checkpoint"),  # truncated
        (lambda data: b"garbage" * 100, "not a readable checkpoint"),
        (lambda data: b"", "not a readable checkpoint"),
        (lambda data: None, "not an ode-models checkpoint"),  # a valid torch file, another content
    ],
)
def test_corrupt_checkpoint_is_kept(
    finished_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], corrupt, match: str
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "run"
    out.mkdir()
    bad = corrupt((finished_run / "checkpoint.pt").read_bytes())
    if bad is None:
        torch.save({"weights": torch.zeros(3)}, out / "checkpoint.pt")
        bad = (out / "checkpoint.pt").read_bytes()
    else:
        (out / "checkpoint.pt").write_bytes(bad)
    assert main(["train", "--out", str(out), "--resume", *RESNET1_TINY, "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert match in err and str(out / "checkpoint.pt") in err
    assert (out / "checkpoint.pt").read_bytes() == bad  # untouched
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]


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
