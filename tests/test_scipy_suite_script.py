"""benchmarks/scipy_ivp_suite.py and its adapter: scipy's tests run against ode-core, counted per test."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest


@pytest.fixture(scope="module")
def script(benchmark_script: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark_script("scipy_ivp_suite")


def test_a_subset_of_scipys_tests_runs_and_is_counted(script: ModuleType, tmp_path: Path) -> None:
    output = tmp_path / "suite.json"
    assert script.main(["-k", "test_zero_interval or test_args_single_value", "--json", str(output)]) == 0
    data = json.loads(output.read_text())
    assert data["against"] == "ode_core" and data["source"]["sha256"]
    assert data["counts"] == {"applicable": 6, "passed": 6, "not_applicable": 0}
    assert data["outcomes"]["test_zero_interval[BDF]"]["outcome"] == "passed"


def test_the_adapter_maps_layouts_only(script: ModuleType) -> None:
    from benchmarks._scipy_adapter import solve_ivp
    from scipy.integrate import solve_ivp as scipys

    ours = solve_ivp(lambda t, y: -y, (0.0, 2.0), [1.0, 2.0], method="RK45")
    theirs = scipys(lambda t, y: -y, (0.0, 2.0), [1.0, 2.0], method="RK45")
    # dopri5 is RK45's method and controller: the same steps, every step's time and state in scipy's layout
    np.testing.assert_allclose(ours.t, theirs.t, rtol=1e-9)  # round-off in the step sizes
    np.testing.assert_allclose(ours.y, theirs.y, rtol=1e-10)
    assert ours.y.shape == theirs.y.shape and ours.nfev == theirs.nfev and ours.status == 0
    dense = solve_ivp(lambda t, y: -y, (0.0, 2.0), [1.0, 2.0], dense_output=True, t_eval=[0.5, 1.0])
    assert dense.sol(1.5).shape == (2,) and dense.sol([0.5, 1.5]).shape == (2, 2) and dense.t.tolist() == [0.5, 1.0]
