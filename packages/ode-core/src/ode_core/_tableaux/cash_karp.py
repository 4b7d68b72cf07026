"""Cash--Karp 5(4)."""

from __future__ import annotations

from .._tableau import ButcherTableau

CASH_KARP = ButcherTableau(
    name="cash_karp",
    order=5,
    c=(0, "1/5", "3/10", "3/5", 1, "7/8"),
    a=(
        (),
        ("1/5",),
        ("3/40", "9/40"),
        ("3/10", "-9/10", "6/5"),
        ("-11/54", "5/2", "-70/27", "35/27"),
        ("1631/55296", "175/512", "575/13824", "44275/110592", "253/4096"),
    ),
    b=("37/378", 0, "250/621", "125/594", 0, "512/1771"),
    b_embedded=("2825/27648", 0, "18575/48384", "13525/55296", "277/14336", "1/4"),
    embedded_order=4,
    citation=(
        "J. R. Cash and A. H. Karp, A variable order Runge-Kutta method for initial value problems "
        "with rapidly varying right-hand sides, ACM Trans. Math. Softw. 16 (1990) 201-222, Table 6."
    ),
)
