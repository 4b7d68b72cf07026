"""Implicit methods on stiff problems: against scipy's Radau and BDF, stability,
Newton's iteration, the Neural ODE paper's Euler example."""

from __future__ import annotations

import functools
import math
from types import ModuleType

import numpy as np
import ode_core
import pytest
from _stiff_problems import robertson, robertson_jacobian, van_der_pol, van_der_pol_jacobian
from ode_core import TABLEAUX, Status
from ode_core.validation import check_method
from scipy.integrate import solve_ivp

IMPLICIT = [name for name in ode_core.METHODS if check_method(name).implicit]
IMPLICIT_FIXED = [name for name in IMPLICIT if not check_method(name).adaptive]
IMPLICIT_ADAPTIVE = [name for name in IMPLICIT if check_method(name).adaptive]

# name -> (f, jac, y0, output times, atol per unit of rtol)
STIFF_PROBLEMS = {
    "robertson": (
        robertson,
        robertson_jacobian,
        [1.0, 0.0, 0.0],
        np.concatenate(([0.0], np.logspace(-5, 5, 11))),
        1e-4,
    ),
    "van_der_pol_1000": (van_der_pol, van_der_pol_jacobian, [2.0, 0.0], np.linspace(0.0, 3000.0, 11), 1.0),
}


@functools.cache
def stiff_reference(name: str) -> np.ndarray:
    f, _, y0, t, atol_factor = STIFF_PROBLEMS[name]
    result = solve_ivp(f, (t[0], t[-1]), y0, method="Radau", rtol=1e-13, atol=1e-16 * atol_factor * 1e4, t_eval=t)
    assert result.success
    return result.y.T  # type: ignore[no-any-return]


def scaled_error(values: np.ndarray, reference: np.ndarray, rtol: float, atol: float) -> float:
    return float(np.max(np.abs(values - reference) / (atol + rtol * np.abs(reference))))


@pytest.mark.slow  # each case solves the problem with scipy's Radau and BDF too
@pytest.mark.parametrize("rtol", [1e-4, 1e-6])
@pytest.mark.parametrize("problem", list(STIFF_PROBLEMS))
@pytest.mark.parametrize("method", ["radau5", "kvaerno5"])
def test_against_scipy_radau_and_bdf(method: str, problem: str, rtol: float) -> None:
    """Error within 10x of scipy's, steps within 5x of scipy's, at equal tolerance.

    "Error" is the largest error over the outputs in tolerance units. scipy's
    Radau (order 5, Hairer's error estimate of order 3) is conservative and
    lands well inside the tolerance, BDF well outside. radau5 (the same
    method and estimate) must be within 10x of each of them. kvaerno5's
    embedded estimate of order 4 bounds its error less tightly: it must be
    within 10x of the larger of the two and within 20 tolerance units. The
    test prints all of them (``pytest -s``).
    """
    f, _, y0, t, atol_factor = STIFF_PROBLEMS[problem]
    atol = rtol * atol_factor
    reference = stiff_reference(problem)
    ours = ode_core.solve(f, np.array(y0), t, method=method, rtol=rtol, atol=atol)
    assert ours.success, ours.message
    our_error = scaled_error(ours.ys, reference, rtol, atol)
    rows = [(f"ode_core {method}", ours.stats.n_steps, ours.stats.nfev, ours.stats.njev, our_error)]
    scipy_errors = {}
    scipy_steps = {}
    for scipy_method in ("Radau", "BDF"):
        at_outputs = solve_ivp(f, (t[0], t[-1]), y0, method=scipy_method, rtol=rtol, atol=atol, t_eval=t)
        every_step = solve_ivp(f, (t[0], t[-1]), y0, method=scipy_method, rtol=rtol, atol=atol)
        scipy_errors[scipy_method] = scaled_error(at_outputs.y.T, reference, rtol, atol)
        scipy_steps[scipy_method] = every_step.t.size - 1
        rows.append(
            (
                f"scipy {scipy_method}",
                scipy_steps[scipy_method],
                at_outputs.nfev,
                at_outputs.njev,
                scipy_errors[scipy_method],
            )
        )
    print(f"\n{problem} rtol={rtol:g} atol={atol:g}")
    for name, steps, nfev, njev, error in rows:
        print(f"  {name:18s} steps {steps:6d}  nfev {nfev:6d}  njev {njev:5d}  error {error:8.3f} tol units")
    if method == "radau5":
        assert our_error <= 10 * min(scipy_errors.values())
        assert our_error <= 2
    else:
        assert our_error <= 10 * max(scipy_errors.values())
        assert our_error <= 20
    assert ours.stats.n_steps <= 5 * min(scipy_steps.values())


@pytest.mark.slow  # dopri5 on stiff problems: thousands of steps
@pytest.mark.parametrize("problem", list(STIFF_PROBLEMS))
@pytest.mark.parametrize("method", ["radau5", "kvaerno5"])
def test_explicit_dopri5_pays_for_stiffness(method: str, problem: str) -> None:
    """dopri5 needs at least 10x the evaluations of the implicit method, or runs out of steps."""
    f, _, y0, t, atol_factor = STIFF_PROBLEMS[problem]
    rtol = 1e-6
    implicit = ode_core.solve(f, np.array(y0), t, method=method, rtol=rtol, atol=rtol * atol_factor)
    explicit = ode_core.solve(f, np.array(y0), t, method="dopri5", rtol=rtol, atol=rtol * atol_factor, max_steps=20_000)
    print(
        f"\n{problem}: {method} {implicit.status.value} nfev {implicit.stats.nfev}; "
        f"dopri5 {explicit.status.value} nfev {explicit.stats.nfev} reached t={explicit.t_final:.4g}"
    )
    assert implicit.success
    assert explicit.status is Status.MAX_STEPS_REACHED or explicit.stats.nfev >= 10 * implicit.stats.nfev


@pytest.mark.parametrize("method", IMPLICIT_ADAPTIVE)
def test_user_jacobian_agrees_with_finite_differences(method: str) -> None:
    f, jac, y0, t, _ = STIFF_PROBLEMS["robertson"]
    kwargs = {"method": method, "rtol": 1e-6, "atol": 1e-10}
    with_jac = ode_core.solve(f, np.array(y0), t[:8], jac=jac, **kwargs)
    differences = ode_core.solve(f, np.array(y0), t[:8], **kwargs)
    assert with_jac.success
    assert differences.success
    assert with_jac.stats.njev > 0
    assert with_jac.stats.nlu >= with_jac.stats.njev
    assert with_jac.stats.nfev < differences.stats.nfev  # differences cost n + 1 evaluations each
    reference = stiff_reference("robertson")[:8]
    assert scaled_error(with_jac.ys, reference, 1e-6, 1e-10) <= 20
    assert scaled_error(differences.ys, reference, 1e-6, 1e-10) <= 20


# bdf and auto choose their own steps (test_bdf, test_auto).
@pytest.mark.parametrize("method", IMPLICIT_FIXED + [m for m in IMPLICIT_ADAPTIVE if m not in ("bdf", "auto")])
def test_implicit_methods_are_stable_where_explicit_euler_explodes(method: str) -> None:
    """y' = -1000 y with h = 0.1 (h lambda = -100): A-stable methods keep |y| <= 1."""
    t = np.linspace(0.0, 2.0, 21)  # outputs on the step grid
    sol = ode_core.solve(lambda time, y: -1000.0 * y, np.array([1.0]), t, method=method, step_size=0.1)
    assert sol.success
    assert np.all(np.abs(sol.ys) <= 1.0)
    with np.errstate(over="ignore"):
        explicit = ode_core.solve(lambda time, y: -1000.0 * y, np.array([1.0]), t, method="euler", step_size=0.1)
    assert np.max(np.abs(explicit.ys)) > 1e10


def test_paper_example_minus_z_squared() -> None:
    """Chen et al. (2018), section 2: dz/dt = -z^2 by explicit and implicit Euler.

    z(t) = 1 / (1 + t). With h = 3 explicit Euler, z_{k+1} = z_k - h z_k^2,
    overshoots to negative values and diverges; implicit Euler solves
    z_{k+1} + h z_{k+1}^2 = z_k each step and stays on the positive, decaying
    branch.
    """
    t = np.arange(0.0, 31.0, 3.0)
    with np.errstate(over="ignore"):
        explicit = ode_core.solve(lambda time, z: -(z**2), np.array([1.0]), t, method="euler", step_size=3.0)
    implicit = ode_core.solve(
        lambda time, z: -(z**2), np.array([1.0]), t, method="backward_euler", step_size=3.0, rtol=1e-10, atol=1e-12
    )
    assert explicit.status is Status.NON_FINITE or np.max(np.abs(explicit.ys)) > 1e100
    assert implicit.success
    z = implicit.ys[:, 0]
    assert np.all(z > 0)
    assert np.all(np.diff(z) < 0)
    # Each step is the positive root of h z^2 + z - z_prev = 0.
    expected = [1.0]
    for _ in t[1:]:
        expected.append((-1.0 + math.sqrt(1.0 + 12.0 * expected[-1])) / 6.0)
    np.testing.assert_allclose(z, expected, rtol=1e-9)
    exact = 1.0 / (1.0 + t)
    assert np.max(np.abs(z - exact)) < 0.2  # first order at h = 3, yet bounded and decaying


def test_paper_example_minus_1000_z() -> None:
    """dz/dt = -1000 z at h = 0.01: explicit Euler's factor is -9, implicit Euler's 1/11."""
    t = np.linspace(0.0, 0.2, 21)
    explicit = ode_core.solve(lambda time, z: -1000.0 * z, np.array([1.0]), t, method="euler", step_size=0.01)
    implicit = ode_core.solve(lambda time, z: -1000.0 * z, np.array([1.0]), t, method="backward_euler", step_size=0.01)
    np.testing.assert_allclose(explicit.ys[:, 0], (-9.0) ** np.arange(21), rtol=1e-9)
    np.testing.assert_allclose(implicit.ys[:, 0], (1.0 / 11.0) ** np.arange(21), rtol=1e-6)


def test_newton_failure_in_a_fixed_step_is_a_status() -> None:
    # Backward Euler on y' = y^2 from y = 1 needs h y^2 - y + 1 = 0: no real root for h > 1/4.
    sol = ode_core.solve(lambda time, y: y * y, np.array([1.0]), [0.0, 1.0], method="backward_euler", step_size=0.5)
    assert sol.status is Status.NONLINEAR_SOLVE_FAILED
    assert "t=0.0" in sol.message
    assert sol.t_final == 0.0


def test_adaptive_implicit_method_retries_a_newton_failure_with_a_smaller_step() -> None:
    sol = ode_core.solve(lambda time, y: y * y, np.array([1.0]), [0.0, 0.9], method="kvaerno3", first_step=0.8)
    assert sol.success
    assert sol.stats.n_rejected >= 1
    np.testing.assert_allclose(sol.ys[-1], [10.0], rtol=1e-4)


@pytest.mark.parametrize(
    ("jac", "error", "message"),
    [
        (lambda t, y: np.eye(3), ValueError, r"jac: returned shape \(3, 3\), expected \(2, 2\)"),
        (lambda t, y: np.eye(2, dtype=np.float32), TypeError, "jac: returned dtype float32"),
        (lambda t, y: "identity", TypeError, "jac: expected an array"),
        (1.0, ValueError, r"jac: returned shape \(\), expected \(2, 2\)"),
        ("identity", TypeError, "jac: expected a callable or an array, got str"),
    ],
)
def test_bad_jacobian_names_jac(jac: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0], method="kvaerno3", jac=jac)  # type: ignore[arg-type]


def test_jacobian_of_batched_state_may_use_its_shape() -> None:
    y0 = np.ones((2, 2))

    def jac(t: float, y: np.ndarray) -> np.ndarray:
        return -np.eye(4).reshape(2, 2, 2, 2)

    sol = ode_core.solve(lambda t, y: -y, y0, [0.0, 1.0], method="kvaerno5", jac=jac, rtol=1e-8)
    np.testing.assert_allclose(sol.ys[-1], y0 * math.exp(-1.0), rtol=1e-6)


def test_explicit_method_ignores_a_jacobian_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="jac: method 'dopri5' is explicit and uses no Jacobian; it is ignored"):
        solution = ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0], jac=lambda t, y: -np.eye(2))
    assert solution.success and solution.stats.njev == 0


@pytest.mark.parametrize("method", IMPLICIT_ADAPTIVE)
def test_implicit_methods_on_torch_match_numpy(method: str, torch: ModuleType) -> None:
    f, _, y0, t, _ = STIFF_PROBLEMS["robertson"]

    def robertson_torch(time: float, y: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            (
                -0.04 * y[0] + 1e4 * y[1] * y[2],
                0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
                3e7 * y[1] ** 2,
            )
        )

    expected = ode_core.solve(f, np.array(y0), t[:8], method=method, rtol=1e-6, atol=1e-10)
    got = ode_core.solve(
        robertson_torch, torch.tensor(y0, dtype=torch.float64), t[:8], method=method, rtol=1e-6, atol=1e-10
    )
    assert got.success
    assert got.stats.n_steps == expected.stats.n_steps
    np.testing.assert_allclose(got.ys.numpy(), expected.ys, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("method", IMPLICIT_ADAPTIVE)
@pytest.mark.parametrize("problem_name", ["A1", "B2", "D1", "E2"])
def test_implicit_methods_solve_non_stiff_problems_too(method: str, problem_name: str) -> None:
    from _detest import PROBLEMS, reference_solution

    problem = next(p for p in PROBLEMS if p.name == problem_name)
    t = tuple(np.linspace(0.0, 20.0, 21).tolist())
    sol = ode_core.solve(problem.f, np.array(problem.y0), t, method=method, rtol=1e-6, atol=1e-6)
    assert sol.success
    # Looser than the explicit methods' DETEST bound: the embedded estimates of
    # these stiffly accurate pairs are made for stiff problems.
    assert scaled_error(sol.ys, reference_solution(problem, t), 1e-6, 1e-6) < 1e5


def test_radau5_refuses_a_tableau_of_another_structure() -> None:
    from ode_core._radau import RadauIIA

    with pytest.raises(ValueError, match="method: 'dopri5' is not a three-stage stiffly accurate collocation"):
        RadauIIA(TABLEAUX["dopri5"], np, np.float64, "cpu", 2, None, 1e-6, 1e-6, lambda v: float(np.max(np.abs(v))))


@pytest.mark.slow  # a tight-tolerance radau5 solve of van der Pol
def test_radau5_dense_output_is_the_collocation_polynomial() -> None:
    """Between steps the solution is read off the collocation polynomial, to the tolerance, at no cost in f."""
    f, _, y0, _, atol_factor = STIFF_PROBLEMS["van_der_pol_1000"]
    rtol = 1e-6
    outputs = np.linspace(0.0, 3000.0, 301)
    interpolated = ode_core.solve(f, np.array(y0), outputs, method="radau5", rtol=rtol, atol=rtol * atol_factor)
    stepped = ode_core.solve(f, np.array(y0), outputs[[0, -1]], method="radau5", rtol=rtol, atol=rtol * atol_factor)
    assert interpolated.success
    assert interpolated.stats.nfev == stepped.stats.nfev  # outputs cost nothing
    reference = solve_ivp(f, (0.0, 3000.0), y0, method="Radau", rtol=1e-12, atol=1e-12, t_eval=outputs).y.T
    assert scaled_error(interpolated.ys, reference, rtol, rtol * atol_factor) < 5


def test_radau5_keeps_float32_numpy_states() -> None:
    def relax(t: float, y: np.ndarray) -> np.ndarray:
        return (-50.0 * (y - math.cos(t))).astype(np.float32)

    sol = ode_core.solve(relax, np.zeros(2, dtype=np.float32), [0.0, 0.5, 1.0], method="radau5", rtol=1e-4, atol=1e-6)
    assert sol.success
    assert sol.ys.dtype == np.float32
    exact = (2500 * math.cos(1.0) + 50 * math.sin(1.0) - 2500 * math.exp(-50.0)) / 2501
    np.testing.assert_allclose(sol.ys[-1], exact, rtol=1e-3)


def test_radau5_with_fixed_steps_and_float32_torch(torch: ModuleType) -> None:
    t = np.linspace(0.0, 1.0, 11)
    sol = ode_core.solve(
        lambda time, y: -1000.0 * y, torch.ones(3, dtype=torch.float32), t, method="radau5", step_size=0.1
    )
    assert sol.success
    assert sol.ys.dtype == torch.float32
    assert float(sol.ys.abs().max()) <= 1.0
    assert float(sol.ys[-1].abs().max()) < 1e-6  # L-stable: the stiff mode is damped, not kept
