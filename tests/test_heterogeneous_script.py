"""benchmarks/bench_heterogeneous.py: every row it reports, on small batches, with the per-sample counts it claims."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

import pytest
import torch

QUICK = {"min_time": 0.0, "min_repeats": 1, "max_repeats": 1, "max_case_time": 0.0}


@pytest.fixture(scope="module")
def script(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("bench_heterogeneous")


@pytest.mark.slow
def test_every_problem_measures_its_rows(script: ModuleType) -> None:
    from benchmarks._fields import HETEROGENEOUS_PROBLEMS

    torch._dynamo.reset()
    for title, (make, _, compactable) in HETEROGENEOUS_PROBLEMS.items():
        rows, compile_seconds = script.measure(make, 4, QUICK, torch.device("cpu"), compactable)
        by_name = {row["implementation"]: row for row in rows}
        expected = {
            "ode-adjoint, per sample",
            "ode-adjoint, per sample, compiled",
            "torchode, per sample",
            "ode-adjoint, joint",
            "torchdiffeq, joint",
            "ode-adjoint, each sample alone",
        }
        if compactable:
            expected |= {"ode-adjoint, per sample, compact", "ode-adjoint, per sample, compact, compiled"}
        assert set(by_name) == expected, title
        alone = by_name["ode-adjoint, each sample alone"]
        for name in expected - {"torchode, per sample", "ode-adjoint, joint", "torchdiffeq, joint"}:
            # The per-sample mode takes each sample's own steps: the evaluations of solving it alone.
            assert by_name[name]["evaluations"] == alone["evaluations"], (title, name)
        assert by_name["ode-adjoint, per sample"]["host_reads"] < by_name["ode-adjoint, joint"]["host_reads"]
        assert all(row["ms"] > 0 and row["max_error"] < 1e-3 for row in rows), title
        assert compile_seconds > 0
        assert "| ode-adjoint, per sample |" in script._table(rows)


def test_the_gradients_of_every_engine_and_peer(script: ModuleType) -> None:
    """The gradient table: every engine with and without compaction, torchode and the joint solves, each
    close to the tight reference gradient; backward evaluations counted for checkpoint and adjoint only."""
    from benchmarks._fields import heterogeneous_neural_batch

    rows = script.measure_gradients(heterogeneous_neural_batch, 6, QUICK, torch.device("cpu"))
    by_name = {row["implementation"]: row for row in rows}
    engines = {f"ode-adjoint, per sample, {gradient}" for gradient in ("backprop", "checkpoint", "adjoint")}
    assert set(by_name) == (
        engines
        | {name + ", compact" for name in engines}
        | {"torchode, per sample", "ode-adjoint, joint", "torchdiffeq, joint"}
    )
    assert all(row["ms"] > 0 and row["max gradient error"] < 1e-3 for row in rows)
    assert by_name["ode-adjoint, per sample, backprop"]["backward evaluations per sample"] is None
    for name in ("ode-adjoint, per sample, checkpoint", "ode-adjoint, per sample, adjoint, compact"):
        assert by_name[name]["backward evaluations per sample"] > 0
    assert "| ode-adjoint, per sample, adjoint, compact |" in script._gradient_table(rows)
