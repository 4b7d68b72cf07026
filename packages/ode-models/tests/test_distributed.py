"""Two CPU processes on gloo: DistributedDataParallel, rank-0 output, and every rank exiting when the run ends.

The ranks are launched the way torchrun launches its workers (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), but directly, each in a
session of its own: the test sees when each one exits and kills whatever
is left, so it can fail but never hang (torchrun starts its workers in
sessions of their own, which killing torchrun leaves running).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ode_models._checkpoint import KILL_BEFORE_RENAME

pytestmark = [
    pytest.mark.slow,  # two training processes per run
    pytest.mark.skipif(not __import__("torch").distributed.is_available(), reason="torch.distributed is not available"),
]

EXIT_BOUND_S = 120.0  # how long after the first rank exits the others may take
RUN_BOUND_S = 300.0  # the whole run, however loaded the machine
TINY = ["--model", "rknet", "--limit-train", "64", "--limit-test", "30", "--batch-size", "32", "--threads", "1"]


@dataclass
class Ranks:
    """Processes of one run, their exit statuses and exit times (``time.monotonic()``)."""

    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]
    exits: dict[int, tuple[int, float]] = field(default_factory=dict)

    def wait(self) -> None:
        """Wait for every rank: at most RUN_BOUND_S in all, EXIT_BOUND_S after the first exit; kill the rest."""
        start = time.monotonic()
        while len(self.exits) < len(self.processes):
            now = time.monotonic()
            for rank, process in enumerate(self.processes):
                if rank not in self.exits and process.poll() is not None:
                    self.exits[rank] = (process.returncode, now)
            first = min((t for _, t in self.exits.values()), default=None)
            if now - start > RUN_BOUND_S or (first is not None and now - first > EXIT_BOUND_S):
                break
            time.sleep(0.05)
        self.kill()

    def kill(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stderr(self, rank: int) -> str:
        return self.logs[rank].read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


Launch = Callable[..., Ranks]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """``launch(arguments, env_of_rank)``: start ``python -m ode_models ARGUMENTS`` as two gloo ranks."""
    started: list[Ranks] = []

    def start(arguments: list[str], extra_env: dict[int, dict[str, str]] | None = None) -> Ranks:
        port = free_port()
        processes, logs = [], []
        for rank in range(2):
            env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "MASTER_ADDR": "127.0.0.1"}
            env |= {"MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_RANK": str(rank)}
            env |= {"LOCAL_WORLD_SIZE": "2", **(extra_env or {}).get(rank, {})}
            logs.append(tmp_path / f"launch{len(started)}-rank{rank}.log")
            with logs[-1].open("wb") as log:
                command = [sys.executable, "-m", "ode_models", *arguments]
                processes.append(
                    subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
                )
        ranks = Ranks(processes, logs)
        started.append(ranks)
        return ranks

    yield start
    for ranks in started:  # also when the test failed half-way
        ranks.kill()


def test_two_processes_on_gloo_both_exit(launch: Launch, tmp_path: Path) -> None:
    out = tmp_path / "run"
    ranks = launch(["train", *TINY, "--epochs", "1", "--out", str(out)])
    ranks.wait()
    assert len(ranks.exits) == 2, f"rank(s) still running were killed: {ranks.stderr(1)[-3000:]}"
    (code0, exit0), (code1, exit1) = ranks.exits[0], ranks.exits[1]
    assert (code0, code1) == (0, 0), ranks.stderr(0)[-3000:] + ranks.stderr(1)[-3000:]
    assert abs(exit1 - exit0) < EXIT_BOUND_S

    results = json.loads((out / "results.json").read_text())
    assert (results["rank"], results["world_size"]) == (0, 2)  # written by rank 0, of two
    assert results["complete"] and results["nfe_forward"] == 16
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "results.json"]
    (line,) = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    # 64 images = 2 ranks x 2 batches of 16; the test set's 30 images split 15 + 15.
    assert line["train_acc"] * 64 == pytest.approx(round(line["train_acc"] * 64))
    assert line["test_error"] * 30 == pytest.approx(round(line["test_error"] * 30))
    assert ranks.stderr(0).count("test error") == 1 and "test error" not in ranks.stderr(1)  # rank 0 alone logs


def test_when_a_rank_dies_the_other_exits(launch: Launch, tmp_path: Path) -> None:
    """Rank 0 is killed writing its first checkpoint (while rank 1 goes on to epoch 2): rank 1 must
    not wait for it, but fail and exit; the run resumes from the complete temporary checkpoint."""
    out = tmp_path / "run"
    ranks = launch(["train", *TINY, "--epochs", "2", "--out", str(out)], {0: {KILL_BEFORE_RENAME: "1"}})
    ranks.wait()
    assert len(ranks.exits) == 2, f"rank 1 was still running (killed): {ranks.stderr(1)[-3000:]}"
    assert ranks.exits[0][0] == -signal.SIGKILL
    assert ranks.exits[1][0] != 0
    assert ranks.exits[1][1] - ranks.exits[0][1] < EXIT_BOUND_S
    (temporary,) = out.glob(".checkpoint.pt.*.tmp")
    assert not (out / "checkpoint.pt").exists()

    ranks = launch(["train", *TINY, "--epochs", "2", "--out", str(out), "--resume"])
    ranks.wait()
    assert [ranks.exits[rank][0] for rank in (0, 1)] == [0, 0], ranks.stderr(0)[-3000:] + ranks.stderr(1)[-3000:]
    assert f"resuming from {temporary.name} (epoch 1" in ranks.stderr(0)
    assert json.loads((out / "results.json").read_text())["epochs_completed"] == 2
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "metrics.jsonl", "results.json"]


def test_when_a_rank_fails_the_other_exits(launch: Launch, tmp_path: Path) -> None:
    """Rank 0 alone writes, so an --out below a regular file fails there only (after the ranks
    met): rank 0 reports it and leaves the group, rank 1's next collective fails, and both exit."""
    (tmp_path / "file").write_text("not a folder")
    ranks = launch(["train", *TINY, "--epochs", "1", "--out", str(tmp_path / "file" / "run")])
    ranks.wait()
    assert len(ranks.exits) == 2, f"rank 1 was still running (killed): {ranks.stderr(1)[-3000:]}"
    assert ranks.exits[0][0] == 1 and "ode-models: error: " in ranks.stderr(0)
    assert ranks.exits[1][0] != 0
    assert abs(ranks.exits[1][1] - ranks.exits[0][1]) < EXIT_BOUND_S


@pytest.mark.parametrize(
    ("task", "dataset", "primary"),
    [("density", "", "test_nll"), ("density", "mnist", "test_bits_per_dim"), ("latent", "", "test_extrapolation_mse")],
)
def test_the_other_tasks_train_on_two_processes(
    launch: Launch, tmp_path: Path, task: str, dataset: str, primary: str
) -> None:
    out = tmp_path / task
    arguments = ["train", "--task", task, "--limit-train", "64", "--limit-test", "16", "--batch-size", "32"]
    arguments += ["--dataset", dataset] if dataset else []
    arguments += ["--epochs", "1", "--threads", "1", "--rtol", "1e-2", "--atol", "1e-2", "--out", str(out)]
    ranks = launch(arguments)
    ranks.wait()
    assert len(ranks.exits) == 2, f"rank(s) still running were killed: {ranks.stderr(1)[-3000:]}"
    assert (ranks.exits[0][0], ranks.exits[1][0]) == (0, 0), ranks.stderr(0)[-3000:] + ranks.stderr(1)[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert (results["task"], results["world_size"], results["complete"]) == (task, 2, True)
    assert results[primary] == results[primary]  # a number, not NaN
