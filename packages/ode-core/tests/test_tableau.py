"""ButcherTableau checks itself; the registry is complete and consistent."""

from __future__ import annotations

from fractions import Fraction

import pytest
from ode_core import METHODS, MULTISTEP, TABLEAUX, VARIABLE_ORDER, ButcherTableau

REQUIRED = {
    "euler", "midpoint", "heun", "ralston", "rk4", "rk38", "heun_euler",
    "fehlberg2", "bosh3", "cash_karp", "dopri5", "tsit5", "dopri8",
}  # fmt: skip


def test_registry_has_every_required_method() -> None:
    assert set(METHODS) >= REQUIRED
    assert (*TABLEAUX, *MULTISTEP, *VARIABLE_ORDER) == METHODS
    assert not set(TABLEAUX) & set(MULTISTEP) and not (set(TABLEAUX) | set(MULTISTEP)) & set(VARIABLE_ORDER)
    for name, tableau in TABLEAUX.items():
        assert tableau.name == name
        assert tableau.citation


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        TABLEAUX["mine"] = TABLEAUX["rk4"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("name", "stages", "fsal", "adaptive"),
    [
        ("euler", 1, False, False),
        ("rk4", 4, False, False),
        ("bosh3", 4, True, True),
        ("dopri5", 7, True, True),
        ("tsit5", 7, True, True),
        ("dopri8", 13, True, True),
        ("dopri87", 14, True, True),
        ("cash_karp", 6, False, True),
    ],
)
def test_derived_properties(name: str, stages: int, fsal: bool, adaptive: bool) -> None:
    tableau = TABLEAUX[name]
    assert tableau.n_stages == stages
    assert tableau.fsal is fsal
    assert tableau.adaptive is adaptive
    assert tableau.explicit
    assert not tableau.implicit


def test_coefficients_are_exact_fractions() -> None:
    dopri5 = TABLEAUX["dopri5"]
    assert dopri5.a[3][:3] == (Fraction(44, 45), Fraction(-56, 15), Fraction(32, 9))
    assert all(isinstance(value, Fraction) for row in dopri5.a for value in row)
    assert dopri5.exact
    assert not TABLEAUX["tsit5"].exact


def test_tableau_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TABLEAUX["rk4"].order = 5  # type: ignore[misc]


def _rk4_arguments(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "name": "test",
        "order": 4,
        "c": (0, "1/2", "1/2", 1),
        "a": ((), ("1/2",), (0, "1/2"), (0, 0, 1)),
        "b": ("1/6", "1/3", "1/3", "1/6"),
    }
    arguments.update(changes)
    return arguments


def test_a_valid_user_tableau_builds() -> None:
    tableau = ButcherTableau(**_rk4_arguments())  # type: ignore[arg-type]
    assert tableau == ButcherTableau(**_rk4_arguments(citation="other"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"c": (0, "1/2", "1/3", 1)}, r"row sum of a\[2\] vs c\[2\]"),
        ({"b": ("1/6", "1/3", "1/3", "1/5")}, "sum of b"),
        ({"b": ("1/2", "1/2")}, "b has 2 weights, expected 4"),
        ({"a": ((), ("1/2",))}, "a has 2 rows, expected 4"),
        ({"a": ((), ("1/2",), (0, "1/2"), (0, 0, 1, 0, 0))}, r"a\[3\] has 5 entries"),
        ({"b_embedded": (1, 0, 0, 0)}, "b_embedded and embedded_order must be given together"),
        ({"b_embedded": (1, 0, 0, 0), "embedded_order": 4}, "embedded_order must lie in 1..3"),
        ({"order": 0}, "order must be a positive int"),
        ({"name": ""}, "name: expected a non-empty string"),
        ({"dense": ((1,),), "dense_order": 1}, "dense has 1 rows, expected 4"),
        ({"c": (0.0, "1/2", "1/2", 1)}, "floats would lose exactness"),
        ({"interpolate_outputs": "yes"}, "interpolate_outputs must be True, False or None"),
    ],
)
def test_inconsistent_tableaux_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        ButcherTableau(**_rk4_arguments(**changes))  # type: ignore[arg-type]


def test_decimal_source_tolerance_applies_only_when_not_exact() -> None:
    nearly = ("0.1666666666666666667", "1/3", "1/3", "0.1666666666666666667")
    with pytest.raises(ValueError, match="sum of b"):
        ButcherTableau(**_rk4_arguments(b=nearly))  # type: ignore[arg-type]
    ButcherTableau(**_rk4_arguments(b=nearly, exact=False))  # type: ignore[arg-type]


def test_user_tableau_is_accepted_by_solve() -> None:
    import numpy as np
    import ode_core

    tableau = ButcherTableau(**_rk4_arguments(name="my_rk4"))  # type: ignore[arg-type]
    sol = ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, 1.0], method=tableau, step_size=0.1)
    reference = ode_core.solve(lambda t, y: -y, np.ones(1), [0.0, 1.0], method="rk4", step_size=0.1)
    np.testing.assert_array_equal(sol.ys, reference.ys)


@pytest.mark.parametrize(
    ("name", "steps_onto_outputs"),
    [
        ("dopri5", False),  # order-4 extension, order-4 estimate
        ("dopri8", False),  # order-7 extension, order-7 estimate
        ("radau5", False),  # collocation polynomial of order 3, order-3 estimate
        ("cash_karp", True),  # cubic Hermite behind an order-4 estimate
        ("kvaerno5", True),  # the same
        ("dopri87", False),  # order-5 extension behind an order-7 estimate, but the tableau says interpolate
    ],
)
def test_which_methods_step_onto_outputs(name: str, steps_onto_outputs: bool) -> None:
    assert TABLEAUX[name].steps_onto_outputs is steps_onto_outputs


def test_interpolate_outputs_overrides_the_rule() -> None:
    import dataclasses

    import numpy as np
    import ode_core

    cash_karp = TABLEAUX["cash_karp"]
    interpolating = dataclasses.replace(cash_karp, name="cash_karp, interpolated", interpolate_outputs=True)
    assert cash_karp.steps_onto_outputs and not interpolating.steps_onto_outputs
    t = np.linspace(0.0, 2.0, 41)
    stepped = ode_core.solve(lambda time, y: -y, np.ones(1), t, method=cash_karp, rtol=1e-6)
    interpolated = ode_core.solve(lambda time, y: -y, np.ones(1), t, method=interpolating, rtol=1e-6)
    assert interpolated.stats.n_steps < 40 <= stepped.stats.n_steps
