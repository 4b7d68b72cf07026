"""The published tables are the benchmark files' tables (``python benchmarks/tables.py``).

Every measured figure in the README and the docs comes from a file in
``benchmarks/measured/`` that a benchmark command wrote; these tests fail when
a generated table was edited by hand, or a file was re-measured without
regenerating the tables.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLVER_CHOICE_RUNS = ("default", "rtol-1e-2", "rtol-1e-4", "bosh3", "seminorm", "backprop", "checkpoint", "regularised")


@pytest.fixture(scope="module")
def tables() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_tables", ROOT / "benchmarks" / "tables.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_tables", module)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date(tables: ModuleType) -> None:
    stale = [
        str(path.relative_to(ROOT))
        for path, content in tables.rendered().items()
        if not path.exists() or path.read_text(encoding="utf-8") != content
    ]
    assert not stale, f"out of date (run python benchmarks/tables.py): {stale}"


def test_every_generated_table_is_included_by_the_docs(tables: ModuleType) -> None:
    pages = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "docs").rglob("*.md"))
    missing = [name for name in tables.DOCS_TABLES if f"_generated/{name}.md" not in pages]
    assert not missing, f"generated but never included in docs/: {missing}"


@pytest.mark.parametrize("name", ["adjoint_vs_peers.json", "core_vs_scipy.json", "stiff_vs_scipy.json", "memory.json"])
def test_measured_files_name_their_command_and_machine(name: str) -> None:
    with open(ROOT / "benchmarks" / "measured" / name, encoding="utf-8") as handle:
        data = json.load(handle)
    script = name.replace(".json", "")
    assert data["command"].startswith("python benchmarks/bench_"), data["command"]
    assert script.split("_")[0] in data["command"]
    for key in ("date", "cpu", "cpus_usable", "python"):
        assert data["machine"][key], key


def test_headline_block_is_in_the_readme(tables: ModuleType) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- generated: headline -->", 1)[1].split("<!-- end: headline -->", 1)[0]
    assert block.strip() == tables.headline().strip()
    assert "| measured | result |" in block


def test_mnist_full_block_is_in_the_models_readme(tables: ModuleType) -> None:
    readme = tables.MODELS_README.read_text(encoding="utf-8")
    block = readme.split("<!-- generated: mnist-full -->", 1)[1].split("<!-- end: mnist-full -->", 1)[0]
    assert block.strip() == tables.mnist_full().strip()
    assert "| odenet (odenet-regularised) |" in block and "ode-models train --dataset mnist --model resnet6" in block
    assert "| odenet-regularised | " in block  # its time against ResNet(6)'s, measured in the same sitting


@pytest.mark.parametrize(
    "folder",
    [
        "quickstart",
        "mnist-full/odenet",
        "mnist-full/odenet-regularised",
        "mnist-full/resnet1",
        "mnist-full/resnet6",
        "density/eight-gaussians",
        "density/mnist",
        "latent/latent-ode",
        "latent/rnn",
        *(f"solver-choice/{name}" for name in SOLVER_CHOICE_RUNS),
    ],
)
def test_training_runs_name_their_command_and_machine(folder: str) -> None:
    run = ROOT / "benchmarks" / "measured" / folder
    with open(run / "command.json", encoding="utf-8") as handle:
        record = json.load(handle)
    assert record["command"].startswith("ode-models train "), record["command"]
    with open(run / "results.json", encoding="utf-8") as handle:
        results = json.load(handle)
    assert results["complete"], folder
    for key in ("date", "cpu", "cpus_usable", "python"):
        assert record["machine"][key], key


def test_the_solver_choice_table_lists_reproduces_runs(tables: ModuleType) -> None:
    spec = importlib.util.spec_from_file_location("_reproduce", ROOT / "benchmarks" / "reproduce.py")
    assert spec is not None and spec.loader is not None
    reproduce = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_reproduce", reproduce)  # its dataclasses look their module up there
    spec.loader.exec_module(reproduce)
    assert tuple(reproduce.SOLVER_CHOICES) == tables.SOLVER_CHOICE_RUNS == SOLVER_CHOICE_RUNS
    assert reproduce.SOLVER_CHOICES["default"] == ""


def test_a_hand_edit_is_caught(tables: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--check`` reports a generated file that differs from its source."""
    generated = tmp_path / "_generated"
    generated.mkdir()
    for path, content in tables.rendered().items():
        if path.parent == tables.GENERATED:
            (generated / path.name).write_text(content, encoding="utf-8")
    for name, original in (("README", tables.README), ("MODELS_README", tables.MODELS_README)):
        copy = tmp_path / f"{name}.md"
        copy.write_text(original.read_text(encoding="utf-8"), encoding="utf-8")
        monkeypatch.setattr(tables, name, copy)
    monkeypatch.setattr(tables, "GENERATED", generated)
    monkeypatch.setattr(tables, "ROOT", tmp_path)
    assert tables.main(["--check"]) == 0
    edited = generated / "memory.md"
    edited.write_text(edited.read_text(encoding="utf-8").replace("|", "| ", 1), encoding="utf-8")
    assert tables.main(["--check"]) == 1


@pytest.mark.parametrize(
    ("name", "script"),
    [
        ("torchdiffeq_methods.json", "bench_torchdiffeq_methods.py"),
        ("torchdiffeq_suite.json", "torchdiffeq_suite.py"),
        ("torchdiffeq_suite_reference.json", "torchdiffeq_suite.py"),
        ("torchdiffeq_examples.json", "torchdiffeq_examples.py"),
    ],
)
def test_optional_files_name_their_command_and_machine(name: str, script: str) -> None:
    path = ROOT / "benchmarks" / "measured" / name
    if not path.exists():
        pytest.skip(f"{name} is not kept (its page says how to measure it)")
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    assert data["command"].startswith(f"python benchmarks/{script} "), data["command"]
    for key in ("date", "cpu", "cpus_usable", "python", "torch"):
        assert data["machine"][key], key


def _suite_file(shim: str, passed: list[str], failures: list[tuple[str, str]]) -> dict[str, object]:
    names = [name for name, _ in failures]
    return {
        "command": f"python benchmarks/torchdiffeq_suite.py tests --shim {shim}",
        "machine": {
            "date": "2026-01-01T00:00:00+00:00",
            "cpu": "CPU",
            "cpus_usable": 2,
            "python": "3.11",
            "torch": "2",
        },
        "source": {"tests_dir": "tests", "commit": "0123456789abcdef", "sha256": "same"},
        "shim": shim,
        "tested": "ode_adjoint 1.0, through the shim" if shim == "ode_adjoint" else "torchdiffeq 9",
        "modules": {"api_tests": {"passed": len(passed), "failed": len(names), "total": len(passed) + len(names)}},
        "totals": {"passed": len(passed), "failed": len(names), "total": len(passed) + len(names), "skipped": 0},
        "failures": [{"name": name, "module": "api_tests", "error": error} for name, error in failures],
        "passed": passed,
    }


def test_suite_table_compares_subtest_by_subtest(
    tables: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tables, "MEASURED", tmp_path)
    assert tables.torchdiffeq_suite().startswith("Not measured yet")
    assert tables.torchdiffeq_examples().startswith("Not measured yet")
    long = "AssertionError: 1.0 unexpectedly found in [" + ", ".join(["0.5"] * 20) + "]"
    ours = _suite_file(
        "ode_adjoint",
        ["api_tests.T.a (m=1)", "api_tests.T.a (m=2)", "api_tests.T.c"],
        [("api_tests.T.a (m=3)", "ValueError: no `m`"), ("api_tests.T.b (m=1)", long), ("api_tests.T.b (m=2)", long)],
    )
    theirs = _suite_file(
        "none",
        ["api_tests.T.a (m=1)", "api_tests.T.a (m=3)", "api_tests.T.b (m=1)", "api_tests.T.b (m=2)"],
        [("api_tests.T.a (m=2)", "AssertionError: 1 != 2"), ("api_tests.T.c", "AssertionError: 1 != 2")],
    )
    (tmp_path / "torchdiffeq_suite.json").write_text(json.dumps(ours), encoding="utf-8")
    text = tables.torchdiffeq_suite()
    assert "| api_tests | 3 | 3 | 6 |" in text and "torchdiffeq passed" not in text
    (tmp_path / "torchdiffeq_suite_reference.json").write_text(json.dumps(theirs), encoding="utf-8")
    text = tables.torchdiffeq_suite()
    assert "| **all** | 3 | 3 | 6 | 4 | 6 |" in text
    assert "passes 1 of the 4 subtests torchdiffeq itself passes (25.0%), and 2 that torchdiffeq fails." in text
    assert "- 2 x `AssertionError: 1.0 unexpectedly found in […]`" in text
    assert "- 1 x `` ValueError: no `m` ``" in text
    assert "commit `0123456789ab`" in text
