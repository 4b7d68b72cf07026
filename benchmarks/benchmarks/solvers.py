"""ode-core's explicit adaptive methods: time, evaluations and global error, per problem, method and tolerance.

NumPy, ``atol = rtol / 1000``, 21 output times, ``dense_output=False`` (the
set-up of ``bench_core_vs_scipy.py``). The same problems through scipy are in
:mod:`.peers`; reading ``track_nfev`` beside ``track_error`` gives the
work-precision trade-off (``benchmarks/work_precision.py`` draws it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ode_core

from ._problems import EXPLICIT_PROBLEMS, max_abs_error, reference_solution

PROBLEMS = ["van_der_pol", "arenstorf", "fisher_kpp"]
METHODS = ["bosh3", "dopri5", "tsit5", "dopri8", "dopri87"]
RTOLS = [1e-6, 1e-9]
ATOL_OVER_RTOL = 1e-3


def require_method(method: str) -> None:
    """Skip (asv's NotImplementedError in setup) where the commit under test has no such method."""
    if method not in ode_core.METHODS:
        raise NotImplementedError(f"ode-core has no method {method!r} at this commit")


class ExplicitMethods:
    """``ode_core.solve`` on van der Pol (mu = 1), the Arenstorf orbit and Fisher-KPP (1,000 states)."""

    params = (PROBLEMS, METHODS, RTOLS)
    param_names = ("problem", "method", "rtol")
    timeout = 300.0

    def setup_cache(self) -> dict[str, np.ndarray]:
        # Once per run: the references, so that every parameter combination's process need not recompute them.
        return {key: reference_solution(EXPLICIT_PROBLEMS[key]()) for key in PROBLEMS}

    def setup(self, references: dict[str, np.ndarray], problem_key: str, method: str, rtol: float) -> None:
        require_method(method)
        self.problem = EXPLICIT_PROBLEMS[problem_key]()
        self.reference = references[problem_key]
        self.method = method
        self.rtol = rtol
        self.times = self.problem.times

    def _solve(self) -> ode_core.Solution:
        solution = ode_core.solve(
            self.problem.f,
            self.problem.y0,
            self.times,
            method=self.method,
            rtol=self.rtol,
            atol=self.rtol * ATOL_OVER_RTOL,
            dense_output=False,
        )
        if solution.status != ode_core.Status.SUCCESS:
            raise RuntimeError(f"{self.method} on {self.problem.name}: {solution.message}")
        return solution

    def time_solve(self, references: Any, problem_key: str, method: str, rtol: float) -> None:
        self._solve()

    def track_nfev(self, references: Any, problem_key: str, method: str, rtol: float) -> int:
        return int(self._solve().stats.nfev)

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_steps(self, references: Any, problem_key: str, method: str, rtol: float) -> int:
        return int(self._solve().stats.n_steps)

    track_steps.unit = "steps (accepted + rejected)"  # type: ignore[attr-defined]

    def track_error(self, references: Any, problem_key: str, method: str, rtol: float) -> float:
        """Largest absolute error over the 21 outputs against scipy DOP853 at ``rtol = 2.5e-14``."""
        return max_abs_error(self._solve().ys, self.reference)

    track_error.unit = "max abs error"  # type: ignore[attr-defined]
