"""Rooted trees and Runge--Kutta elementary weights, for the order-condition tests.

A rooted tree is a nested tuple: the single node is ``()`` and the tree whose
root carries the subtrees ``t1, ..., tm`` is ``tuple(sorted((t1, ..., tm)))``.
Sorting the children (Python compares nested tuples lexicographically) makes
the representation canonical, so equal trees are equal tuples and hash alike.

A Runge--Kutta method with weights ``b`` has order ``p`` when
``b . Phi(t) = 1 / gamma(t)`` for every tree ``t`` with at most ``p`` nodes
(Butcher; Hairer, Norsett & Wanner, *Solving ODEs I*, section II.2). The stage
vector ``Phi(t)`` is all ones for the single node and
``prod_k (a @ Phi(t_k))`` (elementwise product) for ``t = [t1, ..., tm]``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from functools import cache
from math import factorial, prod
from typing import Any

__all__ = [
    "SINGLE_NODE",
    "ElementaryWeights",
    "Tree",
    "density",
    "order",
    "rooted_trees",
    "symmetry",
    "trees_of_order",
]

Tree = tuple[Any, ...]
"""A rooted tree: the sorted tuple of its root's subtrees (``()`` is one node)."""

Number = Fraction | float

SINGLE_NODE: Tree = ()


def _forests(total_order: int, pool: Sequence[Tree], pool_orders: Sequence[int], start: int) -> Iterator[list[Tree]]:
    """Multisets of trees from ``pool[start:]`` with ``total_order`` nodes in all.

    Indices never decrease along a forest, so each multiset comes out once.
    """
    if total_order == 0:
        yield []
        return
    for index in range(start, len(pool)):
        tree_order = pool_orders[index]
        if tree_order > total_order:
            continue
        for rest in _forests(total_order - tree_order, pool, pool_orders, index):
            yield [pool[index], *rest]


@cache
def rooted_trees(max_order: int) -> tuple[tuple[Tree, ...], ...]:
    """All rooted trees with ``1..max_order`` nodes, grouped by order.

    Parameters
    ----------
    max_order : int
        Largest number of nodes.

    Returns
    -------
    tuple of tuple of Tree
        Entry ``n - 1`` holds the trees with ``n`` nodes, sorted.
    """
    if max_order < 1:
        return ()
    by_order: list[tuple[Tree, ...]] = [(SINGLE_NODE,)]
    for n in range(2, max_order + 1):
        pool = [tree for trees in by_order for tree in trees]
        pool_orders = [order(tree) for tree in pool]
        found = {tuple(sorted(children)) for children in _forests(n - 1, pool, pool_orders, 0)}
        by_order.append(tuple(sorted(found)))
    return tuple(by_order)


def trees_of_order(n: int) -> tuple[Tree, ...]:
    """The rooted trees with exactly ``n`` nodes."""
    return rooted_trees(n)[n - 1] if n >= 1 else ()


@cache
def order(tree: Tree) -> int:
    """Number of nodes ``rho(t)``."""
    return 1 + sum(order(child) for child in tree)


@cache
def density(tree: Tree) -> int:
    """Density ``gamma(t) = rho(t) * prod_k gamma(t_k)``."""
    return order(tree) * prod(density(child) for child in tree)


@cache
def symmetry(tree: Tree) -> int:
    """Symmetry ``sigma(t)``: order of the tree's automorphism group."""
    return prod(factorial(count) * symmetry(child) ** count for child, count in Counter(tree).items())


class ElementaryWeights:
    """Stage vectors ``Phi(t)`` of one Runge--Kutta matrix, memoised per subtree.

    Parameters
    ----------
    a : sequence of sequences, shape (n, n)
        Square Runge--Kutta matrix (stages, then any extra stages).
    exact : bool
        ``True``: compute with :class:`fractions.Fraction`; ``False``: with floats.
    """

    def __init__(self, a: Sequence[Sequence[Fraction]], exact: bool) -> None:
        self.exact = exact
        to_number: Callable[[Fraction], Number] = Fraction if exact else float
        self.n_stages = len(a)
        if any(len(row) != self.n_stages for row in a):
            raise ValueError("a must be square")
        # Keep only the nonzero entries of each row: explicit tableaux are mostly zeros.
        self._sparse_rows = tuple(
            tuple((j, to_number(value)) for j, value in enumerate(row) if value != 0) for row in a
        )
        self._one: Number = to_number(Fraction(1))
        self._zero: Number = to_number(Fraction(0))
        self._stage_vectors: dict[Tree, tuple[Number, ...]] = {}
        self._a_times_stage_vectors: dict[Tree, tuple[Number, ...]] = {}

    @classmethod
    def for_tableau(cls, tableau: Any, exact: bool = True) -> ElementaryWeights:
        """Stage vectors over a tableau's stages followed by its extra stages.

        The extra-stage rows (``tableau.a_extra``, row ``i`` over the ``s + i``
        earlier stages) and the stage rows are zero-padded to one square
        matrix, so the first ``s`` entries of every stage vector are those of
        the tableau proper.

        Exact arithmetic is the default even for tableaux of published
        decimals: their residuals then show only the rounding of the source,
        not float round-off, which the large monomial coefficients of a
        continuous extension (hundreds for DOP853) amplify to ~1e-12.
        """
        rows = [tuple(row) for row in tableau.a] + [tuple(row) for row in tableau.a_extra]
        width = len(rows)
        square = [row + (Fraction(0),) * (width - len(row)) for row in rows]
        return cls(square, exact=exact)

    def number(self, value: Fraction | int) -> Number:
        """``value`` in this object's arithmetic (Fraction or float)."""
        return Fraction(value) if self.exact else float(value)

    def stage_vector(self, tree: Tree) -> tuple[Number, ...]:
        """``Phi(t)``: one entry per stage."""
        cached = self._stage_vectors.get(tree)
        if cached is not None:
            return cached
        vector = [self._one] * self.n_stages
        for child in tree:
            child_vector = self._a_times_stage_vector(child)
            vector = [v * w for v, w in zip(vector, child_vector)]
        result = tuple(vector)
        self._stage_vectors[tree] = result
        return result

    def _a_times_stage_vector(self, tree: Tree) -> tuple[Number, ...]:
        cached = self._a_times_stage_vectors.get(tree)
        if cached is not None:
            return cached
        phi = self.stage_vector(tree)
        result = tuple(sum((value * phi[j] for j, value in row), self._zero) for row in self._sparse_rows)
        self._a_times_stage_vectors[tree] = result
        return result

    def weight(self, b: Sequence[Fraction], tree: Tree) -> Number:
        """Elementary weight ``sum_i b_i Phi_i(t)``; ``b`` may be shorter (zero-padded)."""
        phi = self.stage_vector(tree)
        return sum((self.number(bi) * phi[i] for i, bi in enumerate(b) if bi != 0), self._zero)

    def order_residual(self, b: Sequence[Fraction], tree: Tree) -> Number:
        """``b . Phi(t) - 1 / gamma(t)``: zero when the order condition of ``t`` holds."""
        return self.weight(b, tree) - self.number(Fraction(1, density(tree)))

    def dense_residuals(self, dense: Sequence[Sequence[Fraction]], tree: Tree) -> tuple[Number, ...]:
        """Coefficients of ``sum_i b_i(theta) Phi_i(t) - theta**rho / gamma`` in theta.

        ``b_i(theta) = sum_j dense[i][j] theta**(j + 1)``. Entry ``k`` is the
        coefficient of ``theta**(k + 1)``, for ``k < max(len(dense[0]), rho)``:
        all zero when the continuous extension satisfies the condition of ``t``
        as a polynomial identity.
        """
        phi = self.stage_vector(tree)
        degree = len(dense[0]) if dense else 0
        rho = order(tree)
        residuals = []
        for power in range(1, max(degree, rho) + 1):
            if power <= degree:
                coefficient = sum(
                    (self.number(row[power - 1]) * phi[i] for i, row in enumerate(dense) if row[power - 1] != 0),
                    self._zero,
                )
            else:
                coefficient = self._zero
            if power == rho:
                coefficient -= self.number(Fraction(1, density(tree)))
            residuals.append(coefficient)
        return tuple(residuals)
