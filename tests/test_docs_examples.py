"""The code in the documentation runs, so it cannot rot.

- Every page under ``docs/`` (MyST Markdown): its ```` ```python ```` blocks
  are executed and its ```` ```pycon ```` blocks checked as doctests, in page
  order and in one namespace per page (a later block sees what an earlier
  one defined). Code that must not run here (it needs a dataset, a GPU or
  a package we do not install) goes in a ```` ```{code-block} python ````
  directive or a ```` ```bash ```` block, which this test leaves alone.
- Every docstring example (``>>>``) in the three packages, and in the docs'
  own Sphinx extensions, is run as a doctest.
- The methods table of the ode-core guide derives a full row for every
  method of the registry.

Doctests use ``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``: ``...`` stands for
counters that a change of the solver may legitimately move.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import io
import pkgutil
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGES = ("ode_core", "ode_adjoint", "ode_models")
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", flags=re.MULTILINE | re.DOTALL)


def _pages() -> list[Path]:
    return sorted(path for path in DOCS.rglob("*.md") if "_build" not in path.relative_to(DOCS).parts)


def _blocks(page: Path) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of the page's python and pycon fences, in order."""
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        language = match["info"].strip()
        if language in ("python", "pycon"):
            blocks.append((language, match["body"], text.count("\n", 0, match.start("body")) + 1))
    return blocks


def _load_extension(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_docs_{name}", DOCS / "_ext" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _run_doctests(tests: list[doctest.DocTest]) -> int:
    """Run ``tests``; fail on any failure. Returns the examples run."""
    runner = doctest.DocTestRunner(optionflags=OPTIONS)
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write, clear_globs=False)
    assert runner.failures == 0, report.getvalue()
    return runner.tries


@pytest.mark.parametrize("page", _pages(), ids=lambda page: str(page.relative_to(DOCS)))
def test_page_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, Any] = {"__name__": f"docs_page_{page.stem.replace('-', '_')}"}
    parser = doctest.DocTestParser()
    for language, code, line in _blocks(page):
        where = f"{page.relative_to(ROOT)}:{line}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)
        else:
            test = parser.get_doctest(code, namespace, where, str(page), line - 1)
            _run_doctests([test])
            namespace.update(test.globs)  # DocTest works on a copy


def test_pages_have_examples() -> None:
    """The guides carry runnable code (a renamed fence would silently stop running)."""
    for name in ("getting-started.md", "guide/core.md", "guide/adjoint.md", "math.md", "models.md"):
        assert _blocks(DOCS / name), f"docs/{name} has no python or pycon block"


def _package_modules(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    names = [info.name for info in pkgutil.walk_packages(root.__path__, f"{package}.")]
    return [root] + [importlib.import_module(name) for name in names if not name.endswith("__main__")]


@pytest.mark.parametrize("package", PACKAGES)
def test_docstring_examples_run(package: str) -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests = [test for module in _package_modules(package) for test in finder.find(module) if test.examples]
    assert tests, f"{package} has no docstring examples"
    _run_doctests(tests)


@pytest.mark.parametrize("name", ["public_api", "methods_table"])
def test_docs_extension_examples_run(name: str) -> None:
    finder = doctest.DocTestFinder(exclude_empty=True)
    assert _run_doctests(finder.find(_load_extension(name))) > 0, f"docs/_ext/{name}.py has no examples to run"


def test_methods_table_covers_the_registry() -> None:
    import ode_core

    methods_table = _load_extension("methods_table")
    rows = methods_table.method_rows()
    assert [row["method"] for row in rows] == list(ode_core.METHODS)
    for row in rows:
        assert "?" not in row.values(), row
        method = ode_core.validation.check_method(row["method"])
        assert row["kind"].startswith("explicit" if method.explicit else "implicit")
    by_name = {row["method"]: row for row in rows}
    assert by_name["dopri5"]["order"] == "5(4)"
    assert by_name["dopri5"]["dense output"] == "order 4"
    assert by_name["rk4"]["adaptive"] == "no"
    assert by_name["backward_euler"]["R(-inf)"] == "0"
    assert by_name["adams_bashforth_moulton"]["kind"] == "explicit multistep (predictor-corrector, P(EC)^m E)"
