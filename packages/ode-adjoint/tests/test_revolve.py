"""The binomial checkpointing schedule (revolve) on its own, with counting states."""

from __future__ import annotations

import itertools
import math

import pytest
from ode_adjoint._revolve import revolve_schedule


class CountedState:
    """A stand-in for a solver state that counts how many exist at once."""

    alive = 0

    def __init__(self, step: int) -> None:
        self.step = step
        CountedState.alive += 1

    def __del__(self) -> None:
        CountedState.alive -= 1


def _fewest_repetitions(n_steps: int, budget: int) -> int:
    """The least r with C(budget + r, budget) >= n_steps: with ``budget``
    stored states no schedule recomputes every step fewer times (Griewank &
    Walther, ACM TOMS 26 (2000), "Algorithm 799: revolve")."""
    repetitions = 0
    while math.comb(budget + repetitions, budget) < n_steps:
        repetitions += 1
    return repetitions


def _run_schedule(n_steps: int, budget: int) -> tuple[list[int], list[int], int]:
    """Reversal order, advances per step, and the most states alive at a reversal."""
    advances = [0] * n_steps
    reversed_steps: list[int] = []
    peak_alive = 0

    def advance(step: int, state: CountedState) -> CountedState:
        assert state.step == step, "advance must get the state at its step"
        advances[step] += 1
        return CountedState(step + 1)

    def backward_step(step: int, state: CountedState) -> None:
        nonlocal peak_alive
        assert state.step == step, "backward_step must get the state at its step"
        reversed_steps.append(step)
        peak_alive = max(peak_alive, CountedState.alive)

    CountedState.alive = 0
    revolve_schedule(n_steps, budget, CountedState(0), advance, backward_step)
    return reversed_steps, advances, peak_alive


@pytest.mark.parametrize("n_steps", [1, 2, 5, 10, 30, 100])
@pytest.mark.parametrize("budget", [1, 2, 3, 4, 7, 200])
def test_schedule_reverses_every_step_once_within_the_budget(n_steps: int, budget: int) -> None:
    reversed_steps, advances, peak_alive = _run_schedule(n_steps, budget)
    assert reversed_steps == list(range(n_steps - 1, -1, -1))
    # budget stored states plus the one being reversed
    assert peak_alive <= budget + 1
    assert max(advances) <= _fewest_repetitions(n_steps, budget)


@pytest.mark.parametrize("n_steps", [5, 10, 30, 100])
def test_more_checkpoints_never_cost_more_recomputation(n_steps: int) -> None:
    totals = [sum(_run_schedule(n_steps, budget)[1]) for budget in range(1, n_steps + 2)]
    assert all(later <= earlier for earlier, later in itertools.pairwise(totals)), totals
    assert totals[0] == n_steps * (n_steps - 1) // 2  # y0 only: step k is reached k times
    assert totals[-1] == n_steps - 1  # a state per step: one sweep


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"checkpoints: expected at least 1, got 0"):
        revolve_schedule(3, 0, CountedState(0), lambda step, state: state, lambda step, state: None)
