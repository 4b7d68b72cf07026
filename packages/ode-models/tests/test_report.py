"""ode_models.report and ``ode-models report``: the comparison table and plots."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ode_models import TrainConfig, report, train
from ode_models._cli import main

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    common = {"limit_train": 32, "limit_test": 16, "batch_size": 16, "threads": 1, "progress": False}
    dirs = []
    for name, epochs, stop in (("resnet1", 2, None), ("rknet", 2, None), ("odenet", 3, 2)):
        out = root / name
        train(TrainConfig(model=name, epochs=epochs, stop_after=stop, out=str(out), rtol=1e-2, atol=1e-2, **common))
        dirs.append(out)
    return dirs


def test_table(runs: list[Path]) -> None:
    table = report(runs)
    lines = table.splitlines()
    assert lines[0] == "| Model | Test error | # Params | Memory | Time | NFE-F | NFE-B |"
    assert lines[1].startswith("|---|")
    assert len(lines) == 5
    resnet, rknet, odenet = (line.split(" | ") for line in lines[2:])
    results = json.loads((runs[0] / "results.json").read_text())
    assert resnet[0] == "| resnet1"
    assert resnet[1] == f"{100 * results['test_error']:.2f}%"
    assert resnet[2] == "0.21M (206,986)"
    assert resnet[3].endswith(" MiB") and resnet[4].endswith(" s")
    assert resnet[5:] == ["—", "— |"]  # no ODE block
    assert rknet[0] == "| rknet" and rknet[5:] == ["16.0", "0.0 |"]  # rk4: 4 steps x 4 stages, backprop
    assert odenet[0] == "| odenet (epoch 2, unfinished)" and odenet[2] == "—"
    assert float(odenet[5]) > 0 and float(odenet[6].rstrip(" |")) > 0


def test_duplicate_models_are_labelled_by_folder(runs: list[Path]) -> None:
    lines = report([runs[0], runs[0]]).splitlines()
    assert lines[2].startswith("| resnet1 (resnet1) |")


def test_plots(runs: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *map(str, runs), "--plot-dir", str(tmp_path / "plots")]) == 0
    captured = capsys.readouterr()
    assert captured.out == report(runs)
    for name in ("test_error.png", "nfe.png"):
        path = tmp_path / "plots" / name
        assert path.read_bytes().startswith(PNG) and path.stat().st_size > 5000
        assert str(path) in captured.err


def test_no_nfe_plot_without_ode_models(runs: list[Path], tmp_path: Path) -> None:
    report(runs[:1], plot_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test_error.png"]


def test_bad_run_dirs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing"), "--no-plots"]) == 1
    assert "not a run folder" in capsys.readouterr().err
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{")
    assert main(["report", str(tmp_path / "broken"), "--no-plots"]) == 1
    assert "invalid JSON" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["report"])


def test_plots_go_next_to_the_runs_by_default(runs: list[Path]) -> None:
    """Without --plot-dir: one run's plots in its folder, several runs' in
    the folder holding them all; never the current directory."""
    assert main(["report", str(runs[0])]) == 0
    assert (runs[0] / "test_error.png").is_file()
    assert main(["report", *map(str, runs)]) == 0
    common = Path(os.path.commonpath([str(run.resolve()) for run in runs]))
    assert (common / "test_error.png").is_file()
