"""Order conditions of every registered Butcher tableau, checked tree by tree.

Elementary weights are computed in exact rational arithmetic. Exact tableaux
must meet each condition exactly; tableaux built from published decimals
(``exact=False``) to within 1e-12, and a condition counts as violated when its
residual exceeds that.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from fractions import Fraction
from functools import cache
from math import factorial

import pytest
from _rooted_trees import (
    ElementaryWeights,
    Tree,
    density,
    order,
    rooted_trees,
    symmetry,
    trees_of_order,
)
from ode_core._tableau import ButcherTableau
from ode_core._tableaux import TABLEAUX

DECIMAL_TOLERANCE = 1e-12
"""Allowed residual for tableaux whose coefficients are published decimals."""

ALL_NAMES = sorted(TABLEAUX)
EMBEDDED_NAMES = sorted(name for name, t in TABLEAUX.items() if t.b_embedded is not None)
SECONDARY_NAMES = sorted(name for name, t in TABLEAUX.items() if t.b_embedded_secondary is not None)
DENSE_NAMES = sorted(name for name, t in TABLEAUX.items() if t.dense is not None)

Residuals = Callable[[Tree], Sequence[Fraction | float]]


def _tolerance(tableau: ButcherTableau) -> float:
    return 0.0 if tableau.exact else DECIMAL_TOLERANCE


def _violated(residuals_of: Residuals, tree_order: int, tolerance: float) -> list[tuple[Tree, float]]:
    """Trees of ``tree_order`` nodes whose residuals exceed ``tolerance``, with the largest residual."""
    violated = []
    for tree in trees_of_order(tree_order):
        worst = max(abs(Fraction(r)) for r in residuals_of(tree))  # exact, also for float residuals
        if worst > tolerance:
            violated.append((tree, float(worst)))
    return violated


def _satisfied_order(residuals_of: Residuals, up_to: int, tolerance: float) -> tuple[int, list[tuple[Tree, float]]]:
    """Largest ``p <= up_to`` with every condition of order ``<= p`` met.

    Returns
    -------
    p : int
        The order reached.
    violated : list of (tree, residual)
        The violated conditions of order ``p + 1`` (empty when ``p == up_to``).
    """
    for n in range(1, up_to + 1):
        violated = _violated(residuals_of, n, tolerance)
        if violated:
            return n - 1, violated
    return up_to, []


def _assert_exact_order(residuals_of: Residuals, stated_order: int, tolerance: float, what: str) -> None:
    """Every condition up to ``stated_order`` holds and one of ``stated_order + 1`` fails."""
    reached, violated = _satisfied_order(residuals_of, stated_order + 1, tolerance)
    if reached < stated_order:
        shown = ", ".join(f"{tree} (residual {residual:.3g})" for tree, residual in violated[:5])
        pytest.fail(
            f"{what}: stated order {stated_order}, but only order {reached} holds; "
            f"{len(violated)} violated conditions of order {reached + 1}, e.g. {shown}"
        )
    if reached > stated_order:
        pytest.fail(
            f"{what}: stated order {stated_order}, but every condition of order {stated_order + 1} "
            "also holds (the stated order understates the method)"
        )


@cache
def _elementary_weights(tableau: ButcherTableau) -> ElementaryWeights:
    """One memo of stage vectors per tableau, shared by its b, embedded and dense checks."""
    return ElementaryWeights.for_tableau(tableau)


def _weights_residuals(tableau: ButcherTableau, b: Sequence[Fraction]) -> Residuals:
    weights = _elementary_weights(tableau)
    return lambda tree: (weights.order_residual(b, tree),)


def _dense_residuals(tableau: ButcherTableau) -> Residuals:
    weights = _elementary_weights(tableau)
    dense = tableau.dense
    assert dense is not None
    return lambda tree: weights.dense_residuals(dense, tree)


def _cayley_counts(max_order: int) -> list[int]:
    """Numbers of rooted trees with 1..max_order nodes, by Cayley's recurrence.

    ``a(n + 1) = (1/n) sum_{k=1..n} (sum_{d | k} d a(d)) a(n - k + 1)``.
    """
    counts = [0, 1]  # counts[n] = number of trees with n nodes
    for n in range(1, max_order):
        total = sum(
            sum(d * counts[d] for d in range(1, k + 1) if k % d == 0) * counts[n - k + 1] for k in range(1, n + 1)
        )
        counts.append(total // n)
    return counts[1 : max_order + 1]


# --------------------------------------------------------------------------- trees


def test_rooted_tree_counts() -> None:
    """1, 1, 2, 4, 9, 20, 48, 115, 286 trees with 1..9 nodes (OEIS A000081)."""
    counts = [len(trees) for trees in rooted_trees(9)]
    assert counts == [1, 1, 2, 4, 9, 20, 48, 115, 286]
    assert counts == _cayley_counts(9)
    assert sum(counts) == 486


def test_rooted_trees_are_canonical_and_distinct() -> None:
    """Each tree is stored once, sorted at every node, with the order it is listed under."""
    for n, trees in enumerate(rooted_trees(9), start=1):
        assert len(set(trees)) == len(trees)
        for tree in trees:
            assert order(tree) == n
            stack = [tree]
            while stack:
                node = stack.pop()
                assert list(node) == sorted(node)
                stack.extend(node)


def test_density_and_symmetry_count_labellings() -> None:
    """``sum n!/(sigma gamma) = (n-1)!`` (increasing labellings) and ``sum n!/sigma = n**(n-1)``."""
    for n in range(1, 10):
        trees = trees_of_order(n)
        assert sum(Fraction(factorial(n), symmetry(t) * density(t)) for t in trees) == factorial(n - 1)
        assert sum(Fraction(factorial(n), symmetry(t)) for t in trees) == n ** (n - 1)


# ----------------------------------------------------------------------- tableaux


@pytest.mark.parametrize("name", ALL_NAMES)
def test_weights_have_stated_order(name: str) -> None:
    """``b`` meets every order condition up to ``order`` and misses one of ``order + 1``."""
    tableau = TABLEAUX[name]
    _assert_exact_order(_weights_residuals(tableau, tableau.b), tableau.order, _tolerance(tableau), f"{name}: b")


@pytest.mark.parametrize("name", EMBEDDED_NAMES)
def test_embedded_weights_have_stated_order(name: str) -> None:
    """``b_embedded`` has exactly order ``embedded_order``."""
    tableau = TABLEAUX[name]
    assert tableau.b_embedded is not None and tableau.embedded_order is not None
    _assert_exact_order(
        _weights_residuals(tableau, tableau.b_embedded),
        tableau.embedded_order,
        _tolerance(tableau),
        f"{name}: b_embedded",
    )


@pytest.mark.parametrize("name", SECONDARY_NAMES)
def test_secondary_embedded_weights_have_stated_order(name: str) -> None:
    """``b_embedded_secondary`` has exactly order ``embedded_secondary_order``."""
    tableau = TABLEAUX[name]
    assert tableau.b_embedded_secondary is not None and tableau.embedded_secondary_order is not None
    _assert_exact_order(
        _weights_residuals(tableau, tableau.b_embedded_secondary),
        tableau.embedded_secondary_order,
        _tolerance(tableau),
        f"{name}: b_embedded_secondary",
    )


@pytest.mark.parametrize("name", DENSE_NAMES)
def test_continuous_extension_has_stated_order(name: str) -> None:
    """``sum_i b_i(theta) Phi_i(t) = theta**rho / gamma`` in theta, exactly up to ``dense_order``."""
    tableau = TABLEAUX[name]
    assert tableau.dense_order is not None
    _assert_exact_order(_dense_residuals(tableau), tableau.dense_order, _tolerance(tableau), f"{name}: dense")


# ------------------------------------------------------------ the checker can fail


def test_checker_detects_perturbed_weights() -> None:
    """rk4 with one weight perturbed and the weights renormalised keeps only order 1."""
    rk4 = TABLEAUX["rk4"]
    perturbed = (rk4.b[0] + Fraction(1, 100), *rk4.b[1:])
    total = sum(perturbed, Fraction(0))
    broken = dataclasses.replace(rk4, b=tuple(w / total for w in perturbed))
    reached, violated = _satisfied_order(_weights_residuals(broken, broken.b), rk4.order, 0.0)
    assert reached == 1
    assert violated
    with pytest.raises(pytest.fail.Exception, match="only order 1 holds"):
        _assert_exact_order(_weights_residuals(broken, broken.b), rk4.order, 0.0, "broken rk4")


def test_checker_detects_perturbed_matrix() -> None:
    """rk4 with a row of ``a`` reshuffled (row sum, hence ``c``, unchanged) drops below order 4."""
    rk4 = TABLEAUX["rk4"]
    row = rk4.a[2]
    shifted = (row[0] + row[1] / 2, row[1] / 2, *row[2:])
    broken = dataclasses.replace(rk4, a=(*rk4.a[:2], shifted, *rk4.a[3:]))
    reached, _ = _satisfied_order(_weights_residuals(broken, broken.b), rk4.order, 0.0)
    assert 1 <= reached < rk4.order


def test_checker_detects_stated_order_too_low() -> None:
    """Claiming order 3 for rk4 is reported as an understatement."""
    rk4 = TABLEAUX["rk4"]
    with pytest.raises(pytest.fail.Exception, match="understates"):
        _assert_exact_order(_weights_residuals(rk4, rk4.b), rk4.order - 1, 0.0, "rk4 claimed order 3")


@pytest.mark.parametrize("name", DENSE_NAMES)
def test_checker_detects_perturbed_continuous_extension(name: str) -> None:
    """Moving weight between two powers of theta (value at theta = 1 unchanged) lowers the dense order."""
    tableau = TABLEAUX[name]
    assert tableau.dense is not None and tableau.dense_order is not None
    shift = Fraction(1, 1000)
    first_row = (tableau.dense[0][0] + shift, tableau.dense[0][1] - shift, *tableau.dense[0][2:])
    broken = dataclasses.replace(tableau, dense=(first_row, *tableau.dense[1:]))
    reached, _ = _satisfied_order(_dense_residuals(broken), tableau.dense_order, _tolerance(tableau))
    assert reached < tableau.dense_order
