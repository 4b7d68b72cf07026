"""Run scipy's own ``solve_ivp`` tests against ode-core, through a thin adapter, and count them.

    python benchmarks/scipy_ivp_suite.py [TEST_FILE] [--reference] [--json FILE] [-k EXPRESSION]

``TEST_FILE`` is scipy's ``integrate/_ivp/tests/test_ivp.py``, by default the
installed scipy's (its code is not part of the project). The script copies it
into a temporary folder with one line changed: ``solve_ivp`` comes from
:mod:`benchmarks._scipy_adapter`, which maps scipy's names and layouts onto
:func:`ode_core.solve` and emulates no feature; scipy's solver classes, its
``OdeSolution`` and the private helpers some tests import stay scipy's. The
tests run under pytest; a test is *applicable* when it calls ``solve_ivp``
(the others test scipy's classes and helpers). It prints each applicable
test's outcome and the counts; ``--reference`` runs the same file unchanged
against scipy itself. ``--json FILE`` writes the command, the machine, the
file's fingerprint and scipy's version, the counts and every test's outcome
(``python benchmarks/tables.py`` renders it as docs/_generated/scipy-suite.md).

Counting: one pytest item per test function or parametrisation; a test that
loops over methods and options inside passes only if every case does.
"""

from __future__ import annotations

# First: importing the package pins BLAS to one thread before NumPy loads.
from benchmarks import _common  # isort: skip

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import ode_core
import pytest
import scipy

IMPORT = "from scipy.integrate import solve_ivp, RK23, RK45, DOP853, Radau, BDF, LSODA"
ADAPTED = (
    "from scipy.integrate import RK23, RK45, DOP853, Radau, BDF, LSODA\n"
    "from benchmarks._scipy_adapter import solve_ivp  # ode-core behind scipy's signature"
)


def default_test_file() -> Path:
    """The installed scipy's ``test_ivp.py``."""
    return Path(scipy.__file__).parent / "integrate" / "_ivp" / "tests" / "test_ivp.py"


class Recorder:
    """A pytest plugin: each test's outcome and whether it called the adapter's ``solve_ivp``."""

    def __init__(self, counter: list[int] | None) -> None:
        self.counter = counter
        self.outcomes: dict[str, dict[str, Any]] = {}
        self._calls_before = 0

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item: Any) -> Any:
        self._calls_before = self.counter[0] if self.counter is not None else 0
        yield
        calls = (self.counter[0] - self._calls_before) if self.counter is not None else 1
        item.user_properties.append(("calls", calls))

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            calls = dict(report.user_properties).get("calls", 0)
            error = ""
            if report.failed:
                # pytest's "E   ..." lines: the exception and the assertion, without the source around them.
                text = str(report.longrepr).splitlines()
                found = [line[1:].strip() for line in text if line.startswith("E ")]
                error = " ".join(found)[:300] if found else " ".join(" ".join(text).split())[-300:]
            self.outcomes[report.nodeid.split("::", 1)[-1]] = {
                "outcome": report.outcome,
                "applicable": calls > 0,
                "error": error,
            }

    @pytest.fixture
    def num_parallel_threads(self) -> int:
        """scipy's own conftest provides it (pytest-run-parallel); one thread here."""
        return 1


def run(test_file: Path, reference: bool, selection: str | None) -> dict[str, dict[str, Any]]:
    """Every test's ``{"outcome", "applicable", "error"}``, keyed by its name."""
    source = test_file.read_text()
    if not reference:
        if IMPORT not in source:
            raise SystemExit(f"{test_file}: its import of solve_ivp is not the expected line:\n  {IMPORT}")
        source = source.replace(IMPORT, ADAPTED)
    from benchmarks import _scipy_adapter

    recorder = Recorder(None if reference else _scipy_adapter.CALLS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "test_ivp_adapted.py"
        path.write_text(source)
        arguments = [str(path), "-q", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
        if selection:
            arguments += ["-k", selection]
        pytest.main(arguments, plugins=[recorder])
    return recorder.outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("test_file", nargs="?", type=Path, default=None, help="scipy's test_ivp.py")
    parser.add_argument("--reference", action="store_true", help="run the file unchanged, against scipy")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write machine, counts and outcomes")
    parser.add_argument("-k", dest="selection", help="pytest's -k expression (a subset)")
    args = parser.parse_args(argv)
    test_file = args.test_file or default_test_file()

    started = time.perf_counter()
    outcomes = run(test_file, args.reference, args.selection)
    elapsed = time.perf_counter() - started
    applicable = {name: o for name, o in outcomes.items() if o["applicable"]}
    passed = sum(o["outcome"] == "passed" for o in applicable.values())
    print()
    for name, outcome in sorted(applicable.items()):
        print(f"{outcome['outcome']:>7}  {name}" + (f"  -- {outcome['error'][-160:]}" if outcome["error"] else ""))
    share = 100.0 * passed / len(applicable) if applicable else 0.0
    who = "scipy itself" if args.reference else "ode-core through the adapter"
    print(
        f"\n{who}: {passed} of {len(applicable)} applicable tests pass ({share:.1f}%); "
        f"{len(outcomes) - len(applicable)} not applicable (scipy's classes and helpers); {elapsed:.0f} s"
    )
    if args.json is not None:
        machine = _common.machine_info({"scipy": scipy.__version__, "ode_core": ode_core.__version__})
        payload = {
            "command": _common.command_line(),
            "machine": machine,
            "source": {
                "file": str(test_file),
                "scipy": scipy.__version__,
                "sha256": hashlib.sha256(test_file.read_bytes()).hexdigest(),
            },
            "against": "scipy" if args.reference else "ode_core",
            "counts": {
                "applicable": len(applicable),
                "passed": passed,
                "not_applicable": len(outcomes) - len(applicable),
            },
            "outcomes": outcomes,
        }
        _common.write_json(str(args.json), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
