"""Run torchdiffeq's own test suite against ode_adjoint, through a one-line shim, and count its subtests.

    python benchmarks/torchdiffeq_suite.py TESTS_DIR [--failures FILE] [--module NAME ...]

``TESTS_DIR`` is the ``tests/`` folder of a torchdiffeq checkout (for example
``git archive HEAD tests`` of rtqichen/torchdiffeq, unpacked outside this
repository: its code is not part of the project). A temporary folder holds a
package ``torchdiffeq`` whose ``__init__.py`` is ``from ode_adjoint import *``,
first on ``sys.path``, so the tests import ode_adjoint under torchdiffeq's
name. Each ``subTest`` counts once, and a test without subtests once; the
script prints passed and failed per module and in all, and with
``--failures`` writes each failure's name and last line of its message (one
per line, tab-separated). With ``--shim none`` it runs whatever
``torchdiffeq`` is installed, for the reference count.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import io
import sys
import tempfile
import time
import typing
import unittest
from pathlib import Path

MODULES = ("api_tests", "event_tests", "gradient_tests", "norm_tests", "odeint_tests")
SHIM = "from ode_adjoint import *  # noqa: F403  (torchdiffeq's tests, run against ode_adjoint)\n"


class _Counting(unittest.TextTestResult):
    """Counts subtests (and tests without any) as passed or failed, keeping the failures' messages."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.passed: collections.Counter[str] = collections.Counter()
        self.failed: collections.Counter[str] = collections.Counter()
        self.with_subtests: set[str] = set()
        self.failures_seen: list[tuple[str, str]] = []

    def _record_failure(self, name: str, test: unittest.TestCase, error: object) -> None:
        self.failed[test.id()] += 1
        message = self._exc_info_to_string(error, test).strip().splitlines()  # type: ignore[arg-type]
        self.failures_seen.append((name, message[-1] if message else ""))

    def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase, outcome: object) -> None:
        self.with_subtests.add(test.id())
        if outcome is None:
            self.passed[test.id()] += 1
        else:
            self._record_failure(subtest.id(), test, outcome)
        super().addSubTest(test, subtest, outcome)  # type: ignore[arg-type]

    def addSuccess(self, test: unittest.TestCase) -> None:
        if test.id() not in self.with_subtests:
            self.passed[test.id()] += 1
        super().addSuccess(test)

    def addFailure(self, test: unittest.TestCase, err: object) -> None:
        self._record_failure(test.id(), test, err)
        super().addFailure(test, err)  # type: ignore[arg-type]

    def addError(self, test: unittest.TestCase, err: object) -> None:
        self._record_failure(test.id(), test, err)
        super().addError(test, err)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tests_dir", type=Path, help="torchdiffeq's tests/ folder")
    parser.add_argument("--failures", type=Path, help="write the failures here, one per line")
    parser.add_argument("--module", action="append", choices=MODULES, help="only these modules (default: all)")
    parser.add_argument("--shim", choices=("ode_adjoint", "none"), default="ode_adjoint")
    args = parser.parse_args(argv)
    modules = tuple(args.module or MODULES)
    if not (args.tests_dir / "problems.py").is_file():
        parser.error(f"tests_dir: {args.tests_dir} holds no problems.py; expected torchdiffeq's tests/ folder")
    with tempfile.TemporaryDirectory() as shim_root:
        if args.shim == "ode_adjoint":
            package = Path(shim_root) / "torchdiffeq"
            package.mkdir()
            (package / "__init__.py").write_text(SHIM, encoding="utf-8")
            sys.path.insert(0, shim_root)  # a script's own path: torchdiffeq's name for ode_adjoint
        sys.path.insert(0, str(args.tests_dir.resolve()))
        torchdiffeq = importlib.import_module("torchdiffeq")
        print(f"torchdiffeq is {torchdiffeq.__file__}")
        suite = unittest.TestSuite(unittest.defaultTestLoader.loadTestsFromName(name) for name in modules)
        runner = unittest.TextTestRunner(resultclass=_Counting, verbosity=0, stream=io.StringIO())
        start = time.perf_counter()
        result = typing.cast(_Counting, runner.run(suite))
        seconds = time.perf_counter() - start
    for name in modules:
        passed = sum(v for k, v in result.passed.items() if k.startswith(name + "."))
        failed = sum(v for k, v in result.failed.items() if k.startswith(name + "."))
        print(f"{name:16s} {passed:5d} passed {failed:5d} failed")
    passed, failed = sum(result.passed.values()), sum(result.failed.values())
    print(f"total            {passed:5d} passed {failed:5d} failed of {passed + failed} ({seconds:.0f} s)")
    if args.failures is not None:
        args.failures.write_text("".join(f"{name}\t{message}\n" for name, message in result.failures_seen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
