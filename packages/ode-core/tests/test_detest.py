"""DETEST (Hull, Enright, Fellen & Sedgwick 1972): accuracy of every adaptive method, and parity with scipy.

Errors are measured at 21 output times on ``[0, 20]`` against a DOP853
reference at ``rtol = atol = 1e-13`` (see ``_detest.py``), as the *scaled*
error ``max |y - y_ref| / (atol + rtol |y_ref|)`` over outputs and components:
1 means "exactly the requested tolerance". Run with ``-s`` to see the parity
table.
"""

from __future__ import annotations

import numpy as np
import ode_core
import pytest
from _detest import PROBLEMS, DetestProblem, RightHandSide, reference_solution
from ode_core import METHODS
from ode_core.validation import check_method
from scipy.integrate import solve_ivp

OUTPUT_TIMES: tuple[float, ...] = tuple(np.linspace(0.0, 20.0, 21).tolist())
"""21 equally spaced output times on DETEST's interval [0, 20]."""

# DETEST is the non-stiff set; the implicit methods, built for stiff problems,
# are checked against it more loosely in test_stiff.py.
ADAPTIVE_METHODS = [name for name in METHODS if check_method(name).adaptive and check_method(name).explicit]
HIGH_ORDER_METHODS = {"cash_karp", "dopri5", "tsit5", "dopri8", "dopri87"}
"""Methods of order >= 5, also checked at the tighter tolerance."""

# Global error bounds, in units of the tolerance. Error-per-step control keeps
# each step's local error near the tolerance; the global error is the sum of
# the local errors carried forward by the problem's flow, so it exceeds the
# tolerance by a modest factor on problems whose flow does not amplify errors
# (classes A and C, B2, B3, E1, E3-E5). Correct solvers stay below 40 there
# (worst seen: dopri5 on E3 at 1e-6, scipy's RK45 alike); 100 leaves a 2.5x
# margin, while a wrong right-hand side or a broken step gives O(1) errors,
# 1e6 tolerance units at rtol = 1e-6.
BOUND = 100.0
# Autonomous problems on or converging to a periodic orbit (Lotka-Volterra,
# the B4 limit cycle, the rigid body, Van der Pol and the Kepler orbits) are
# neutrally stable along the orbit: a step's error in the period is never
# damped, so the phase error, hence the global error, grows with every step and
# with the speed on the orbit (4.4 at the D5 perihelion). Correct solvers reach
# a few thousand tolerance units there (scipy's RK23, RK45 and DOP853 reach
# 3400, 2300 and 800 on D5 at 1e-6; the worst here is cash_karp's 4500); 1e4
# still sits 100x below a wrong answer.
ORBIT_BOUND = 1e4
ORBIT_PROBLEMS = {"B1", "B4", "B5", "D1", "D3", "D5", "E2"}

MAX_STEPS_IN_SUITE = 30_000
# Combinations that need more than MAX_STEPS_IN_SUITE steps would be filtered
# out of the accuracy cases here to keep the suite fast; none does at present
# (the most, heun_euler on E3 at 1e-6, takes about 22,000 steps in under 0.5 s).
TOO_MANY_STEPS: set[tuple[str, str, float]] = set()

# fehlberg2 propagates the second-order solution of Fehlberg's RK1(2) pair but
# estimates the error of the first-order one, whose error constant Fehlberg
# made tiny (h^2 y''/512). The estimate is then far below the propagated
# solution's own local error for all but very small steps, and the global error
# is 70 to 160,000 tolerance units on DETEST at every tolerance from 1e-6 to 1e-9
# (a property of the pair run with local extrapolation, shared by torchdiffeq).
FEHLBERG2_REASON = "fehlberg2's RK1(2) error estimate does not bound the error of the propagated 2nd-order solution"


def error_bound(problem: DetestProblem) -> float:
    """The largest scaled global error a correct solver may make on ``problem``."""
    return ORBIT_BOUND if problem.name in ORBIT_PROBLEMS else BOUND


def scaled_error(values: np.ndarray, reference: np.ndarray, rtol: float, atol: float) -> float:
    """``max |values - reference| / (atol + rtol |reference|)`` over all outputs and components."""
    return float(np.max(np.abs(values - reference) / (atol + rtol * np.abs(reference))))


# DOP853's continuous extension (ours and scipy's, identical to round-off) is
# not error-controlled. On C2, whose eigenvalues reach -9 so that the steps have
# |h lambda| up to about 4, it is two to three orders of magnitude less accurate
# than the step ends at interior outputs (scipy's DOP853 alike: 1,100 tolerance units at rtol
# = 1e-8), while landing on the outputs gives errors below 5 units.
UNCONTROLLED_DENSE_OUTPUT = {("dopri8", "C2")}


def lands_on_outputs(method: str, problem: DetestProblem) -> bool:
    """Whether the accuracy check makes ``method`` step onto the output times of ``problem``.

    Only for ``UNCONTROLLED_DENSE_OUTPUT``, where interior outputs would measure
    the interpolant rather than the integrator. (``solve`` itself steps onto the
    outputs of methods whose interpolant is much below their order, cash_karp.)
    """
    return (method, problem.name) in UNCONTROLLED_DENSE_OUTPUT


def assert_accurate(
    problem: DetestProblem, method: str, tolerance: float, f: RightHandSide | None = None
) -> ode_core.Solution:
    """Solve ``problem`` at rtol = atol = ``tolerance`` and assert success and the error bound.

    ``f`` replaces the problem's right-hand side (the reference stays the
    problem's own), to check that the check can fail.
    """
    solution = ode_core.solve(
        problem.f if f is None else f,
        np.array(problem.y0),
        OUTPUT_TIMES,
        method=method,
        rtol=tolerance,
        atol=tolerance,
        dense_output=False,
        step_t=OUTPUT_TIMES if lands_on_outputs(method, problem) else None,
    )
    assert solution.success, f"{method} on {problem.name} failed: {solution.message}"
    error = scaled_error(solution.ys, reference_solution(problem, OUTPUT_TIMES), tolerance, tolerance)
    bound = error_bound(problem)
    assert error <= bound, (
        f"{method} on {problem.name} at tolerance {tolerance:g}: scaled error {error:.3g} exceeds {bound:g} "
        f"({solution.stats.n_steps} steps)"
    )
    return solution


def _accuracy_cases() -> list[object]:
    cases: list[object] = []
    for method in ADAPTIVE_METHODS:
        tolerances = (1e-6, 1e-9) if method in HIGH_ORDER_METHODS else (1e-6,)
        if method == "fehlberg2":
            continue  # see FEHLBERG2_REASON and test_fehlberg2_error_is_proportional_to_the_tolerance
        for tolerance in tolerances:
            for problem in PROBLEMS:
                if (method, problem.name, tolerance) in TOO_MANY_STEPS:
                    continue
                cases.append(pytest.param(method, problem, tolerance, id=f"{method}-{problem.name}-{tolerance:.0e}"))
    return cases


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda problem: problem.name)
def test_reference_is_accurate_where_a_closed_form_is_known(problem: DetestProblem) -> None:
    """The DOP853 reference is within ``1e-9 (1 + |y|)`` of the closed form.

    That is one tolerance unit at the tightest tolerance checked here, a
    hundredth of the accuracy bound, so the reference's own error does not
    blur the checks.
    """
    if problem.exact is None:
        pytest.skip(f"{problem.name} has no closed-form solution")
    exact = np.array([problem.exact(t) for t in OUTPUT_TIMES])
    np.testing.assert_allclose(exact[0], problem.y0, rtol=1e-15, atol=1e-15, err_msg="the closed form misses y0")
    assert scaled_error(reference_solution(problem, OUTPUT_TIMES), exact, 1e-9, 1e-9) <= 1.0


@pytest.mark.parametrize(("method", "problem", "tolerance"), _accuracy_cases())
def test_detest_accuracy(method: str, problem: DetestProblem, tolerance: float) -> None:
    """Every adaptive method solves every DETEST problem to within a modest multiple of its tolerance."""
    solution = assert_accurate(problem, method, tolerance)
    assert solution.stats.n_steps <= MAX_STEPS_IN_SUITE, "a case this slow belongs in TOO_MANY_STEPS"


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda problem: problem.name)
def test_fehlberg2_error_is_proportional_to_the_tolerance(problem: DetestProblem) -> None:
    """fehlberg2's error is not bounded by a few tolerance units (FEHLBERG2_REASON), but it is
    proportional to the tolerance: a 100x tighter tolerance gives at least a 20x smaller error."""
    reference = reference_solution(problem, OUTPUT_TIMES)
    errors = []
    for tolerance in (1e-5, 1e-7):
        solution = ode_core.solve(
            problem.f, np.array(problem.y0), OUTPUT_TIMES, method="fehlberg2", rtol=tolerance, atol=tolerance
        )
        assert solution.success, solution.message
        errors.append(scaled_error(solution.ys, reference, 1.0, 1.0))
    assert errors[1] <= errors[0] / 20, errors


def _with_first_sign_flipped(f: RightHandSide) -> RightHandSide:
    """``f`` with its first component negated: a typical transcription error."""

    def wrong_f(t: float, y: np.ndarray) -> np.ndarray:
        dy = np.array(f(t, y), dtype=np.float64)
        dy[0] = -dy[0]
        return dy

    return wrong_f


@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda problem: problem.name)
def test_accuracy_check_detects_a_wrong_right_hand_side(problem: DetestProblem) -> None:
    """Solving with a sign error in ``f`` fails the accuracy check (so the check can fail)."""
    with pytest.raises(AssertionError, match=r"scaled error .* exceeds|failed"):
        assert_accurate(problem, "dopri5", 1e-6, f=_with_first_sign_flipped(problem.f))


# Parity with scipy at equal tolerances: the acceptance criterion of the issue.
PARITY_PAIRS = [("bosh3", "RK23"), ("dopri5", "RK45"), ("dopri8", "DOP853")]
PARITY_RTOLS = (1e-4, 1e-6, 1e-8)
ATOL_PER_RTOL = 1e-3
ERROR_RATIO_BOUND = 3.0
NFEV_RATIO_BOUND = 1.25
# Scaled errors below this are within the reference's own error (up to 1.5e-10
# absolute on D5, i.e. 0.015 tolerance units at rtol = 1e-8) and are not compared.
ERROR_FLOOR = 0.05


@pytest.mark.parametrize("rtol", PARITY_RTOLS, ids=lambda rtol: f"rtol{rtol:.0e}")
@pytest.mark.parametrize("problem", PROBLEMS, ids=lambda problem: problem.name)
@pytest.mark.parametrize(("method", "scipy_method"), PARITY_PAIRS, ids=lambda name: name)
def test_parity_with_scipy(method: str, scipy_method: str, problem: DetestProblem, rtol: float) -> None:
    """Our error is within 3x scipy's and our evaluations of ``f`` within 1.25x, at the same tolerances.

    Both solvers step freely and interpolate the output times (scipy's
    ``t_eval``, our output times); DOP853's interpolant costs three extra
    evaluations in each step that holds an output, on both sides (we skip them
    when the output is the step's end, as at ``t = 20``).
    """
    atol = rtol * ATOL_PER_RTOL
    reference = reference_solution(problem, OUTPUT_TIMES)
    ours = ode_core.solve(
        problem.f, np.array(problem.y0), OUTPUT_TIMES, method=method, rtol=rtol, atol=atol, dense_output=False
    )
    theirs = solve_ivp(
        problem.f,
        (OUTPUT_TIMES[0], OUTPUT_TIMES[-1]),
        np.array(problem.y0),
        method=scipy_method,
        t_eval=np.array(OUTPUT_TIMES),
        rtol=rtol,
        atol=atol,
    )
    assert ours.success, ours.message
    assert theirs.success, theirs.message
    # Where DOP853's continuous extension is not error-controlled (UNCONTROLLED_DENSE_OUTPUT), its
    # interior outputs are interpolation noise of hundreds of tolerance units on both sides, and which
    # side is worse is chance: the step sequences agree to rounding (1e-10) for 17 steps, then the
    # controller amplifies the rounding and they part, differently on different CPUs. Compare the
    # error controlled by the steps there: at t = 20, a step end for both, where an error within the
    # tolerance (below 1 unit) meets the solver's contract whatever scipy's luck.
    step_ends_only = (method, problem.name) in UNCONTROLLED_DENSE_OUTPUT
    compared = slice(-1, None) if step_ends_only else slice(None)
    our_error = scaled_error(ours.ys[compared], reference[compared], rtol, atol)
    their_error = scaled_error(theirs.y.T[compared], reference[compared], rtol, atol)
    error_ratio = our_error / max(their_error, 1.0 if step_ends_only else ERROR_FLOOR)
    nfev_ratio = ours.stats.nfev / theirs.nfev
    print(
        f"\n{method:>6} vs {scipy_method:<6} {problem.name} rtol={rtol:.0e}  "
        f"error {our_error:9.3g} vs {their_error:9.3g} (x{error_ratio:5.2f})  "
        f"nfev {ours.stats.nfev:6d} vs {theirs.nfev:6d} (x{nfev_ratio:5.3f})"
    )
    assert error_ratio <= ERROR_RATIO_BOUND, f"scaled error {our_error:.3g} vs scipy's {their_error:.3g}"
    assert nfev_ratio <= NFEV_RATIO_BOUND, f"nfev {ours.stats.nfev} vs scipy's {theirs.nfev}"
