"""Two CPU processes under torchrun (gloo): DistributedDataParallel and rank-0 output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    not __import__("torch").distributed.is_available(), reason="torch.distributed is not available"
)


def test_two_processes_on_gloo(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    command += ["-m", "ode_models", "train", "--model", "rknet", "--limit-train", "64", "--limit-test", "30"]
    command += ["--batch-size", "32", "--epochs", "1", "--threads", "1", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.perf_counter() - start
    assert done.returncode == 0, done.stderr[-3000:]
    assert elapsed < 60

    results = json.loads((out / "results.json").read_text())
    assert (results["rank"], results["world_size"]) == (0, 2)  # written by rank 0, of two
    assert results["complete"] and results["nfe_forward"] == 16
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "results.json"]
    (line,) = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    # 64 images = 2 ranks x 2 batches of 16; the test set's 30 images split 15 + 15.
    assert line["train_acc"] * 64 == pytest.approx(round(line["train_acc"] * 64))
    assert line["test_error"] * 30 == pytest.approx(round(line["test_error"] * 30))
    assert done.stderr.count("test error") == 1  # rank 0 alone logs
