"""benchmarks/torchdiffeq_suite.py counts a torchdiffeq-style suite's subtests against ode_adjoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A suite in torchdiffeq's layout (tests/problems.py beside the modules), written here: two
# subtests that pass through the shim, one that fails, and a test without subtests.
API_TESTS = """
import unittest
import torch
import torchdiffeq


class TestShim(unittest.TestCase):
    def test_subtests(self):
        for method in ("dopri5", "rk4", "no_such_method"):
            with self.subTest(method=method):
                y = torchdiffeq.odeint(lambda t, y: -y, torch.ones(1), torch.tensor([0.0, 1.0]), method=method,
                                       options={"step_size": 0.1} if method == "rk4" else None)
                self.assertLess(abs(float(y[-1, 0]) - 0.3679), 1e-3)

    def test_is_ode_adjoint(self):
        self.assertTrue(hasattr(torchdiffeq, "GRADIENTS"))
"""


@pytest.mark.slow
def test_counts_subtests_and_names_the_failures(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "problems.py").write_text("")
    (tests / "api_tests.py").write_text(API_TESTS)
    failures = tmp_path / "failures.tsv"
    command = [sys.executable, str(ROOT / "benchmarks" / "torchdiffeq_suite.py"), str(tests), "--module", "api_tests"]
    run = subprocess.run(
        [*command, "--failures", str(failures)], capture_output=True, text=True, timeout=300, check=True
    )
    assert "api_tests            3 passed     1 failed" in run.stdout
    assert "total                3 passed     1 failed of 4" in run.stdout
    (line,) = failures.read_text().splitlines()
    assert "method='no_such_method'" in line and "unknown method 'no_such_method'" in line


def test_refuses_a_folder_that_is_not_torchdiffeqs_tests(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "benchmarks" / "torchdiffeq_suite.py"), str(tmp_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 2 and "holds no problems.py; expected torchdiffeq's tests/ folder" in run.stderr
