"""ode-core's implicit methods on stiff problems: time, evaluations, Jacobians, factorisations and error.

Robertson's kinetics and van der Pol with mu = 1000, at two tolerances each,
with a finite-difference Jacobian (``jac=None``) or the analytic one; 11
output times, ``dense_output=False`` (the set-up of
``bench_stiff_vs_scipy.py``; scipy's Radau and BDF on the same cases are in
:mod:`.peers`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import ode_core

from ._problems import STIFF_PROBLEMS, error_in_tolerance_units, stiff_reference
from .solvers import require_method

PROBLEMS = list(STIFF_PROBLEMS)
METHODS = ["kvaerno3", "kvaerno5", "radau5"]
RTOLS = [1e-4, 1e-6]  # each problem pairs its own atol with these (StiffProblem.tolerances)
JACOBIANS = ["finite differences", "analytic"]


class ImplicitMethods:
    """``ode_core.solve`` with ``kvaerno3``, ``kvaerno5`` (ESDIRK) and ``radau5`` (Radau IIA), by simplified Newton.

    ``radau5`` arrived in ode-core at commit 2647aa8; on older commits its
    cases are skipped (n/a in the graphs).
    """

    params = (PROBLEMS, METHODS, RTOLS, JACOBIANS)
    param_names = ("problem", "method", "rtol", "jacobian")
    timeout = 300.0

    def setup_cache(self) -> dict[str, np.ndarray]:
        return {key: stiff_reference(problem) for key, problem in STIFF_PROBLEMS.items()}

    def setup(
        self, references: dict[str, np.ndarray], problem_key: str, method: str, rtol: float, jacobian: str
    ) -> None:
        require_method(method)
        self.problem = STIFF_PROBLEMS[problem_key]
        self.reference = references[problem_key]
        self.method = method
        self.rtol = rtol
        self.atol = self.problem.atol_for(rtol)
        self.jac = self.problem.jac if jacobian == "analytic" else None

    def _solve(self) -> ode_core.Solution:
        solution = ode_core.solve(
            self.problem.f,
            self.problem.y0,
            self.problem.times,
            method=self.method,
            rtol=self.rtol,
            atol=self.atol,
            jac=self.jac,
            dense_output=False,
        )
        if solution.status != ode_core.Status.SUCCESS:
            raise RuntimeError(f"{self.method} on {self.problem.name}: {solution.message}")
        return solution

    def time_solve(self, references: Any, *params: Any) -> None:
        self._solve()

    def track_nfev(self, references: Any, *params: Any) -> int:
        """Calls of ``f``, those of the finite-difference Jacobian included."""
        return int(self._solve().stats.nfev)

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_njev(self, references: Any, *params: Any) -> int:
        return int(self._solve().stats.njev)

    track_njev.unit = "Jacobians"  # type: ignore[attr-defined]

    def track_nlu(self, references: Any, *params: Any) -> int:
        return int(self._solve().stats.nlu)

    track_nlu.unit = "factorisations"  # type: ignore[attr-defined]

    def track_steps(self, references: Any, *params: Any) -> int:
        return int(self._solve().stats.n_steps)

    track_steps.unit = "steps (accepted + rejected)"  # type: ignore[attr-defined]

    def track_error(self, references: Any, *params: Any) -> float:
        """``max |y - ref| / (atol + rtol |ref|)`` against scipy Radau at ``rtol = 1e-13``."""
        solution = self._solve()
        return error_in_tolerance_units(solution.ys, self.reference, self.rtol, self.atol)

    track_error.unit = "error / tolerance"  # type: ignore[attr-defined]
