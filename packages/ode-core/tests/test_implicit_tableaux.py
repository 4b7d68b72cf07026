"""The implicit Runge--Kutta tableaux: order conditions and linear stability.

These tableaux are not in the registry yet (no implicit stepper), so they are
imported from their modules. The stability function of a Runge--Kutta method is
``R(z) = 1 + z b^T (I - z A)^{-1} 1``: the step multiplier on ``y' = lambda y``
with ``z = h lambda``. A-stability is checked as ``|R(iy)| <= 1`` on the
imaginary axis plus samples of the left half-plane; L-stability as
``R(z) -> 0`` for ``z -> -inf``, where ``R`` is evaluated exactly at
``z = -10**20`` (``R(z) = R(-inf) + O(1/z)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import ode_core
import pytest
from _rooted_trees import ElementaryWeights, trees_of_order
from ode_core._tableau import ButcherTableau
from ode_core._tableaux.backward_euler import BACKWARD_EULER
from ode_core._tableaux.gauss_legendre import GL4, GL6
from ode_core._tableaux.implicit_midpoint import IMPLICIT_MIDPOINT
from ode_core._tableaux.kvaerno3 import KVAERNO3
from ode_core._tableaux.kvaerno5 import KVAERNO5
from ode_core._tableaux.radau3 import RADAU3
from ode_core._tableaux.radau5 import RADAU5, RADAU5_FIXED
from ode_core._tableaux.sdirk2 import SDIRK2
from ode_core._tableaux.trapezoid import TRAPEZOID
from ode_core._tableaux.trbdf2 import TRBDF2

DECIMAL_TOLERANCE = 1e-12
"""Allowed order-condition residual for tableaux of published decimals (as in test_order_conditions)."""

IMPLICIT = {
    t.name: t
    for t in (
        BACKWARD_EULER,
        TRAPEZOID,
        IMPLICIT_MIDPOINT,
        SDIRK2,
        TRBDF2,
        KVAERNO3,
        KVAERNO5,
        RADAU3,
        RADAU5,
        RADAU5_FIXED,
        GL4,
        GL6,
    )
}
L_STABLE = ("backward_euler", "sdirk2", "trbdf2", "kvaerno3", "kvaerno5", "radau3", "radau5", "radau5_fixed")
NOT_L_STABLE = ("trapezoid", "implicit_midpoint", "gl4", "gl6")  # |R(-inf)| = 1: the Gauss methods too
ESDIRK = ("trapezoid", "trbdf2", "kvaerno3", "kvaerno5")

FAR_LEFT = Fraction(-(10**20))
"""Where ``R(-inf)`` is read off; the ``O(1/z)`` remainder is far below every tolerance used."""

# kvaerno3's gamma is a cubic's root published to 10 digits (off by ~8e-12), so
# its R(-inf) is ~6e-11, not 0; kvaerno5's 17-digit coefficients give ~1e-16.
# radau5's 40-digit coefficients give ~1e-38.
# sdirk2, trbdf2 and radau5 carry 40-digit decimals of irrational coefficients.
L_STABLE_TOLERANCE = {
    "backward_euler": 0.0,
    "sdirk2": 1e-30,
    "trbdf2": 1e-30,
    "kvaerno3": 1e-9,
    "kvaerno5": 1e-13,
    "radau3": 0.0,
    "radau5": 1e-30,
    "radau5_fixed": 1e-30,
}


def _tolerance(tableau: ButcherTableau) -> float:
    return 0.0 if tableau.exact else DECIMAL_TOLERANCE


def _worst_residual(weights: ElementaryWeights, b: Sequence[Fraction], tree_order: int) -> Fraction:
    return max(abs(Fraction(weights.order_residual(b, tree))) for tree in trees_of_order(tree_order))


def _assert_order(tableau: ButcherTableau, b: Sequence[Fraction], stated: int, what: str) -> None:
    """Conditions up to ``stated`` hold; some condition of ``stated + 1`` fails."""
    weights = ElementaryWeights.for_tableau(tableau)
    tolerance = _tolerance(tableau)
    for n in range(1, stated + 1):
        worst = _worst_residual(weights, b, n)
        assert worst <= tolerance, f"{what}: order-{n} residual {float(worst):.3g} (stated order {stated})"
    worst = _worst_residual(weights, b, stated + 1)
    assert worst > tolerance, f"{what}: every order-{stated + 1} condition holds (stated order {stated})"


def _solve(matrix: list[list], rhs: list) -> list:
    """Gaussian elimination with partial pivoting, in whatever field the entries are (Fraction or complex)."""
    n = len(rhs)
    m = [[*row, r] for row, r in zip(matrix, rhs)]
    for k in range(n):
        pivot = max(range(k, n), key=lambda i: abs(m[i][k]))
        m[k], m[pivot] = m[pivot], m[k]
        for i in range(k + 1, n):
            factor = m[i][k] / m[k][k]
            m[i] = [x - factor * y for x, y in zip(m[i], m[k])]
    x = [m[0][0] * 0] * n
    for i in reversed(range(n)):
        x[i] = (m[i][n] - sum((m[i][j] * x[j] for j in range(i + 1, n)), m[i][n] * 0)) / m[i][i]
    return x


def _stability(tableau: ButcherTableau, z: Fraction | complex) -> Fraction | complex:
    """``R(z) = 1 + z b^T (I - z A)^{-1} 1``: exact for Fraction ``z``, in floats for complex ``z``."""
    convert = Fraction if isinstance(z, Fraction) else complex
    s = tableau.n_stages
    matrix = [[convert(i == j) - z * convert(tableau.a[i][j]) for j in range(s)] for i in range(s)]
    stages = _solve(matrix, [convert(1)] * s)
    return 1 + z * sum((convert(bi) * g for bi, g in zip(tableau.b, stages)), convert(0))


_IMAGINARY_AXIS = np.concatenate([[0.0], np.logspace(-3, 6, 400)])
_LEFT_HALF_PLANE = [
    complex(-x, y) for x in np.logspace(-3, 4, 25) for y in np.concatenate([[0.0], np.logspace(-3, 4, 25)])
]


# ------------------------------------------------------------------ the tableaux


@pytest.mark.parametrize("name", sorted(IMPLICIT))
def test_tableau_is_implicit_and_well_formed(name: str) -> None:
    tableau = IMPLICIT[name]
    assert tableau.name == name
    assert tableau.implicit
    assert not tableau.fsal
    assert tableau.citation


@pytest.mark.parametrize("name", ESDIRK)
def test_esdirk_structure(name: str) -> None:
    """Explicit first stage, one diagonal ``gamma`` below it, and ``b`` = the last row (stiffly accurate)."""
    tableau = IMPLICIT[name]
    s = tableau.n_stages
    assert tableau.c[0] == 0
    assert all(x == 0 for x in tableau.a[0])
    gamma = tableau.a[1][1]
    assert gamma > 0
    for i in range(1, s):
        assert tableau.a[i][i] == gamma
        assert all(tableau.a[i][j] == 0 for j in range(i + 1, s))
    assert tableau.a[-1] == tableau.b
    assert tableau.c[-1] == 1


@pytest.mark.parametrize(
    ("name", "gamma"),
    [("trapezoid", Fraction(1, 2)), ("kvaerno3", Fraction("0.4358665215")), ("kvaerno5", Fraction("0.26"))],
)
def test_esdirk_diagonal(name: str, gamma: Fraction) -> None:
    assert IMPLICIT[name].a[1][1] == gamma


def test_kvaerno_embedded_solution_is_the_penultimate_stage() -> None:
    """Both Kvaerno pairs take the embedded solution from the second-to-last stage."""
    for tableau in (KVAERNO3, KVAERNO5):
        assert tableau.b_embedded == tableau.a[-2]
        assert tableau.c[-2] == 1


def test_radau5_is_the_radau_iia_collocation_method() -> None:
    """Nodes at the zeros of the Radau polynomial, stage order 3 (``A c^(k-1) = c^k / k``), ``b`` = last row,
    and an explicit zeroth stage that only the error estimate weighs (Hairer's ``gamma0 = 1/mu``)."""
    c = [float(x) for x in RADAU5.c[1:]]
    np.testing.assert_allclose(c, [(4 - 6**0.5) / 10, (4 + 6**0.5) / 10, 1.0], rtol=1e-15)
    a = np.array([[float(x) for x in row[1:]] for row in RADAU5.a[1:]])
    for k in (1, 2, 3):
        np.testing.assert_allclose(a @ np.power(c, k - 1), np.power(c, k) / k, rtol=1e-14)
    assert RADAU5.b == RADAU5.a[-1]
    assert RADAU5.b[0] == 0 and RADAU5.c[0] == 0
    assert all(row[0] == 0 for row in RADAU5.a) and all(x == 0 for x in RADAU5.a[0])
    assert not RADAU5.diagonally_implicit and KVAERNO5.diagonally_implicit
    mu = np.linalg.eigvals(np.linalg.inv(a))
    real_mu = float(mu[np.argmin(np.abs(mu.imag))].real)
    assert real_mu == pytest.approx(3 + 3 ** (2 / 3) - 3 ** (1 / 3), rel=1e-13)
    assert RADAU5.error_weights is not None
    assert float(RADAU5.error_weights[0]) == pytest.approx(1 / real_mu, rel=1e-14)


def test_radau5_fixed_is_radau5_without_its_error_stage() -> None:
    """torchdiffeq's radauIIA5: the same collocation coefficients, no zeroth stage, no estimate."""
    assert RADAU5_FIXED.c == RADAU5.c[1:]
    assert RADAU5_FIXED.a == tuple(row[1:] for row in RADAU5.a[1:])
    assert RADAU5_FIXED.b == RADAU5.b[1:]
    assert not RADAU5_FIXED.adaptive and RADAU5.adaptive
    assert ode_core.ALIASES["radauIIA5"] == "radau5_fixed"


# -------------------------------------------------------------- order conditions


@pytest.mark.parametrize("name", sorted(IMPLICIT))
def test_weights_have_stated_order(name: str) -> None:
    tableau = IMPLICIT[name]
    _assert_order(tableau, tableau.b, tableau.order, f"{name}: b")


@pytest.mark.parametrize("name", ["kvaerno3", "kvaerno5", "radau5"])
def test_embedded_weights_have_stated_order(name: str) -> None:
    tableau = IMPLICIT[name]
    assert tableau.b_embedded is not None and tableau.embedded_order is not None
    _assert_order(tableau, tableau.b_embedded, tableau.embedded_order, f"{name}: b_embedded")


def test_expected_orders() -> None:
    assert {name: t.order for name, t in IMPLICIT.items()} == {
        "backward_euler": 1,
        "trapezoid": 2,
        "implicit_midpoint": 2,
        "sdirk2": 2,
        "trbdf2": 2,
        "kvaerno3": 3,
        "kvaerno5": 5,
        "radau3": 3,
        "radau5": 5,
        "radau5_fixed": 5,
        "gl4": 4,
        "gl6": 6,
    }
    assert (KVAERNO3.embedded_order, KVAERNO5.embedded_order, RADAU5.embedded_order) == (2, 4, 3)


# ------------------------------------------------------------------- stability


def test_stability_function_of_simple_methods() -> None:
    """The evaluator reproduces the closed forms ``1/(1 - z)`` and ``(1 + z/2)/(1 - z/2)``."""
    for z in (Fraction(-3), Fraction(1, 7), Fraction(-1000)):
        assert _stability(BACKWARD_EULER, z) == 1 / (1 - z)
        assert _stability(TRAPEZOID, z) == (1 + z / 2) / (1 - z / 2)
        assert _stability(IMPLICIT_MIDPOINT, z) == (1 + z / 2) / (1 - z / 2)


@pytest.mark.parametrize("name", sorted(IMPLICIT))
def test_a_stable(name: str) -> None:
    """``|R(z)| <= 1`` on the imaginary axis (both signs) and on samples of the left half-plane."""
    tableau = IMPLICIT[name]
    on_axis = [abs(_stability(tableau, complex(0.0, sign * y))) for y in _IMAGINARY_AXIS for sign in (1, -1)]
    assert max(on_axis) <= 1 + 1e-12
    inside = [abs(_stability(tableau, z)) for z in _LEFT_HALF_PLANE]
    assert max(inside) <= 1 + 1e-12


@pytest.mark.parametrize("name", L_STABLE)
def test_l_stable(name: str) -> None:
    """``R(z) -> 0`` as ``z -> -inf``."""
    r_far = _stability(IMPLICIT[name], FAR_LEFT)
    assert abs(r_far) <= L_STABLE_TOLERANCE[name] + 1e-18  # + the O(1/z) remainder
    assert abs(_stability(IMPLICIT[name], Fraction(-(10**6)))) < 1e-5


@pytest.mark.parametrize("name", NOT_L_STABLE)
def test_not_l_stable(name: str) -> None:
    """``|R(z)| -> 1`` as ``z -> -inf``: the trapezoidal and implicit midpoint rules, and the Gauss
    methods (``R(-inf) = (-1)^s``), do not damp stiff modes."""
    r_far = _stability(IMPLICIT[name], FAR_LEFT)
    expected = {"trapezoid": -1, "implicit_midpoint": -1, "gl4": 1, "gl6": -1}[name]
    assert abs(r_far - expected) < 1e-18


def test_midpoint_and_trapezoid_are_neutral_on_the_imaginary_axis() -> None:
    """``|R(iy)| = 1``: both rules conserve the amplitude of a pure oscillation."""
    for tableau in (TRAPEZOID, IMPLICIT_MIDPOINT):
        for y in _IMAGINARY_AXIS[::20]:
            assert abs(abs(_stability(tableau, complex(0.0, y))) - 1) < 1e-12
