"""Derive the continuous extension that ode-core's ``dopri87`` (RK8(7)13M) ships.

Prince and Dormand (1981) publish RK8(7)13M without a continuous extension.
This script derives one from the 13 stages and ``f(t + h, y1)`` (the 14
stages of ``ode_core._tableaux.dopri87``), with no extra evaluations:

    y(t + theta h) ~ y + h sum_i b_i(theta) k_i,   b_i(theta) = sum_{j=1..6} w_ij theta**j,

subject to, as polynomial identities in ``theta``:

* every order condition up to order 5 (``sum_i b_i(theta) Phi_i(t) =
  theta**rho(t) / gamma(t)`` for the 17 rooted trees with at most 5 nodes);
* ``b(1) = b`` (the interpolant ends on the step's solution);
* ``b'(0) = e_0`` and ``b'(1) = e_13`` (its derivative is ``f`` at both
  ends, so the interpolant is C1 across steps);
* stages 1..4, which ``b`` does not weigh, get no weight either.

Order 6 is out of reach with these stages (the conditions up to order 6 are
inconsistent; this script prints their least-squares residual). The
constraints leave 15 degrees of freedom; among the solutions, the one chosen
minimises the sum over the 20 trees with 6 nodes of ``(1 / sigma(t))**2``
times the squared coefficients of the order-6 residual polynomial, i.e. the
interpolant's leading error term. That objective leaves 6 of the 15
directions free; along those the pseudo-inverse takes the least change from
the constraints' minimum-norm solution, which makes the choice unique.

The tableau's coefficients are rational approximations that satisfy their own
order conditions only to about 1e-18, so the constraints are solved in a
least-squares sense at 60 digits (mpmath), discarding singular values below
1e-10 (those the rounding of the published rationals creates); the constraint
residual printed is what remains. Run from the repository root::

    python packages/ode-core/tools/derive_dopri87_dense.py

with ``packages/ode-core/src`` importable and mpmath installed. It prints the
rows to paste as ``_DENSE`` into ``_tableaux/dopri87.py``.
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import mpmath as mp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _rooted_trees import ElementaryWeights, density, order, symmetry, trees_of_order
from ode_core._tableaux.dopri87 import DOPRI87

mp.mp.dps = 60
DEGREE = 6
ORDER = 5
WEIGHTED_STAGES = (0, 5, 6, 7, 8, 9, 10, 11, 12, 13)
RANK_THRESHOLD = mp.mpf(10) ** -10


def _mpf(value: Fraction | int) -> mp.mpf:
    value = Fraction(value)
    return mp.mpf(value.numerator) / value.denominator


def _pseudo_solve(matrix: mp.matrix, rhs: mp.matrix) -> tuple[mp.matrix, mp.matrix]:
    """Least-squares solution over singular values above the threshold, and a basis of the rest (columns)."""
    u, sigma, v = mp.svd_r(matrix)  # matrix = u diag(sigma) v
    rank = sum(1 for value in sigma if value > RANK_THRESHOLD)
    x = mp.matrix(matrix.cols, 1)
    for j in range(rank):
        coefficient = sum(u[i, j] * rhs[i] for i in range(matrix.rows)) / sigma[j]
        for k in range(matrix.cols):
            x[k] += coefficient * v[j, k]
    null = mp.matrix(matrix.cols, matrix.cols - rank)
    for j in range(rank, matrix.cols):
        for k in range(matrix.cols):
            null[k, j - rank] = v[j, k]
    return x, null


def derive() -> tuple[list[list[mp.mpf]], mp.mpf, mp.mpf]:
    """The dense rows (14 x DEGREE), the largest constraint residual and the order-6 objective."""
    weights = ElementaryWeights.for_tableau(DOPRI87)
    n_stages = DOPRI87.n_stages
    # Unknowns: w_ij for the weighted stages and j = 2..DEGREE; w_i1 is fixed by b'(0) = e_0.
    unknown = {(i, j): k for k, (i, j) in enumerate((i, j) for i in WEIGHTED_STAGES for j in range(2, DEGREE + 1))}
    size = len(unknown)

    def polynomial_rows(tree: tuple, scale: mp.mpf) -> tuple[list[list[mp.mpf]], list[mp.mpf]]:
        """Rows for ``sum_i b_i(theta) Phi_i(t) = theta**rho / gamma``, one per power of theta."""
        phi = [_mpf(value) for value in weights.stage_vector(tree)]
        tree_order = order(tree)
        rows, rhs = [], []
        for power in range(1, max(DEGREE, tree_order) + 1):
            row = [mp.mpf(0)] * size
            target = (mp.mpf(1) / density(tree) if power == tree_order else mp.mpf(0)) * scale
            if power == 1:
                target -= phi[0] * scale  # the fixed w_01 = 1
            elif power <= DEGREE:
                for i in WEIGHTED_STAGES:
                    row[unknown[i, power]] = phi[i] * scale
            rows.append(row)
            rhs.append(target)
        return rows, rhs

    rows: list[list[mp.mpf]] = []
    rhs: list[mp.mpf] = []
    for tree_order in range(1, ORDER + 1):
        for tree in trees_of_order(tree_order):
            more_rows, more_rhs = polynomial_rows(tree, mp.mpf(1))
            rows += more_rows
            rhs += more_rhs
    for i in range(n_stages):
        fixed = mp.mpf(1) if i == 0 else mp.mpf(0)  # w_i1
        end_value = [mp.mpf(0)] * size  # b_i(1) = b_i
        end_slope = [mp.mpf(0)] * size  # b_i'(1) = 1 for the last stage, else 0
        if i in WEIGHTED_STAGES:
            for j in range(2, DEGREE + 1):
                end_value[unknown[i, j]] = mp.mpf(1)
                end_slope[unknown[i, j]] = mp.mpf(j)
        rows += [end_value, end_slope]
        rhs += [_mpf(DOPRI87.b[i]) - fixed, (mp.mpf(1) if i == n_stages - 1 else mp.mpf(0)) - fixed]
    constraints, targets = mp.matrix(rows), mp.matrix(rhs)
    x, null = _pseudo_solve(constraints, targets)

    objective_rows: list[list[mp.mpf]] = []
    objective_rhs: list[mp.mpf] = []
    for tree in trees_of_order(ORDER + 1):
        more_rows, more_rhs = polynomial_rows(tree, mp.mpf(1) / symmetry(tree))
        objective_rows += more_rows
        objective_rhs += more_rhs
    objective, goal = mp.matrix(objective_rows), mp.matrix(objective_rhs)
    if null.cols:
        z, _ = _pseudo_solve(objective * null, goal - objective * x)
        x = x + null * z
    constraint_residual = max(abs(value) for value in constraints * x - targets)
    objective_value = mp.norm(objective * x - goal)

    dense = []
    for i in range(n_stages):
        row = [mp.mpf(1) if i == 0 else mp.mpf(0)]
        row += [x[unknown[i, j]] if i in WEIGHTED_STAGES else mp.mpf(0) for j in range(2, DEGREE + 1)]
        dense.append(row)
    return dense, constraint_residual, objective_value


def main() -> int:
    dense, constraint_residual, objective_value = derive()
    print(f"# largest constraint residual {mp.nstr(constraint_residual, 3)}")
    print(f"# order-6 objective (weighted residual norm) {mp.nstr(objective_value, 6)}")
    print("_DENSE = (")
    for row in dense:
        cells = ", ".join(
            str(int(value)) if value in (0, 1) else f'"{mp.nstr(value, 30, min_fixed=-1, max_fixed=1)}"'
            for value in row
        )
        print(f"    ({cells}),")
    print(")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
