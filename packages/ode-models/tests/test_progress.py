"""Progress on the log stream: tqdm's bar on a terminal, the plain per-epoch lines elsewhere or without tqdm."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from ode_models import TrainConfig, train
from ode_models._progress import EpochProgress, is_terminal


class Terminal(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def tiny(out: Path, **changes: object) -> TrainConfig:
    options: dict[str, object] = {"model": "rknet", "limit_train": 64, "limit_test": 16, "batch_size": 16}
    return TrainConfig(**{**options, "epochs": 2, "threads": 1, "out": str(out), **changes})  # type: ignore[arg-type]


def summaries(text: str) -> list[str]:
    return [line for line in text.replace("\r", "\n").splitlines() if ": train loss " in line]


def test_a_terminal_gets_a_tqdm_bar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    monkeypatch.setattr(EpochProgress, "refresh_s", 0.0)  # every batch redrawn, however fast
    log = Terminal()
    train(tiny(tmp_path / "run"), log=log)
    text = log.getvalue()
    assert "\r" in text and "4/4" in text and "batch/s" in text  # tqdm's bar: 4 batches of 16
    assert "NFE-F 16.0" in text and "img/s" in text  # the running status after the bar
    assert [line.split(":")[0] for line in summaries(text)] == ["epoch 1/2", "epoch 2/2"]


def test_anything_else_gets_one_line_per_epoch(tmp_path: Path) -> None:
    log = io.StringIO()  # a file, a pipe, a batch job's log
    train(tiny(tmp_path / "run"), log=log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 2 and lines == summaries(log.getvalue())
    assert lines[0].startswith("epoch 1/2: train loss ") and "| test error " in lines[0] and "NFE-F 16.0" in lines[0]


def test_without_tqdm_a_terminal_gets_the_plain_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # `import tqdm` raises ImportError
    log = Terminal()
    train(tiny(tmp_path / "run"), log=log)
    assert "\r" not in log.getvalue() and len(summaries(log.getvalue())) == 2


def test_no_progress_turns_the_bar_off(tmp_path: Path) -> None:
    log = Terminal()
    train(tiny(tmp_path / "run", progress=False), log=log)
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) == 2


def test_is_terminal() -> None:
    assert is_terminal(Terminal()) and not is_terminal(io.StringIO())
    closed = io.StringIO()
    closed.close()
    assert not is_terminal(closed)
    progress = EpochProgress("epoch 1/1", 3, None)
    assert not progress.shows_bar
    progress.step("ignored")
    progress.close("nowhere to write")
