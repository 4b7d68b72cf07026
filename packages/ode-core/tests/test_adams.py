"""Adams methods (ours and torchdiffeq's): weights, order on any grid, rising order, restarts, errors."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import ode_core
import pytest
from ode_core import MULTISTEP, AdamsMethod, Status
from ode_core._adams import integrated_lagrange_weights
from ode_core._tableaux.euler import EULER
from ode_core._tableaux.rk38 import RK38

ADAMS = list(MULTISTEP)
# Ours, of fixed order; torchdiffeq's raise theirs to 11 (explicit_adams is
# then unstable at most step sizes on an oscillator, in torchdiffeq as here).
FIXED_ORDER = ["adams_bashforth", "adams_bashforth_moulton"]

# Hairer, Norsett & Wanner, Solving ODEs I, III.1: Table 1.1 (Adams-Bashforth,
# on f_n, f_{n-1}, ...) and Table 1.2 (Adams-Moulton, on f_{n+1}, f_n, ...).
BASHFORTH = {
    1: (1,),
    2: (Fraction(3, 2), Fraction(-1, 2)),
    3: tuple(Fraction(v, 12) for v in (23, -16, 5)),
    4: tuple(Fraction(v, 24) for v in (55, -59, 37, -9)),
    5: tuple(Fraction(v, 720) for v in (1901, -2774, 2616, -1274, 251)),
}
MOULTON = {
    1: (1,),
    2: (Fraction(1, 2), Fraction(1, 2)),
    3: tuple(Fraction(v, 12) for v in (5, 8, -1)),
    4: tuple(Fraction(v, 24) for v in (9, 19, -5, 1)),
    5: tuple(Fraction(v, 720) for v in (251, 646, -264, 106, -19)),
}


def _oscillator(t: float, y: np.ndarray) -> np.ndarray:
    return np.array([y[1], -y[0]])


def _max_error(method: str, times: np.ndarray | list[float], **kwargs: object) -> float:
    """Largest error over the outputs (tight tolerances: the corrector iterates to convergence)."""
    solution = ode_core.solve(_oscillator, np.array([1.0, 0.0]), times, method=method, rtol=1e-12, atol=1e-14, **kwargs)
    assert solution.status is Status.SUCCESS
    t = np.asarray(solution.ts)
    return float(np.abs(solution.ys - np.stack([np.cos(t), -np.sin(t)], axis=1)).max())


@pytest.mark.parametrize("slopes", sorted(BASHFORTH))
def test_equal_step_weights_are_the_published_ones(slopes: int) -> None:
    method = AdamsMethod(name="x", steps=5, corrector=True, starter=RK38)
    assert method.bashforth(slopes) == BASHFORTH[slopes]
    # The corrector runs through the new point and the predictor's slopes.
    if slopes + 1 in MOULTON:
        assert method.moulton(slopes) == MOULTON[slopes + 1]


def test_weights_integrate_polynomials_exactly_on_unequal_nodes() -> None:
    nodes = [0.0, -0.7, -1.1, -2.6]
    weights = integrated_lagrange_weights(nodes)
    for degree in range(4):
        assert sum(w * x**degree for w, x in zip(weights, nodes)) == pytest.approx(1 / (degree + 1), rel=1e-13)


@pytest.mark.parametrize("method", FIXED_ORDER)
def test_converges_at_the_stated_order_with_equal_steps(method: str) -> None:
    errors = [_max_error(method, np.linspace(0.0, 2.0, n + 1)) for n in (40, 80, 160)]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(rates, MULTISTEP[method].order, atol=0.1)


@pytest.mark.parametrize("method", FIXED_ORDER)
def test_converges_at_the_stated_order_on_an_unequal_grid(method: str) -> None:
    """Without step_size the method steps on the output times; here they crowd
    towards t0, so every step differs from the one before: the weights are
    computed per step (equal-step weights would lose the order)."""
    errors = [_max_error(method, 2.0 * np.linspace(0.0, 1.0, n + 1) ** 2) for n in (80, 160, 320)]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    np.testing.assert_allclose(rates, MULTISTEP[method].order, atol=0.2)


def test_orders_of_the_registered_methods() -> None:
    """The rising start bounds torchdiffeq's: its first Adams steps use three slopes."""
    assert {name: m.order for name, m in MULTISTEP.items()} == {
        "adams_bashforth": 4,
        "adams_bashforth_moulton": 5,
        "explicit_adams": 4,
        "implicit_adams": 5,
    }


def test_explicit_adams_raises_its_order_with_every_slope_up_to_eleven() -> None:
    """torchdiffeq's start: two 3/8 steps, then one slope more per step: a
    polynomial f of degree 10 is integrated exactly once 11 slopes are kept."""
    calls = []

    def field(t: float, y: np.ndarray) -> np.ndarray:
        calls.append(t)
        return np.array([11 * t**10])

    solution = ode_core.solve(
        field, np.zeros(1), [0.0, 2.0], method="explicit_adams", step_size=0.01, dense_output=False
    )
    # 2 starter steps of 3 + 1 evaluations, 197 of 1, f(t0).
    assert len(calls) == 1 + 2 * 4 + 197
    # Exact but for the first 10 steps, whose lower orders leave O(h^4) errors of a tiny f.
    assert abs(float(solution.ys[-1, 0]) - 2.0**11) < 1e-9 * 2.0**11


@pytest.mark.parametrize("method", FIXED_ORDER)
def test_exact_for_a_cubic_in_t_on_a_random_grid(method: str) -> None:
    """y' = p(t) of degree 3: the 3/8 rule (Simpson's 3/8 quadrature) and
    four-step Adams on any grid integrate it exactly."""
    rng = np.random.default_rng(3)
    grid = np.concatenate(([0.0], np.sort(rng.uniform(0.0, 3.0, 12)), [3.0]))

    def field(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([4 * t**3 - 3 * t**2 + 0.5])

    solution = ode_core.solve(field, np.array([1.0]), grid, method=method)
    exact = 1.0 + grid**4 - grid**3 + 0.5 * grid
    np.testing.assert_allclose(solution.ys[:, 0], exact, rtol=1e-12, atol=1e-12)


def test_bashforth_evaluates_f_once_per_step_after_its_start() -> None:
    """The first three steps are the 3/8 rule's (3 evaluations each, and the
    next step's slope); every later one costs the next slope only."""
    calls = []

    def field(t: float, y: np.ndarray) -> np.ndarray:
        calls.append(t)
        return -y

    solution = ode_core.solve(field, np.ones(1), [0.0, 1.0], method="adams_bashforth", step_size=0.1)
    assert solution.stats.n_steps == 10
    # f(t0), 3 starter steps of 3 + 1, 7 Adams steps of 1 (the last one's
    # slope serves the dense output).
    assert solution.stats.nfev == len(calls) == 1 + 3 * 4 + 7


def test_each_bashforth_step_is_table_1_1_on_the_slopes_in_every_dtype_and_step_size() -> None:
    """f depending on t only makes each step's increment h sum_j beta_j g(t_{n-j})
    with the published weights; solves of two dtypes and two step sizes, one
    after the other, each get their own (the weights are kept across solves)."""

    def g(t: float) -> float:
        return math.cos(3.0 * t) + t * t

    beta = [float(w) for w in BASHFORTH[4]]
    for dtype, h in [(np.float64, 0.1), (np.float32, 0.1), (np.float64, 0.05), (np.float32, 0.05)]:
        grid = [h * i for i in range(13)]
        solution = ode_core.solve(
            lambda t, y: np.full_like(y, g(t)), np.zeros(1, dtype=dtype), grid, method="adams_bashforth", step_size=h
        )
        assert solution.ys.dtype == dtype
        ys = solution.ys[:, 0].astype(np.float64)
        for n in range(3, 12):  # every Adams step (the first three are the starter's)
            increment = h * sum(w * g(grid[n - j]) for j, w in enumerate(beta))
            tolerance = 1e-14 if dtype == np.float64 else 1e-6
            assert ys[n + 1] - ys[n] == pytest.approx(increment, abs=tolerance), (dtype, h, n)


def test_corrector_iterates_at_most_max_corrections_times() -> None:
    method = AdamsMethod(name="abm_once", steps=4, corrector=True, starter=RK38, max_corrections=1)
    calls = []

    def field(t: float, y: np.ndarray) -> np.ndarray:
        calls.append(t)
        return -50.0 * y

    solution = ode_core.solve(field, np.ones(1), [0.0, 0.1], method=method, step_size=0.01)
    assert solution.status is Status.SUCCESS
    # P(EC)E with one correction: two evaluations per Adams step.
    assert len(calls) == 1 + 3 * 4 + 7 * 2


def test_the_corrector_improves_on_the_predictor() -> None:
    """Adams-Moulton through the same slopes and the new point: one order more."""
    bashforth = _max_error("adams_bashforth", [0.0, 2.0], step_size=0.05)
    corrected = _max_error("adams_bashforth_moulton", [0.0, 2.0], step_size=0.05)
    assert corrected < bashforth / 5


@pytest.mark.parametrize("method", ADAMS)
def test_a_jump_of_f_restarts_the_history(method: str) -> None:
    """Slopes from before a jump of f would smear it over the next steps;
    after jump_t the method starts afresh and is exact again for a piecewise
    constant f."""

    def field(t: float, y: np.ndarray) -> np.ndarray:
        return np.array([1.0 if t < 0.5 else -2.0])

    solution = ode_core.solve(
        field, np.zeros(1), [0.0, 0.5, 1.0], method=method, step_size=0.05, jump_t=[0.5], dense_output=False
    )
    np.testing.assert_allclose(solution.ys[:, 0], [0.0, 0.5, -0.5], atol=1e-12)


def test_fixed_adams_is_torchdiffeqs_older_name_of_implicit_adams() -> None:
    assert ode_core.validation.check_method("fixed_adams") is MULTISTEP["implicit_adams"]


def test_an_unsettled_correction_drops_the_oldest_slope() -> None:
    """torchdiffeq's rule: a corrector that does not settle in its iterations
    leaves the step at its last correction and the history a slope shorter,
    so the next step is the starter's again for a method of fixed order."""
    method = AdamsMethod(name="abm", steps=4, corrector=True, starter=RK38, max_corrections=1)
    settings = ode_core.validation.check_settings(method, 1e-13, 1e-15, xp=np, y0=np.ones(1), step_size=0.1)
    stepper = ode_core.make_stepper(method, np, np.ones(1), lambda t, y: -y, settings)
    y = np.ones(1)
    for k in range(4):
        y, _, _ = stepper.step(lambda t, y: -y, 0.1 * k, y, -y, 0.1)
    assert len(stepper.times) == 3


def test_adams_methods_take_fixed_steps_only() -> None:
    method = MULTISTEP["adams_bashforth"]
    assert not method.adaptive and method.explicit and not method.implicit
    settings = ode_core.validation.check_settings(method, 1e-6, 1e-9, xp=np, y0=np.ones(1), step_size=0.1)
    stepper = ode_core.make_stepper(method, np, np.ones(1), lambda t, y: -y, settings)
    with pytest.raises(ValueError, match="'adams_bashforth' has no error estimate; it takes fixed steps"):
        stepper.error_ratio(0.1, np.ones(1), np.ones(1), np.ones(1), 1e-9, 1e-6, None)


def test_a_low_order_starter_bounds_the_order() -> None:
    assert AdamsMethod(name="x", steps=4, corrector=False, starter=EULER).order == 2


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"steps": 0}, r"AdamsMethod 'x': steps: expected an integer from 1 to 12, got 0"),
        ({"steps": 13}, r"steps: expected an integer from 1 to 12, got 13"),
        ({"min_steps": 5}, r"min_steps: expected an integer from 1 to steps=4, got 5"),
        ({"correction_test": "newton"}, r"correction_test: expected 'state' or 'increment', got 'newton'"),
        ({"starter": "rk38"}, r"starter: expected an explicit ButcherTableau, got 'rk38'"),
        ({"max_corrections": 0}, r"max_corrections: expected at least 1, got 0"),
    ],
)
def test_bad_fields_are_refused_by_name(fields: dict[str, object], match: str) -> None:
    values: dict[str, object] = {"name": "x", "steps": 4, "corrector": False, "starter": RK38, **fields}
    with pytest.raises((ValueError, TypeError), match=match):
        AdamsMethod(**values)  # type: ignore[arg-type]


def test_jac_is_ignored_with_a_warning_for_an_adams_method() -> None:
    with pytest.warns(
        UserWarning, match="jac: method 'implicit_adams' is explicit and uses no Jacobian; it is ignored"
    ):
        ode_core.solve(
            _oscillator,
            np.array([1.0, 0.0]),
            [0.0, 1.0],
            method="implicit_adams",
            step_size=0.1,
            jac=lambda t, y: np.zeros((2, 2)),
        )
