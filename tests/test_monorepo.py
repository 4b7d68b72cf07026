"""Cross-package checks: layout, versions, one-way dependencies, README code."""

from __future__ import annotations

import ast
import doctest
import importlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"ode-core": "ode_core", "ode-adjoint": "ode_adjoint", "ode-models": "ode_models"}
# Allowed first-party dependencies: models -> adjoint -> core, never back.
ALLOWED_FIRST_PARTY = {"ode-core": set(), "ode-adjoint": {"ode-core"}, "ode-models": {"ode-core", "ode-adjoint"}}


def _metadata(package: str) -> dict[str, object]:
    with open(ROOT / "packages" / package / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["project"]  # type: ignore[no-any-return]


def _requirement_names(package: str) -> set[str]:
    dependencies = _metadata(package)["dependencies"]
    assert isinstance(dependencies, list)
    return {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in dependencies}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_layout_and_version(package: str) -> None:
    folder = ROOT / "packages" / package
    module = importlib.import_module(PACKAGES[package])
    assert (folder / "src" / PACKAGES[package] / "py.typed").is_file()
    assert (folder / "README.md").is_file()
    assert module.__version__ in (folder / "CHANGELOG.md").read_text()
    assert _metadata(package)["dynamic"] == ["version"]


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_one_way(package: str) -> None:
    first_party = _requirement_names(package) & set(PACKAGES)
    assert first_party <= ALLOWED_FIRST_PARTY[package]
    if package == "ode-core":
        assert _requirement_names(package) == {"numpy", "array-api-compat"}


@pytest.mark.parametrize("package", PACKAGES)
def test_sources_import_only_downstream_packages(package: str) -> None:
    forbidden = {PACKAGES[other] for other in PACKAGES if other not in ALLOWED_FIRST_PARTY[package] | {package}}
    if package == "ode-core":
        forbidden |= {"torch", "scipy"}
    for path in (ROOT / "packages" / package / "src").rglob("*.py"):
        tree = ast.parse(path.read_text())
        # ode-core's linear algebra imports scipy inside its functions, where scipy is there
        # (an optional dependency: sparse matrices come from it, LAPACK's LU through it).
        lazy = package == "ode-core" and path.name in {"_linalg.py", "_differences.py"}
        for node in tree.body if lazy else ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path} imports {name}"


def _readme_pycon_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```pycon\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(3))
def test_readme_examples_print_what_they_show(index: int) -> None:
    """Each ``pycon`` block of the README runs as a doctest: the printed
    outputs are the ones shown, so the front page cannot drift."""
    blocks = _readme_pycon_blocks()
    assert len(blocks) == 3, f"README.md has {len(blocks)} pycon examples, expected 3 (one per package)"
    parser = doctest.DocTestParser()
    test = parser.get_doctest(blocks[index], {}, f"README.md example {index + 1}", "README.md", 0)
    assert test.examples, "an example without statements"
    output = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    result = runner.run(test, out=output.write)
    assert result.failed == 0, output.getvalue()


@pytest.mark.slow  # a fresh interpreter per README
@pytest.mark.parametrize("package", PACKAGES)
def test_package_readme_examples_run(package: str) -> None:
    """The python blocks of each package's README (its page on an index) run."""
    text = (ROOT / "packages" / package / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"packages/{package}/README.md has no python example"
    for block in blocks:
        result = subprocess.run([sys.executable, "-c", block], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr


@pytest.mark.slow  # a training run and the test session's own checks
def test_readme_quick_start_commands(tmp_path: Path) -> None:
    """The main job installs the three packages, trains and reports; the
    second command is the tests. The training is run here on a few images
    (the same arguments, later ones overriding) to check that it works."""
    text = (ROOT / "README.md").read_text()
    quick_start = text.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    lines = [line for line in quick_start.splitlines() if line.strip()]
    assert lines[-1] == "nox -s tests"
    install, train, report = (part.strip() for part in lines[0].split("&&"))
    assert install == "pip install nox ./packages/ode-core ./packages/ode-adjoint ./packages/ode-models"
    train_args = shlex.split(train)
    assert train_args[:2] == ["ode-models", "train"]
    out = tmp_path / "run"
    small = ["--epochs", "1", "--limit-train", "64", "--limit-test", "32", "--out", str(out), "--no-progress"]
    command = [sys.executable, "-m", "ode_models", *train_args[1:], *small]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    report_args = shlex.split(report)
    assert report_args[:2] == ["ode-models", "report"]
    result = subprocess.run(
        [sys.executable, "-m", "ode_models", "report", str(out), "--no-plots"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert "| odenet |" in result.stdout
    ci = (ROOT / ".ci" / "run").read_text()
    assert "nox -s tests" in ci
