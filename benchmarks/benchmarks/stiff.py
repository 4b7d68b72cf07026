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

from ._problems import LARGE_STIFF_PROBLEMS, STIFF_PROBLEMS, error_in_tolerance_units, stiff_reference
from .solvers import require_method

PROBLEMS = list(STIFF_PROBLEMS)
METHODS = ["kvaerno3", "kvaerno5", "radau5", "bdf"]
RTOLS = [1e-4, 1e-6]  # each problem pairs its own atol with these (StiffProblem.tolerances)
JACOBIANS = ["finite differences", "analytic"]


class ImplicitMethods:
    """``ode_core.solve`` with ``kvaerno3``, ``kvaerno5`` (ESDIRK), ``radau5`` (Radau IIA) and ``bdf`` (NDF),
    by simplified Newton.

    ``radau5`` arrived in ode-core at commit 2647aa8 and ``bdf`` in this
    issue's work; on older commits their cases are skipped (n/a in the graphs).
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


class LargeSparse:
    """``radau5`` and ``bdf`` against scipy's ``Radau`` and ``BDF`` on MEDAKZO (400 states) and the 2-D
    Brusselator (2048), every solver with the problem's ``jac_sparsity`` (grouped differences, sparse LU);
    rtol 1e-6, atol 1e-9 (``bench_stiff_vs_scipy.py``'s large cases). On commits without
    ``jac_sparsity`` ode-core's cases are skipped."""

    params = (list(LARGE_STIFF_PROBLEMS), ["ode-core radau5", "ode-core bdf", "scipy Radau", "scipy BDF"])
    param_names = ("problem", "solver")
    timeout = 600.0

    def setup_cache(self) -> dict[str, np.ndarray]:
        return {key: stiff_reference(problem) for key, problem in LARGE_STIFF_PROBLEMS.items()}

    def setup(self, references: dict[str, np.ndarray], problem_key: str, solver: str) -> None:
        import inspect

        self.library, self.method = solver.split()
        if self.library == "ode-core":
            require_method(self.method)
            if "jac_sparsity" not in inspect.signature(ode_core.solve).parameters:
                raise NotImplementedError("ode-core has no jac_sparsity at this commit")
        self.problem = LARGE_STIFF_PROBLEMS[problem_key]
        self.reference = references[problem_key]
        self.sparsity = self.problem.sparsity() if self.problem.sparsity is not None else None
        self.rtol, self.atol = self.problem.tolerances[0]

    def _solve(self) -> Any:
        problem = self.problem
        if self.library == "ode-core":
            return ode_core.solve(
                problem.f,
                problem.y0,
                problem.times,
                method=self.method,
                rtol=self.rtol,
                atol=self.atol,
                jac_sparsity=self.sparsity,
                dense_output=False,
            )
        from scipy.integrate import solve_ivp

        times = problem.times
        return solve_ivp(
            problem.f,
            (float(times[0]), float(times[-1])),
            problem.y0,
            method=self.method,
            t_eval=times,
            rtol=self.rtol,
            atol=self.atol,
            jac_sparsity=self.sparsity,
        )

    def time_solve(self, references: Any, *params: Any) -> None:
        self._solve()

    def track_error(self, references: Any, *params: Any) -> float:
        """``max |y - ref| / (atol + rtol |ref|)`` against scipy Radau at ``rtol = 1e-10``."""
        solution = self._solve()
        ys = solution.ys if self.library == "ode-core" else np.asarray(solution.y).T
        return error_in_tolerance_units(ys, self.reference, self.rtol, self.atol)

    track_error.unit = "error / tolerance"  # type: ignore[attr-defined]
