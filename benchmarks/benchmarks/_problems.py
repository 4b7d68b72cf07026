"""The NumPy test problems of the benchmarks, and their reference solutions.

Explicit (non-stiff) problems: van der Pol with mu = 1, the Arenstorf orbit,
a Kepler two-body orbit (exact solution known) and Fisher-KPP by the method
of lines (1,000 states). Stiff problems: Robertson's kinetics and van der Pol
with mu = 1000, with analytic Jacobians. The stiff right-hand sides copy
``packages/ode-core/tests/_stiff_problems.py`` (benchmarks do not import
tests).

The small explicit problems take a ``stack`` argument, the function that
assembles the derivative from its components: ``np.array`` (the fastest on
NumPy scalars) by default, ``torch.stack`` to run the same problem on
tensors (0-d tensors in, a 1-D tensor out).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.integrate import solve_ivp

Stack = Callable[[list[Any]], Any]

# scipy's DOP853 refuses rtol below 100 x machine epsilon (2.2e-14).
REFERENCE_RTOL = 2.5e-14
STIFF_REFERENCE_RTOL = 1e-13


@dataclass(frozen=True)
class Problem:
    """``dy/dt = f(t, y)``, ``y(0) = y0``, with outputs at ``n_outputs`` equally spaced times on ``[0, t_end]``.

    Attributes
    ----------
    key : str
        Short name, used as an asv parameter value.
    name : str
        Name for tables, with the state size.
    exact : callable, optional
        ``exact(times) -> ys`` (shape ``(len(times), n)``) where the solution
        is known in closed form.
    reference_atol : float
        Absolute tolerance of the numerical reference solve.
    """

    key: str
    name: str
    f: Callable[[Any, Any], Any]
    y0: np.ndarray
    t_end: float
    n_outputs: int = 21
    exact: Callable[[np.ndarray], np.ndarray] | None = None
    reference_atol: float = 1e-16

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, self.n_outputs)


def van_der_pol(mu: float = 1.0, *, stack: Stack = np.array) -> Problem:
    """Van der Pol's oscillator ``y'' = mu (1 - y^2) y' - y`` from ``(2, 0)`` on ``[0, 20]``."""

    def f(t: Any, y: Any) -> Any:
        return stack([y[1], mu * (1.0 - y[0] * y[0]) * y[1] - y[0]])

    return Problem("van_der_pol", f"van der Pol mu={mu:g} (n=2)", f, np.array([2.0, 0.0]), 20.0)


def arenstorf(*, stack: Stack = np.array) -> Problem:
    """One period of the Arenstorf orbit (Hairer, Norsett & Wanner, Solving ODEs I, II.0)."""
    mu = 0.012277471
    mu_prime = 1.0 - mu

    def f(t: Any, y: Any) -> Any:
        y1, y2, y3, y4 = y[0], y[1], y[2], y[3]
        d1 = ((y1 + mu) ** 2 + y2 * y2) ** 1.5
        d2 = ((y1 - mu_prime) ** 2 + y2 * y2) ** 1.5
        return stack(
            [
                y3,
                y4,
                y1 + 2.0 * y4 - mu_prime * (y1 + mu) / d1 - mu * (y1 - mu_prime) / d2,
                y2 - 2.0 * y3 - mu_prime * y2 / d1 - mu * y2 / d2,
            ]
        )

    y0 = np.array([0.994, 0.0, 0.0, -2.00158510637908252240537862224])
    return Problem("arenstorf", "Arenstorf orbit (n=4)", f, y0, 17.0652165601579625588917206249)


def two_body(eccentricity: float = 0.5, t_end: float = 20.0, *, stack: Stack = np.array) -> Problem:
    """Kepler's problem ``q'' = -q / |q|^3`` from the pericentre of an orbit of the given eccentricity.

    DETEST's class D (Hull, Enright, Fellen & Sedgwick 1972): semi-major axis
    and mean motion 1, so the period is ``2 pi``; ``[0, 20]`` is a little over
    three orbits. The exact solution comes from Kepler's equation.
    """
    e = eccentricity

    def f(t: Any, y: Any) -> Any:
        r3 = (y[0] * y[0] + y[1] * y[1]) ** 1.5
        return stack([y[2], y[3], -y[0] / r3, -y[1] / r3])

    def exact(times: np.ndarray) -> np.ndarray:
        mean_anomaly = np.asarray(times, dtype=np.float64)
        anomaly = mean_anomaly + e * np.sin(mean_anomaly)  # Newton on E - e sin E = M
        for _ in range(50):
            anomaly = anomaly - (anomaly - e * np.sin(anomaly) - mean_anomaly) / (1.0 - e * np.cos(anomaly))
        cos_e, sin_e = np.cos(anomaly), np.sin(anomaly)
        root = math.sqrt(1.0 - e * e)
        denominator = 1.0 - e * cos_e
        return np.stack((cos_e - e, root * sin_e, -sin_e / denominator, root * cos_e / denominator), axis=-1)

    y0 = np.array([1.0 - e, 0.0, 0.0, math.sqrt((1.0 + e) / (1.0 - e))])
    return Problem("two_body", f"two-body orbit e={e:g} (n=4)", f, y0, t_end, exact=exact)


def fisher_kpp(n: int = 1000, diffusion: float = 0.25, t_end: float = 20.0) -> Problem:
    """``u_t = D u_xx + u (1 - u)`` on ``n`` grid points (spacing 1, zero-flux ends).

    ``D / dx^2 = 0.25`` keeps the diffusion's eigenvalues (|lambda| <= 1) inside
    every method's stability region at both tolerances, so the step size is
    set by accuracy: no rejected steps, and both solvers take the same steps.
    """

    def f(t: float, u: np.ndarray) -> np.ndarray:
        du = u * (1.0 - u)
        du[1:-1] += diffusion * (u[:-2] - 2.0 * u[1:-1] + u[2:])
        du[0] += diffusion * (u[1] - u[0])
        du[-1] += diffusion * (u[-2] - u[-1])
        return du

    x = np.arange(n, dtype=np.float64)
    u0 = 1.0 / (1.0 + np.exp((x - n / 5) / 10.0))  # a front 10 points wide
    return Problem("fisher_kpp", f"Fisher-KPP MOL (n={n})", f, u0, t_end)


EXPLICIT_PROBLEMS: dict[str, Callable[[], Problem]] = {
    "van_der_pol": van_der_pol,
    "arenstorf": arenstorf,
    "two_body": two_body,
    "fisher_kpp": fisher_kpp,
}


def reference_solution(problem: Problem) -> np.ndarray:
    """The solution at ``problem.times``, shape ``(n_outputs, n)``: exact where known, else scipy ``DOP853``
    at its tightest tolerance (``rtol = 2.5e-14``)."""
    if problem.exact is not None:
        return problem.exact(problem.times)
    return _scipy_reference(problem, "DOP853", REFERENCE_RTOL)


def _scipy_reference(problem: Problem | StiffProblem, method: str, rtol: float, jac: Any = None) -> np.ndarray:
    """scipy's ``method`` at ``rtol`` and the problem's reference ``atol``, at ``problem.times``: (times, n)."""
    times = problem.times
    # Only the implicit methods take a Jacobian; solve_ivp warns at any other.
    options = {} if jac is None else {"jac": jac}
    solution = solve_ivp(
        problem.f,
        (float(times[0]), float(times[-1])),
        problem.y0,
        method=method,
        t_eval=times,
        rtol=rtol,
        atol=problem.reference_atol,
        **options,
    )
    if not solution.success:
        raise RuntimeError(f"reference solve failed on {problem.name}: {solution.message}")
    return np.asarray(solution.y).T


def max_abs_error(ys: Any, reference: np.ndarray) -> float:
    """Largest absolute error over every output time and component (NaN if the shapes differ)."""
    values = np.asarray(ys, dtype=np.float64)
    if values.shape != reference.shape:
        return math.nan
    return float(np.max(np.abs(values - reference)))


# --------------------------------------------------------------------------- stiff problems


def robertson_rhs(t: float, y: np.ndarray) -> np.ndarray:
    """Robertson's chemical kinetics (Hairer & Wanner, Solving ODEs II, IV.1, ROBER)."""
    return np.array(
        [
            -0.04 * y[0] + 1e4 * y[1] * y[2],
            0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
            3e7 * y[1] ** 2,
        ]
    )


def robertson_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [-0.04, 1e4 * y[2], 1e4 * y[1]],
            [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
            [0.0, 6e7 * y[1], 0.0],
        ]
    )


STIFF_VAN_DER_POL_MU = 1000.0


def stiff_van_der_pol_rhs(t: float, y: np.ndarray) -> np.ndarray:
    """Van der Pol's oscillator ``y'' = mu (1 - y^2) y' - y`` with mu = 1000."""
    return np.array([y[1], STIFF_VAN_DER_POL_MU * (1.0 - y[0] ** 2) * y[1] - y[0]])


def stiff_van_der_pol_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    mu = STIFF_VAN_DER_POL_MU
    return np.array([[0.0, 1.0], [-2.0 * mu * y[0] * y[1] - 1.0, mu * (1.0 - y[0] ** 2)]])


@dataclass(frozen=True)
class StiffProblem:
    """A stiff problem with its analytic Jacobian and the ``(rtol, atol)`` pairs it is benchmarked at."""

    key: str
    name: str
    f: Callable[[float, np.ndarray], np.ndarray]
    jac: Callable[[float, np.ndarray], np.ndarray]
    y0: np.ndarray
    t_end: float
    tolerances: tuple[tuple[float, float], ...]
    reference_atol: float
    n_outputs: int = 11

    @property
    def times(self) -> np.ndarray:
        return np.linspace(0.0, self.t_end, self.n_outputs)

    def atol_for(self, rtol: float) -> float:
        """The absolute tolerance paired with ``rtol`` in :attr:`tolerances`."""
        return dict(self.tolerances)[rtol]


STIFF_PROBLEMS: dict[str, StiffProblem] = {
    problem.key: problem
    for problem in (
        StiffProblem(
            "robertson",
            "Robertson (n=3)",
            robertson_rhs,
            robertson_jacobian,
            np.array([1.0, 0.0, 0.0]),
            1e5,
            ((1e-6, 1e-10), (1e-4, 1e-8)),
            1e-16,  # y[1] stays below 4e-5
        ),
        StiffProblem(
            "van_der_pol_1000",
            "van der Pol mu=1000 (n=2)",
            stiff_van_der_pol_rhs,
            stiff_van_der_pol_jacobian,
            np.array([2.0, 0.0]),
            3000.0,
            ((1e-6, 1e-6), (1e-4, 1e-4)),
            1e-13,
        ),
    )
}


def stiff_reference(problem: StiffProblem) -> np.ndarray:
    """scipy ``Radau`` with the analytic Jacobian at ``rtol = 1e-13``, at ``problem.times``."""
    return _scipy_reference(problem, "Radau", STIFF_REFERENCE_RTOL, problem.jac)


def error_in_tolerance_units(ys: Any, reference: np.ndarray, rtol: float, atol: float) -> float:
    """``max |y - ref| / (atol + rtol |ref|)`` over every output and component (NaN if the shapes differ)."""
    values = np.asarray(ys, dtype=np.float64)
    if values.shape != reference.shape:
        return math.nan
    return float(np.max(np.abs(values - reference) / (atol + rtol * np.abs(reference))))
