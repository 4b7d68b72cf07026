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


def _scipy_reference(
    problem: Problem | StiffProblem, method: str, rtol: float, jac: Any = None, jac_sparsity: Any = None
) -> np.ndarray:
    """scipy's ``method`` at ``rtol`` and the problem's reference ``atol``, at ``problem.times``: (times, n)."""
    times = problem.times
    # Only the implicit methods take a Jacobian; solve_ivp warns at any other.
    options = {} if jac is None else {"jac": jac}
    if jac_sparsity is not None:
        options["jac_sparsity"] = jac_sparsity
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


def hires_rhs(t: float, y: np.ndarray) -> np.ndarray:
    """HIRES, Schaefer's plant physiology model (Hairer & Wanner, Solving ODEs II, IV.10), 8 states."""
    return np.array(
        [
            -1.71 * y[0] + 0.43 * y[1] + 8.32 * y[2] + 0.0007,
            1.71 * y[0] - 8.75 * y[1],
            -10.03 * y[2] + 0.43 * y[3] + 0.035 * y[4],
            8.32 * y[1] + 1.71 * y[2] - 1.12 * y[3],
            -1.745 * y[4] + 0.43 * y[5] + 0.43 * y[6],
            -280.0 * y[5] * y[7] + 0.69 * y[3] + 1.71 * y[4] - 0.43 * y[5] + 0.69 * y[6],
            280.0 * y[5] * y[7] - 1.81 * y[6],
            -280.0 * y[5] * y[7] + 1.81 * y[6],
        ]
    )


def hires_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    jac = np.zeros((8, 8))
    jac[0, :3] = (-1.71, 0.43, 8.32)
    jac[1, :2] = (1.71, -8.75)
    jac[2, 2:5] = (-10.03, 0.43, 0.035)
    jac[3, 1:4] = (8.32, 1.71, -1.12)
    jac[4, 4:7] = (-1.745, 0.43, 0.43)
    jac[5, 3:8] = (0.69, 1.71, -0.43 - 280.0 * y[7], 0.69, -280.0 * y[5])
    jac[6, 5:8] = (280.0 * y[7], -1.81, 280.0 * y[5])
    jac[7, 5:8] = (-280.0 * y[7], 1.81, -280.0 * y[5])
    return jac


MEDAKZO_POINTS = 200


def medakzo_rhs(t: float, y: np.ndarray) -> np.ndarray:
    """MEDAKZO (Test Set for IVP Solvers, Mazzia & Magherini): a reaction front through a medium, the
    PDE ``u_t = alpha(x) u_x + beta(x) u_xx - k u v``, ``v_t = -k u v`` on ``x in (0, 1]`` by central
    differences at N = 200 points (``alpha = 2 (x - 1)^3 / c^2``, ``beta = (x - 1)^4 / c^2``, k = 100,
    c = 4); u(0, t) = 2 up to t = 5 and 0 after, u_x(1, t) = 0. State (u_1, v_1, u_2, v_2, ...), 400."""
    n = MEDAKZO_POINTS
    u, v = y[0::2], y[1::2]
    dx = 1.0 / n
    x = np.arange(1, n + 1) * dx
    alpha = 2.0 * (x - 1.0) ** 3 / 16.0
    beta = (x - 1.0) ** 4 / 16.0
    left = np.concatenate(([2.0 if t <= 5.0 else 0.0], u[:-1]))
    right = np.concatenate((u[1:], [u[-2]]))  # u_{N+1} = u_{N-1}
    out = np.empty_like(y)
    reaction = 100.0 * u * v
    out[0::2] = alpha * (right - left) / (2.0 * dx) + beta * (left - 2.0 * u + right) / dx**2 - reaction
    out[1::2] = -reaction
    return out


def medakzo_sparsity() -> Any:
    """Where MEDAKZO's Jacobian may be nonzero: u_j on u_{j-1}, u_j, u_{j+1}, v_j; v_j on u_j, v_j."""
    import scipy.sparse

    n = MEDAKZO_POINTS
    rows, cols = [], []
    for j in range(n):
        u, v = 2 * j, 2 * j + 1
        for col in (u - 2, u, u + 2, v):
            if 0 <= col < 2 * n:
                rows.append(u)
                cols.append(col)
        rows += [v, v]
        cols += [u, v]
    return scipy.sparse.csc_matrix((np.ones(len(rows)), (rows, cols)), shape=(2 * n, 2 * n))


BRUSSELATOR_GRID = 32


def brusselator_2d_rhs(t: float, y: np.ndarray) -> np.ndarray:
    """The 2-D Brusselator BRUSS-2D (Hairer & Wanner, Solving ODEs II, IV.10): ``u_t = 1 + u^2 v - 4.4 u +
    0.1 lap u + f``, ``v_t = 3.4 u - u^2 v + 0.1 lap v`` on the periodic unit square, an N = 32 grid
    (2 N^2 = 2048 states, u then v), with the source f = 5 in the disc of radius 0.1 about (0.3, 0.6) from
    t = 1.1."""
    n = BRUSSELATOR_GRID
    u = y[: n * n].reshape(n, n)
    v = y[n * n :].reshape(n, n)
    scale = 0.1 * n * n  # alpha / dx^2

    def laplacian(w: np.ndarray) -> np.ndarray:
        return np.roll(w, 1, 0) + np.roll(w, -1, 0) + np.roll(w, 1, 1) + np.roll(w, -1, 1) - 4.0 * w

    grid = np.arange(n) / n
    x, yy = np.meshgrid(grid, grid, indexing="ij")
    source = 5.0 * (((x - 0.3) ** 2 + (yy - 0.6) ** 2 <= 0.01) & (t >= 1.1))
    u2v = u * u * v
    du = 1.0 + u2v - 4.4 * u + scale * laplacian(u) + source
    dv = 3.4 * u - u2v + scale * laplacian(v)
    return np.concatenate((du.ravel(), dv.ravel()))


def brusselator_2d_initial() -> np.ndarray:
    n = BRUSSELATOR_GRID
    grid = np.arange(n) / n
    x, yy = np.meshgrid(grid, grid, indexing="ij")
    return np.concatenate(((22.0 * yy * (1.0 - yy) ** 1.5).ravel(), (27.0 * x * (1.0 - x) ** 1.5).ravel()))


def brusselator_2d_sparsity() -> Any:
    """Each u and v couples to its four periodic neighbours of the same species and to u and v at its point."""
    import scipy.sparse

    n = BRUSSELATOR_GRID
    points = n * n
    index = np.arange(points).reshape(n, n)
    neighbours = [np.roll(index, shift, axis).ravel() for shift in (1, -1) for axis in (0, 1)]
    rows, cols = [], []
    for species in (0, 1):
        offset = species * points
        for columns in (index.ravel(), *neighbours):
            rows.append(offset + index.ravel())
            cols.append(offset + columns)
        rows.append(offset + index.ravel())
        cols.append((1 - species) * points + index.ravel())
    rows_all, cols_all = np.concatenate(rows), np.concatenate(cols)
    return scipy.sparse.csc_matrix((np.ones(rows_all.size), (rows_all, cols_all)), shape=(2 * points, 2 * points))


@dataclass(frozen=True)
class StiffProblem:
    """A stiff problem with its analytic Jacobian (or, for the large ones, its sparsity) and the
    ``(rtol, atol)`` pairs it is benchmarked at."""

    key: str
    name: str
    f: Callable[[float, np.ndarray], np.ndarray]
    jac: Callable[[float, np.ndarray], np.ndarray] | None
    y0: np.ndarray
    t_end: float
    tolerances: tuple[tuple[float, float], ...]
    reference_atol: float
    n_outputs: int = 11
    sparsity: Callable[[], Any] | None = None  # the Jacobian's pattern, for jac_sparsity
    reference_rtol: float = 1e-13

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
        StiffProblem(
            "hires",
            "HIRES (n=8)",
            hires_rhs,
            hires_jacobian,
            np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0057]),
            321.8122,
            ((1e-6, 1e-10), (1e-4, 1e-8)),
            1e-14,
        ),
    )
}

LARGE_STIFF_PROBLEMS: dict[str, StiffProblem] = {
    problem.key: problem
    for problem in (
        StiffProblem(
            "medakzo",
            "MEDAKZO (n=400, sparse)",
            medakzo_rhs,
            None,
            np.tile([0.0, 1.0], MEDAKZO_POINTS),
            20.0,
            ((1e-6, 1e-9),),
            1e-12,
            sparsity=medakzo_sparsity,
            reference_rtol=1e-10,
        ),
        StiffProblem(
            "brusselator_2d",
            "2-D Brusselator (n=2048, sparse)",
            brusselator_2d_rhs,
            None,
            brusselator_2d_initial(),
            1.5,
            ((1e-6, 1e-9),),
            1e-12,
            sparsity=brusselator_2d_sparsity,
            reference_rtol=1e-10,
        ),
    )
}
"""Large problems with a sparse Jacobian, solved with ``jac_sparsity`` (grouped differences, sparse LU)."""


def stiff_reference(problem: StiffProblem) -> np.ndarray:
    """scipy ``Radau`` with the analytic Jacobian at ``rtol = 1e-13`` (a large problem: with its sparsity
    at its ``reference_rtol``), at ``problem.times``."""
    if problem.sparsity is not None:
        return _scipy_reference(problem, "Radau", problem.reference_rtol, jac_sparsity=problem.sparsity())
    return _scipy_reference(problem, "Radau", STIFF_REFERENCE_RTOL, problem.jac)


def error_in_tolerance_units(ys: Any, reference: np.ndarray, rtol: float, atol: float) -> float:
    """``max |y - ref| / (atol + rtol |ref|)`` over every output and component (NaN if the shapes differ)."""
    values = np.asarray(ys, dtype=np.float64)
    if values.shape != reference.shape:
        return math.nan
    return float(np.max(np.abs(values - reference) / (atol + rtol * np.abs(reference))))
