"""The DETEST non-stiff test problems, with reference solutions.

Problems of classes A-E from T. E. Hull, W. H. Enright, B. M. Fellen and
A. E. Sedgwick, "Comparing numerical methods for ordinary differential
equations", SIAM J. Numer. Anal. 9 (1972) 603-637, in the unscaled form of
the Toronto re-implementation (W. H. Enright and J. D. Pryce, "Two FORTRAN
packages for assessing initial value methods", ACM TOMS 13 (1987) 1-27,
Algorithm 648), against which the definitions here were checked. Every problem
is posed on ``[0, 20]``.

Class A: scalar equations; B: small nonlinear systems; C: 10-dimensional
linear chains (C1-C3); D: two-body orbits of eccentricity 0.1, 0.5 and 0.9
(D1, D3, D5); E: second-order equations written as first-order systems.

``reference_solution`` integrates a problem with scipy's DOP853 at
``rtol = atol = 1e-13``. Where a closed form is known (A1-A4, D1/D3/D5 via
Kepler's equation, E1 via the Bessel function ``J_{1/2}``), the problem
carries it as ``exact``, so the reference itself can be checked.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

__all__ = [
    "DETEST_CITATION",
    "PROBLEMS",
    "PROBLEMS_BY_NAME",
    "DetestProblem",
    "RightHandSide",
    "reference_solution",
]

DETEST_CITATION = (
    "T. E. Hull, W. H. Enright, B. M. Fellen, A. E. Sedgwick, Comparing numerical methods for ordinary "
    "differential equations, SIAM J. Numer. Anal. 9 (1972) 603-637"
)

Array = NDArray[np.float64]
RightHandSide = Callable[[float, Array], Array]

T_END = 20.0
"""Every DETEST problem is posed on ``[0, 20]``."""

REFERENCE_TOLERANCE = 1e-13
"""``rtol`` and ``atol`` of the scipy DOP853 reference solutions."""


@dataclass(frozen=True, eq=False)
class DetestProblem:
    """One DETEST problem ``y' = f(t, y)``, ``y(0) = y0`` on ``[0, t_end]``.

    Attributes
    ----------
    name : str
        DETEST's name, e.g. ``"B5"``.
    description : str
        What the problem models.
    f : callable
        ``f(t, y) -> dy/dt`` on 1-D float64 NumPy arrays.
    y0 : ndarray, shape (n,)
        Initial state (read-only; copy it before handing it to a solver that
        writes in place).
    t_end : float
        End of the interval (20 for every DETEST problem).
    citation : str
        Where the problem is defined.
    exact : callable, optional
        ``exact(t) -> y(t)``, the closed-form solution where one is known.
    """

    name: str
    description: str
    f: RightHandSide
    y0: Array
    t_end: float = T_END
    citation: str = DETEST_CITATION
    exact: Callable[[float], Array] | None = None

    def __repr__(self) -> str:
        return f"DetestProblem({self.name})"


def _frozen(values: list[float]) -> Array:
    array = np.array(values, dtype=np.float64)
    array.setflags(write=False)
    return array


# Class A: single equations.


def _a1(t: float, y: Array) -> Array:
    return -y


def _a2(t: float, y: Array) -> Array:
    return -0.5 * y**3


def _a3(t: float, y: Array) -> Array:
    return y * math.cos(t)


def _a4(t: float, y: Array) -> Array:
    return 0.25 * y * (1.0 - y / 20.0)


# Class B: small nonlinear systems.


def _b1(t: float, y: Array) -> Array:
    """Lotka-Volterra predator-prey."""
    product = y[0] * y[1]
    return np.array([2.0 * (y[0] - product), -(y[1] - product)])


def _b2(t: float, y: Array) -> Array:
    """Linear chain of three compartments."""
    return np.array([-y[0] + y[1], y[0] - 2.0 * y[1] + y[2], y[1] - y[2]])


def _b3(t: float, y: Array) -> Array:
    """Nonlinear chemical reaction."""
    square = y[1] * y[1]
    return np.array([-y[0], y[0] - square, square])


def _b4(t: float, y: Array) -> Array:
    radius = math.hypot(y[0], y[1])
    return np.array([-y[1] - y[0] * y[2] / radius, y[0] - y[1] * y[2] / radius, y[0] / radius])


def _b5(t: float, y: Array) -> Array:
    """Euler's equations of a rigid body without external forces."""
    return np.array([y[1] * y[2], -y[0] * y[2], -0.51 * y[0] * y[1]])


# Class C: 10-dimensional linear chains.


def _c1(t: float, y: Array) -> Array:
    """Radioactive decay chain with equal rates: the matrix is bidiagonal."""
    dy = np.empty_like(y)
    dy[0] = -y[0]
    dy[1:-1] = y[:-2] - y[1:-1]
    dy[-1] = y[-2]
    return dy


_C2_RATES = np.arange(1.0, 10.0)  # rate i on component i (1-based), i = 1..9


def _c2(t: float, y: Array) -> Array:
    """Decay chain with rates 1, 2, ..., 9."""
    outflow = _C2_RATES * y[:-1]
    dy = np.empty_like(y)
    dy[0] = -outflow[0]
    dy[1:-1] = outflow[:-1] - outflow[1:]
    dy[-1] = outflow[-1]
    return dy


def _c3(t: float, y: Array) -> Array:
    """The tridiagonal matrix (1, -2, 1): a semi-discrete heat equation."""
    dy = -2.0 * y
    dy[1:] += y[:-1]
    dy[:-1] += y[1:]
    return dy


# Class D: the two-body problem, y = (x, y, x', y'), unit mass and semi-axis.


def _two_body(t: float, y: Array) -> Array:
    radius_cubed = (y[0] * y[0] + y[1] * y[1]) ** 1.5
    return np.array([y[2], y[3], -y[0] / radius_cubed, -y[1] / radius_cubed])


def _orbit_start(eccentricity: float) -> Array:
    """At perihelion: ``(1 - e, 0, 0, sqrt((1 + e) / (1 - e)))``."""
    return _frozen([1.0 - eccentricity, 0.0, 0.0, math.sqrt((1.0 + eccentricity) / (1.0 - eccentricity))])


def _kepler_orbit(eccentricity: float) -> Callable[[float], Array]:
    """Closed-form orbit: solve Kepler's equation ``E - e sin E = t`` by Newton's method."""

    def state(t: float) -> Array:
        anomaly = t if eccentricity < 0.8 else math.pi
        for _ in range(100):
            step = (anomaly - eccentricity * math.sin(anomaly) - t) / (1.0 - eccentricity * math.cos(anomaly))
            anomaly -= step
            if abs(step) <= 1e-15 * max(1.0, abs(anomaly)):
                break
        sine, cosine = math.sin(anomaly), math.cos(anomaly)
        minor = math.sqrt(1.0 - eccentricity**2)
        denominator = 1.0 - eccentricity * cosine
        return np.array([cosine - eccentricity, minor * sine, -sine / denominator, minor * cosine / denominator])

    return state


# Class E: second-order equations as first-order systems, y = (u, u').


def _e1(t: float, y: Array) -> Array:
    """Bessel's equation of order 1/2 in ``x = t + 1``."""
    x = t + 1.0
    return np.array([y[1], -(y[1] / x + (1.0 - 0.25 / (x * x)) * y[0])])


def _e2(t: float, y: Array) -> Array:
    """Van der Pol's equation, mu = 1."""
    return np.array([y[1], (1.0 - y[0] * y[0]) * y[1] - y[0]])


def _e3(t: float, y: Array) -> Array:
    """Duffing's equation with a periodic forcing."""
    return np.array([y[1], y[0] ** 3 / 6.0 - y[0] + 2.0 * math.sin(2.78535 * t)])


def _e4(t: float, y: Array) -> Array:
    return np.array([y[1], 0.032 - 0.4 * y[1] * y[1]])


def _e5(t: float, y: Array) -> Array:
    return np.array([y[1], math.sqrt(1.0 + y[1] * y[1]) / (25.0 - t)])


def _bessel_half(t: float) -> Array:
    """``u = J_{1/2}(t + 1) = sqrt(2 / (pi x)) sin x`` and its derivative."""
    x = t + 1.0
    amplitude = math.sqrt(2.0 / (math.pi * x))
    return np.array([amplitude * math.sin(x), amplitude * (math.cos(x) - math.sin(x) / (2.0 * x))])


def _cite(name: str) -> str:
    return f"{DETEST_CITATION}, problem {name}"


PROBLEMS: tuple[DetestProblem, ...] = (
    DetestProblem(
        "A1",
        "negative exponential",
        _a1,
        _frozen([1.0]),
        citation=_cite("A1"),
        exact=lambda t: np.array([math.exp(-t)]),
    ),
    DetestProblem(
        "A2",
        "y' = -y^3/2",
        _a2,
        _frozen([1.0]),
        citation=_cite("A2"),
        exact=lambda t: np.array([1.0 / math.sqrt(1.0 + t)]),
    ),
    DetestProblem(
        "A3",
        "oscillatory linear equation y' = y cos t",
        _a3,
        _frozen([1.0]),
        citation=_cite("A3"),
        exact=lambda t: np.array([math.exp(math.sin(t))]),
    ),
    DetestProblem(
        "A4",
        "logistic curve",
        _a4,
        _frozen([1.0]),
        citation=_cite("A4"),
        exact=lambda t: np.array([20.0 / (1.0 + 19.0 * math.exp(-t / 4.0))]),
    ),
    DetestProblem("B1", "Lotka-Volterra growth", _b1, _frozen([1.0, 3.0]), citation=_cite("B1")),
    DetestProblem("B2", "linear chemical reaction", _b2, _frozen([2.0, 0.0, 1.0]), citation=_cite("B2")),
    DetestProblem("B3", "nonlinear chemical reaction", _b3, _frozen([1.0, 0.0, 0.0]), citation=_cite("B3")),
    DetestProblem(
        "B4", "nonlinear system with a circular limit cycle", _b4, _frozen([3.0, 0.0, 0.0]), citation=_cite("B4")
    ),
    DetestProblem("B5", "Euler's rigid body equations", _b5, _frozen([0.0, 1.0, 1.0]), citation=_cite("B5")),
    DetestProblem("C1", "radioactive decay chain", _c1, _frozen([1.0] + [0.0] * 9), citation=_cite("C1")),
    DetestProblem("C2", "decay chain with unequal rates", _c2, _frozen([1.0] + [0.0] * 9), citation=_cite("C2")),
    DetestProblem("C3", "tridiagonal linear system", _c3, _frozen([1.0] + [0.0] * 9), citation=_cite("C3")),
    *(
        DetestProblem(
            name,
            f"two-body orbit, eccentricity {eccentricity}",
            _two_body,
            _orbit_start(eccentricity),
            citation=_cite(name),
            exact=_kepler_orbit(eccentricity),
        )
        for name, eccentricity in (("D1", 0.1), ("D3", 0.5), ("D5", 0.9))
    ),
    DetestProblem(
        "E1",
        "Bessel's equation of order 1/2",
        _e1,
        _frozen(list(_bessel_half(0.0))),
        citation=_cite("E1"),
        exact=_bessel_half,
    ),
    DetestProblem("E2", "Van der Pol's equation", _e2, _frozen([2.0, 0.0]), citation=_cite("E2")),
    DetestProblem("E3", "forced Duffing equation", _e3, _frozen([0.0, 0.0]), citation=_cite("E3")),
    DetestProblem("E4", "u'' = 0.032 - 0.4 u'^2", _e4, _frozen([30.0, 0.0]), citation=_cite("E4")),
    DetestProblem("E5", "u'' = sqrt(1 + u'^2) / (25 - t)", _e5, _frozen([0.0, 0.0]), citation=_cite("E5")),
)
"""Every problem, in DETEST's order."""

PROBLEMS_BY_NAME: dict[str, DetestProblem] = {problem.name: problem for problem in PROBLEMS}


@lru_cache(maxsize=64)
def reference_solution(problem: DetestProblem, times: tuple[float, ...]) -> Array:
    """``y`` at ``times`` (shape ``(len(times), n)``), from scipy's DOP853 at rtol = atol = 1e-13.

    Cached per problem and tuple of times; the result is read-only.
    """
    result = solve_ivp(
        problem.f,
        (times[0], times[-1]),
        np.array(problem.y0),
        method="DOP853",
        t_eval=np.array(times),
        rtol=REFERENCE_TOLERANCE,
        atol=REFERENCE_TOLERANCE,
    )
    if not result.success:
        raise RuntimeError(f"reference solve of {problem.name} failed: {result.message}")
    values: Array = np.ascontiguousarray(result.y.T)
    values.setflags(write=False)
    return values
