"""Run torchdiffeq's own test suite against ode_adjoint, through a one-line shim, and count its subtests.

    python benchmarks/torchdiffeq_suite.py TESTS_DIR [--shim {ode_adjoint,none}] [--torchdiffeq PATH]
        [--source-commit SHA] [--json FILE] [--failures FILE] [--module NAME ...]

``TESTS_DIR`` is the ``tests/`` folder of a torchdiffeq checkout (for example
``git archive HEAD tests`` of rtqichen/torchdiffeq, unpacked outside this
repository: its code is not part of the project). A temporary folder holds a
package ``torchdiffeq`` whose ``__init__.py`` is ``from ode_adjoint import *``,
first on ``sys.path``, so the tests import ode_adjoint under torchdiffeq's
name. Each ``subTest`` counts once, and a test without subtests once; the
script prints passed and failed per module and in all, and with
``--failures`` writes each failure's name and its error on one line
(tab-separated).

With ``--shim none`` it runs torchdiffeq itself, for the reference count:
the installed one, or with ``--torchdiffeq PATH`` the package in ``PATH``
(the folder holding ``torchdiffeq/``, for example the same checkout as the
tests: the tests of a commit expect that commit's torchdiffeq, and the
released 0.2.5 lacks methods HEAD's tests use).

``--json FILE`` writes the command, the machine, the tests' source (the
folder, a fingerprint of its files and the git commit: ``--source-commit
SHA``, or found with git when ``TESTS_DIR`` is the ``tests/`` folder of a
torchdiffeq clone), the shim, the counts per module and in all, the failing
subtests with their errors and the passing ones' names (so that two runs can
be compared subtest by subtest). ``python benchmarks/tables.py`` renders it
(``benchmarks/measured/torchdiffeq_suite.json``, and
``torchdiffeq_suite_reference.json`` from ``--shim none`` beside it).
"""

from __future__ import annotations

# First: importing the package pins BLAS and OpenMP to one thread before torch loads.
from benchmarks import _common  # isort: skip

import argparse
import collections
import hashlib
import importlib
import io
import re
import subprocess
import sys
import tempfile
import time
import traceback
import typing
import unittest
from pathlib import Path
from typing import Any

MODULES = ("api_tests", "event_tests", "gradient_tests", "norm_tests", "odeint_tests")
SHIM = "from ode_adjoint import *  # noqa: F403  (torchdiffeq's tests, run against ode_adjoint)\n"
ERROR_CHARACTERS = 500  # an error's line is cut there


def one_line(error: Any) -> str:
    """``Type: message`` of an ``exc_info`` triple, its lines joined and its whitespace collapsed."""
    kind, value, _ = error
    text = " ".join("".join(traceback.format_exception_only(kind, value)).split())
    return text if len(text) <= ERROR_CHARACTERS else text[: ERROR_CHARACTERS - 1] + "…"


class _Counting(unittest.TextTestResult):
    """Counts subtests (and tests without any) as passed or failed, keeping their names and the failures' errors."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.with_subtests: set[str] = set()
        self.passes_seen: list[str] = []
        self.failures_seen: list[tuple[str, str]] = []

    def _record_failure(self, name: str, test: unittest.TestCase, error: object) -> None:
        self.failed[test.id()] += 1
        self.failures_seen.append((name, one_line(error)))

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, outcome: object) -> None:
        self.with_subtests.add(test.id())
        if outcome is None:
            self.passed[test.id()] += 1
            self.passes_seen.append(subtest.id())
        else:
            self._record_failure(subtest.id(), test, outcome)
        super().addSubTest(test, subtest, outcome)  # type: ignore[arg-type]

    def addSuccess(self, test: unittest.TestCase) -> None:
        if test.id() not in self.with_subtests:
            self.passed[test.id()] += 1
            self.passes_seen.append(test.id())
        super().addSuccess(test)

    def addFailure(self, test: unittest.TestCase, err: object) -> None:
        self._record_failure(test.id(), test, err)
        super().addFailure(test, err)  # type: ignore[arg-type]

    def addError(self, test: unittest.TestCase, err: object) -> None:
        self._record_failure(test.id(), test, err)
        super().addError(test, err)  # type: ignore[arg-type]


def module_of(name: str, modules: typing.Iterable[str]) -> str | None:
    """The test module a test or subtest id belongs to (``setUpClass (module.Class)`` too)."""
    for module in modules:
        if name.startswith(module + ".") or f"({module}." in name:
            return module
    return None


def tests_fingerprint(tests_dir: Path) -> str:
    """SHA-256 of the folder's Python files (their paths and contents), to tell two sets of tests apart."""
    digest = hashlib.sha256()
    for path in sorted(tests_dir.rglob("*.py")):
        digest.update(path.relative_to(tests_dir).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit(tests_dir: Path) -> str | None:
    """HEAD of the torchdiffeq clone whose ``tests/`` folder ``tests_dir`` is, or None (not a clone, no git)."""
    try:
        top = subprocess.run(
            ["git", "-C", str(tests_dir), "rev-parse", "--show-toplevel", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    if len(top) != 2 or Path(top[0]).resolve() != tests_dir.parent or not (tests_dir.parent / "torchdiffeq").is_dir():
        return None  # some other repository's folder (an unpacked copy inside it)
    return top[1]


def import_torchdiffeq(shim: str, path: Path | None, shim_root: str) -> Any:
    """The ``torchdiffeq`` the tests will import: the shim, the package in ``path``, or the installed one."""
    if shim == "ode_adjoint":
        package = Path(shim_root) / "torchdiffeq"
        package.mkdir()
        (package / "__init__.py").write_text(SHIM, encoding="utf-8")
        expected: Path | None = Path(shim_root).resolve()
    else:
        expected = path.resolve() if path is not None else None
    if expected is not None:
        sys.path.insert(0, str(expected))  # a script's own path: the tests import this one as torchdiffeq
    module = importlib.import_module("torchdiffeq")
    if expected is not None and not Path(module.__file__).resolve().is_relative_to(expected):
        raise SystemExit(f"torchdiffeq was imported from {module.__file__}, not from {expected}")
    return module


def _version(module: str) -> str:
    return str(getattr(importlib.import_module(module), "__version__", "unknown"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests_dir", type=Path, help="torchdiffeq's tests/ folder")
    parser.add_argument("--failures", type=Path, help="write the failures here, one per line")
    parser.add_argument("--module", action="append", choices=MODULES, help="only these modules (default: all)")
    parser.add_argument(
        "--shim",
        choices=("ode_adjoint", "none"),
        default="ode_adjoint",
        help="ode_adjoint (default): the tests run ode_adjoint as torchdiffeq; none: torchdiffeq itself",
    )
    parser.add_argument(
        "--torchdiffeq",
        type=Path,
        metavar="PATH",
        help="with --shim none: import torchdiffeq from PATH (the folder holding the package; default: installed)",
    )
    parser.add_argument("--source-commit", metavar="SHA", help="the torchdiffeq commit the tests come from")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write command, machine, counts and failures")
    args = parser.parse_args(argv)
    modules = tuple(args.module or MODULES)
    tests_dir = args.tests_dir.resolve()
    if not (tests_dir / "problems.py").is_file():
        parser.error(f"tests_dir: {args.tests_dir} holds no problems.py; expected torchdiffeq's tests/ folder")
    if args.torchdiffeq is not None:
        if args.shim != "none":
            parser.error("--torchdiffeq: only with --shim none (the shim runs ode_adjoint)")
        if not (args.torchdiffeq / "torchdiffeq" / "__init__.py").is_file():
            parser.error(f"--torchdiffeq: {args.torchdiffeq} holds no torchdiffeq/__init__.py")
    if args.source_commit is not None and not re.fullmatch(r"[0-9a-f]{7,40}", args.source_commit):
        parser.error(f"--source-commit: {args.source_commit!r} is not a commit hash")
    found = git_commit(tests_dir)
    if args.source_commit is not None and found is not None and not found.startswith(args.source_commit):
        parser.error(f"--source-commit {args.source_commit}: {args.tests_dir} is a clone at {found}")
    source = {
        "tests_dir": str(tests_dir),
        "commit": args.source_commit or found,
        "sha256": tests_fingerprint(tests_dir),
    }

    with tempfile.TemporaryDirectory() as shim_root:
        torchdiffeq = import_torchdiffeq(args.shim, args.torchdiffeq, shim_root)
        print(f"torchdiffeq is {torchdiffeq.__file__}")
        import torch

        if args.shim == "ode_adjoint":
            versions = {"ode_adjoint": _version("ode_adjoint"), "ode_core": _version("ode_core")}
            tested = f"ode_adjoint {versions['ode_adjoint']}, through the shim"
        else:
            where = f" (imported from {args.torchdiffeq})" if args.torchdiffeq else ""
            versions = {"torchdiffeq": getattr(torchdiffeq, "__version__", "unknown") + where}
            tested = f"torchdiffeq {versions['torchdiffeq']}"
        machine = _common.machine_info(
            {
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                **versions,
                **({"cuda": torch.cuda.get_device_name()} if torch.cuda.is_available() else {}),
            }
        )
        print(f"# torchdiffeq's tests ({tests_dir}, commit {source['commit'] or 'unknown'}) against {tested}")
        print(_common.machine_line(machine), flush=True)
        sys.path.insert(0, str(tests_dir))
        suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromName(name) for name in modules)
        runner = unittest.TextTestRunner(resultclass=_Counting, verbosity=0, stream=io.StringIO())
        start = time.perf_counter()
        result = typing.cast(_Counting, runner.run(suite))
        seconds = time.perf_counter() - start
        torchdiffeq_file = str(Path(torchdiffeq.__file__).resolve())

    counts = {}
    for name in modules:
        passed = sum(1 for test in result.passes_seen if module_of(test, (name,)))
        failed = sum(1 for test, _ in result.failures_seen if module_of(test, (name,)))
        counts[name] = {"passed": passed, "failed": failed, "total": passed + failed}
        print(f"{name:16s} {passed:5d} passed {failed:5d} failed")
    passed, failed = len(result.passes_seen), len(result.failures_seen)
    totals = {"passed": passed, "failed": failed, "total": passed + failed, "skipped": len(result.skipped)}
    print(f"total            {passed:5d} passed {failed:5d} failed of {passed + failed} ({seconds:.0f} s)")
    if result.skipped:
        print(f"({len(result.skipped)} skipped, not counted)")
    if args.failures is not None:
        args.failures.write_text("".join(f"{name}\t{message}\n" for name, message in result.failures_seen))
    if args.json is not None:
        payload = {
            "command": _common.command_line(),
            "machine": machine,
            "source": source,
            "shim": args.shim,
            "tested": tested,
            "torchdiffeq_file": torchdiffeq_file if args.shim == "none" else "(the shim)",
            "seconds": round(seconds, 1),
            "modules": counts,
            "totals": totals,
            "failures": [
                {"name": name, "module": module_of(name, modules), "error": message}
                for name, message in result.failures_seen
            ],
            "passed": result.passes_seen,
        }
        _common.write_json(str(args.json), payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
