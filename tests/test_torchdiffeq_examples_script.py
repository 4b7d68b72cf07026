"""benchmarks/torchdiffeq_examples.py: its parsing of the examples' output, the pairing and the table.

Runs no example (their code is not part of the project) and starts no interpreter.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def script(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("torchdiffeq_examples")


def test_parses_the_last_loss_each_example_prints(script: ModuleType) -> None:
    outputs = {
        "ode_demo": "Iter 0010 | Total Loss 1.212389\nIter 0020 | Total Loss 0.937045\n",
        "latent_ode": "Saved ground truth spiral at ./ground_truth.png\n"
        "Iter: 1, running avg elbo: -19985.6981\nIter: 2, running avg elbo: -19985.7000\n"
        "Training complete after 2 iters.\n",
        "cnf": "Iter: 1, running avg loss: 2.6116\nIter: 2, running avg loss: nan\nTraining complete after 2 iters.\n",
        "learn_physics": "0 17.726109089816237 1\n10 0.8983242093323366 3\n",
    }
    expected = {
        "ode_demo": [1.212389, 0.937045],
        "latent_ode": [-19985.6981, -19985.7],
        "cnf": [2.6116],
        "learn_physics": [17.726109089816237, 0.8983242093323366],
    }
    for name, text in outputs.items():
        losses = script.parse_losses(text, script.EXAMPLES[name].pattern)
        assert losses[: len(expected[name])] == expected[name]
    assert script.parse_losses("Gradient check passed.\n", script.EXAMPLES["bouncing_ball"].pattern) == []


def test_reads_the_childs_result_from_its_last_marked_line(script: ModuleType) -> None:
    mark = script.RESULT_MARK
    text = f'Iter 0001 | Total Loss 0.5\n{mark}{{"status": 1}}\nnoise\n{mark}{{"status": 0, "wall_s": 1.5}}\n'
    assert script.parse_result(text) == {"status": 0, "wall_s": 1.5}
    assert script.parse_result("Traceback (most recent call last):\n") is None


def test_flags_per_variant(script: ModuleType) -> None:
    examples = script.EXAMPLES
    assert examples["ode_demo"].argv("adjoint", 20, 10) == ["--niters", "20", "--test_freq", "10", "--adjoint"]
    assert examples["latent_ode"].argv("backprop", 4, 10) == ["--niters", "4", "--adjoint", "False"]
    assert examples["bouncing_ball"].argv("backprop", 4, 3) == ["3"]
    assert set(examples["bouncing_ball"].variants) == {"backprop"}
    assert examples["learn_physics"].argv("events", 20, 3) == ["--num_iterations", "20", "--save", "figs"]
    assert [(e.name, v) for e, v in script.selected(["cnf:adjoint", "bouncing_ball"])] == [
        ("bouncing_ball", "backprop"),
        ("cnf", "adjoint"),
    ]


def test_the_shim_goes_first_only_for_ode_adjoint(script: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(["/shim", "/elsewhere"]))
    ours = script.child_environment("ode_adjoint", "/shim", 1, cuda=False)
    theirs = script.child_environment("torchdiffeq", "/shim", 1, cuda=False)
    assert ours["PYTHONPATH"].split(os.pathsep) == ["/shim", "/elsewhere"]
    assert theirs["PYTHONPATH"].split(os.pathsep) == ["/elsewhere"]
    assert ours["OMP_NUM_THREADS"] == theirs["OMP_NUM_THREADS"] == "1"
    assert ours["CUDA_VISIBLE_DEVICES"] == "" and ours["MPLBACKEND"] == "Agg"


def test_pairs_runs_into_a_table(script: ModuleType) -> None:
    def row(library: str, status: str, loss: float | None, wall: float | None, **extra: object) -> dict[str, object]:
        final = {"final_loss": loss} if loss is not None else {}
        return {"example": "cnf", "variant": "adjoint", "library": library, "status": status, "loss": loss,
                "wall_s": wall, "cpu_s": wall and wall / 2, "extras": final, **extra}  # fmt: skip

    rows = [row("torchdiffeq", "ok", 2.0, 4.0), row("ode_adjoint", "ok", 2.01, 2.0)]
    (summary,) = script.pair_rows(rows, loss_rtol=1e-2)
    assert summary["ratio"] == pytest.approx(0.5)
    assert summary["loss_like_torchdiffeqs"] is True
    assert summary["loss_rel_diff"] == pytest.approx(5e-3)
    table = script.markdown_table([summary])
    expected = (
        "| cnf | adjoint | running avg loss | ok | ok | yes | 2 | 2.01 | "
        + "5.0e-03 | 5.0e-03 | 4.00 | 2.00 | 0.50 | 0.50 |"
    )
    assert expected in table.splitlines()

    failed = [row("torchdiffeq", "ok", 2.0, 4.0), row("ode_adjoint", "error", 3.0, None, error="TypeError: boom")]
    (summary,) = script.pair_rows(failed, loss_rtol=1e-2)
    assert summary["ode_adjoint_status"] == "FAIL" and summary["ode_adjoint_error"] == "TypeError: boom"
    assert summary["ratio"] is None and summary["loss_like_torchdiffeqs"] is None  # a failed run's partial loss
    assert summary["loss_rel_diff"] is None and summary["final_loss_rel_diff"] is None
