"""Radau IIA of order 5: 3 implicit stages, collocation, L-stable, stiffly accurate.

The method (Hairer & Wanner, *Solving Ordinary Differential Equations II*,
2nd ed., Table IV.5.6) has nodes ``c = (4 - sqrt 6)/10, (4 + sqrt 6)/10, 1``
and is the collocation method at those nodes; every coefficient lies in
``Q(sqrt 6)``, so none is a rational. They are evaluated here from their
closed forms to 40 significant digits and stored as the exact value of those
decimals (``exact=False``).

The tableau carries a zeroth, explicit stage ``k0 = f(t, y)`` with zero
weight in the method itself: Hairer's error estimate for RADAU5 (op. cit.,
section IV.8, eqs. (8.19)--(8.20)) is built from it,

    err = (I - h gamma0 J)^{-1} h (gamma0 k0 + sum_i e_i k_i),

an embedded solution of order 3 whose difference to ``b`` is stored in
``b_embedded`` as for any embedded pair; the filter ``(I - h gamma0 J)^{-1}``,
with ``gamma0 = 1 / mu`` and ``mu`` the real eigenvalue of ``A^{-1}``, is
applied by the stepper (``ode_core._radau``), which needs it to keep the
estimate bounded in stiff components. In Hairer's code the same estimate is
written on the stage increments ``z = h A k`` with the weights
``gamma0 * (-13 - 7 sqrt 6, -13 + 7 sqrt 6, -1) / 3``; here they are mapped
onto the stages by ``A^T``.

The continuous extension is the collocation polynomial itself (of order 3,
the stage order): ``b_i(theta)`` integrates the Lagrange basis on ``c``.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from .._tableau import ButcherTableau

_DIGITS = 40


def _coefficients() -> dict[str, object]:
    with localcontext() as context:
        context.prec = _DIGITS + 5
        s6 = Decimal(6).sqrt()
        c = ((4 - s6) / 10, (4 + s6) / 10, Decimal(1))
        a = (
            ((88 - 7 * s6) / 360, (296 - 169 * s6) / 1800, (-2 + 3 * s6) / 225),
            ((296 + 169 * s6) / 1800, (88 + 7 * s6) / 360, (-2 - 3 * s6) / 225),
            ((16 - s6) / 36, (16 + s6) / 36, Decimal(1) / 9),
        )
        # The real eigenvalue of A^{-1} (Hairer & Wanner, op. cit., IV.8).
        mu = 3 + Decimal(3) ** (Decimal(2) / 3) - Decimal(3) ** (Decimal(1) / 3)
        gamma0 = 1 / mu
        on_increments = ((-13 - 7 * s6) / 3, (-13 + 7 * s6) / 3, Decimal(-1) / 3)
        # sum_i E_i z_i = h sum_j (A^T E)_j k_j.
        on_stages = tuple(gamma0 * sum(on_increments[i] * a[i][j] for i in range(3)) for j in range(3))
        error_weights = (gamma0, *on_stages)
        b = (Decimal(0), *a[2])
        b_embedded = tuple(bi - ei for bi, ei in zip(b, error_weights))

        # b_i(theta) = int_0^theta l_i(s) ds with l_i the Lagrange basis on c,
        # as monomial coefficients of theta, theta^2, theta^3.
        dense = [(Decimal(0),) * 3]
        for i in range(3):
            others = [c[j] for j in range(3) if j != i]
            denominator = (c[i] - others[0]) * (c[i] - others[1])
            # (s - p)(s - q) = s^2 - (p + q) s + p q
            quadratic = (others[0] * others[1], -(others[0] + others[1]), Decimal(1))
            dense.append(tuple(quadratic[k] / denominator / (k + 1) for k in range(3)))

    def text(value: Decimal) -> str:
        with localcontext() as rounding:
            rounding.prec = _DIGITS
            return str(+value)

    def row(values: tuple[Decimal, ...] | list[Decimal]) -> tuple[str, ...]:
        return tuple(text(v) for v in values)

    return {
        "c_collocation": row(c),
        "a_collocation": tuple(row(r) for r in a),
        "b_collocation": row(a[2]),
        "c": ("0", *row(c)),
        "a": ((), *(("0", *row(r)) for r in a)),
        "b": row(b),
        "b_embedded": row(b_embedded),
        "dense": tuple(row(r) for r in dense),
    }


_COEFFICIENTS = _coefficients()

RADAU5 = ButcherTableau(
    name="radau5",
    order=5,
    c=_COEFFICIENTS["c"],
    a=_COEFFICIENTS["a"],
    b=_COEFFICIENTS["b"],
    b_embedded=_COEFFICIENTS["b_embedded"],
    embedded_order=3,
    dense=_COEFFICIENTS["dense"],
    dense_order=3,
    exact=False,
    citation=(
        "E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer 1996: "
        "Table IV.5.6 (Radau IIA, order 5) and section IV.8 (error estimate of RADAU5)."
    ),
)

# torchdiffeq's radauIIA5 steps this method on a fixed grid. Without the zeroth
# stage and its error estimate the three stages are the plain collocation
# tableau, stepped by the coupled-stage Newton of ode_core._collocation.
RADAU5_FIXED = ButcherTableau(
    name="radau5_fixed",
    order=5,
    c=_COEFFICIENTS["c_collocation"],
    a=_COEFFICIENTS["a_collocation"],
    b=_COEFFICIENTS["b_collocation"],
    exact=False,
    citation="E. Hairer, G. Wanner, Solving Ordinary Differential Equations II, 2nd ed., Springer 1996: Table IV.5.6.",
)
