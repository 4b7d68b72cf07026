"""RK8(7)13M (``dopri87``) and the continuous extension derived for it.

The tableau's order conditions (8, embedded 7, dense 5) are checked with
every other tableau's in test_order_conditions.py; its agreement with
torchdiffeq's ``dopri8`` in ode-adjoint's test_torchdiffeq.py.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import ode_core
import pytest
from ode_core import TABLEAUX

DOPRI87 = TABLEAUX["dopri87"]
TOOL = Path(__file__).resolve().parent.parent / "tools" / "derive_dopri87_dense.py"


def _weights_and_slopes(theta: Fraction) -> tuple[list[Fraction], list[Fraction]]:
    """``b_i(theta)`` and ``b_i'(theta)`` from the tableau's dense rows."""
    assert DOPRI87.dense is not None
    values = [sum((w * theta ** (j + 1) for j, w in enumerate(row)), Fraction(0)) for row in DOPRI87.dense]
    slopes = [sum(((j + 1) * w * theta**j for j, w in enumerate(row)), Fraction(0)) for row in DOPRI87.dense]
    return values, slopes


def test_continuous_extension_is_c1_and_ends_on_the_step() -> None:
    """``b(1) = b``; ``b'(0)`` and ``b'(1)`` pick ``f`` at the step's two ends, so dense output is C1."""
    at_end, slope_at_end = _weights_and_slopes(Fraction(1))
    _, slope_at_start = _weights_and_slopes(Fraction(0))
    last = DOPRI87.n_stages - 1
    for i in range(DOPRI87.n_stages):
        assert abs(at_end[i] - DOPRI87.b[i]) < Fraction(1, 10**14), i
        assert abs(slope_at_start[i] - (1 if i == 0 else 0)) < Fraction(1, 10**14), i
        assert abs(slope_at_end[i] - (1 if i == last else 0)) < Fraction(1, 10**14), i


def _interpolation_error(step: float) -> float:
    """Largest dense-output error at the step midpoints of a fixed-step solve of a nonlinear problem."""

    def f(t: float, y: np.ndarray) -> np.ndarray:
        return np.stack((y[1], -np.sin(y[0]) + 0.1 * math.cos(t)))

    y0 = np.array([1.0, 0.0])
    coarse = ode_core.solve(f, y0, [0.0, 2.0], method="dopri87", step_size=step)
    midpoints = np.arange(0.5, round(2.0 / step)) * step
    # Stepping onto the output times (step_t), so that the reference is not interpolated.
    outputs = [0.0, *midpoints]
    reference = ode_core.solve(f, y0, outputs, method="dopri87", rtol=1e-13, atol=1e-15, step_t=outputs)
    assert coarse.dense is not None
    return float(np.max(np.abs(coarse.dense(midpoints) - reference.ys[1:])))


def test_dense_output_converges_with_order_five() -> None:
    """Between steps the error is the extension's local error, ``O(h**6)``: halving ``h`` divides it by
    about 64 (a cubic Hermite interpolant would give 16, the step ends' ``O(h**8)`` error 256)."""
    errors = [_interpolation_error(step) for step in (1 / 4, 1 / 8, 1 / 16)]
    rates = [math.log2(coarse / fine) for coarse, fine in itertools.pairwise(errors)]
    assert all(5.5 < rate < 6.5 for rate in rates), (errors, rates)


def test_adaptive_solves_interpolate_at_output_times_unless_told_to_step_onto_them() -> None:
    """The tableau overrides the rule that would step onto outputs (order 5 < 7); ``step_t`` still does."""
    assert DOPRI87.steps_onto_outputs is False
    t = np.linspace(0.0, 2.0, 21)
    interpolated = ode_core.solve(lambda time, y: -y, np.array([1.0]), t, method="dopri87", rtol=1e-6)
    stepped = ode_core.solve(lambda time, y: -y, np.array([1.0]), t, method="dopri87", rtol=1e-6, step_t=t)
    assert interpolated.dense is not None and stepped.dense is not None
    assert interpolated.stats.n_steps < 20 <= stepped.stats.n_steps
    assert set(t.tolist()) <= set(stepped.dense.t_steps)
    # Three steps over [0, 2]: the interpolant is off by a few tolerances (3e-6), the step ends are exact.
    np.testing.assert_allclose(interpolated.ys[:, 0], np.exp(-t), rtol=0, atol=1e-5)
    np.testing.assert_allclose(stepped.ys[:, 0], np.exp(-t), rtol=0, atol=1e-12)


@pytest.mark.slow  # the derivation in 60-digit arithmetic
@pytest.mark.skipif(importlib.util.find_spec("mpmath") is None, reason="the derivation needs mpmath")
def test_continuous_extension_is_the_one_the_tool_derives() -> None:
    """The shipped rows are the tool's output to the 30 digits stored."""
    spec = importlib.util.spec_from_file_location("derive_dopri87_dense", TOOL)
    assert spec is not None and spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    derived, constraint_residual, _ = tool.derive()
    assert constraint_residual < 1e-14
    assert DOPRI87.dense is not None
    for shipped_row, derived_row in zip(DOPRI87.dense, derived, strict=True):
        for shipped, value in zip(shipped_row, derived_row, strict=True):
            assert abs(float(shipped - Fraction(str(value))) if shipped else float(value)) < 1e-26
