"""benchmarks/torchdiffeq_suite.py: its counting of subtests and its JSON file, on a small stand-in suite.

Runs none of torchdiffeq's tests (their code is not part of the project): a
folder laid out like its ``tests/`` runs against a stand-in ``torchdiffeq``
package, as ``--shim none --torchdiffeq PATH`` does.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

API_TESTS = """
import unittest

import torchdiffeq
from problems import METHODS


class TestStandIn(unittest.TestCase):
    def test_methods(self):
        for method in METHODS:
            with self.subTest(method=method):
                self.assertNotEqual(method, "bad", "the method\\nis bad")

    def test_plain(self):
        self.assertEqual(torchdiffeq.__version__, "9.9")

    def test_error(self):
        raise ValueError("unknown method 'x'")
"""


@pytest.fixture(scope="module")
def script(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("torchdiffeq_suite")


@pytest.fixture
def isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The stand-in modules leave ``sys.modules`` and ``sys.path`` as they were."""
    names = ("torchdiffeq", "problems", "api_tests")
    saved = {name: sys.modules.pop(name) for name in names if name in sys.modules}
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in names:
        sys.modules.pop(name, None)
    sys.modules.update(saved)


def test_counts_subtests_and_writes_the_file(script: ModuleType, tmp_path: Path, isolated_imports: None) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "problems.py").write_text('METHODS = ["good", "bad", "fine"]\n', encoding="utf-8")
    (tests / "api_tests.py").write_text(textwrap.dedent(API_TESTS), encoding="utf-8")
    package = tmp_path / "checkout" / "torchdiffeq"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('__version__ = "9.9"\n', encoding="utf-8")
    out = tmp_path / "suite.json"
    argv = [str(tests), "--module", "api_tests", "--shim", "none", "--torchdiffeq", str(package.parent)]
    assert script.main([*argv, "--source-commit", "abc1234", "--json", str(out)]) == 0

    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["modules"] == {"api_tests": {"passed": 3, "failed": 2, "total": 5}}
    assert data["totals"] == {"passed": 3, "failed": 2, "total": 5, "skipped": 0}
    assert data["source"]["commit"] == "abc1234" and data["source"]["tests_dir"] == str(tests)
    assert data["shim"] == "none" and data["tested"] == f"torchdiffeq 9.9 (imported from {package.parent})"
    assert data["torchdiffeq_file"] == str(package / "__init__.py")
    assert data["command"].startswith("python ") and data["machine"]["cpus_usable"]
    errors = {row["name"].split(".")[-1]: row["error"] for row in data["failures"]}
    assert errors == {
        "test_methods (method='bad')": "AssertionError: 'bad' == 'bad' : the method is bad",
        "test_error": "ValueError: unknown method 'x'",
    }
    assert sorted(name.split(".")[-1] for name in data["passed"]) == [
        "test_methods (method='fine')",
        "test_methods (method='good')",
        "test_plain",
    ]


def test_refuses_what_it_cannot_record(script: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "problems.py").write_text("", encoding="utf-8")
    for argv in (
        [str(tmp_path / "nowhere")],
        [str(tmp_path), "--torchdiffeq", str(tmp_path)],  # only with --shim none
        [str(tmp_path), "--shim", "none", "--torchdiffeq", str(tmp_path)],  # no torchdiffeq/ there
        [str(tmp_path), "--source-commit", "HEAD"],
    ):
        with pytest.raises(SystemExit):
            script.main(argv)
