"""The per-sample mode (``batch_dims``): every sample as if solved alone.

The strongest check there is: each sample of a batch takes exactly the steps,
the evaluations and (to round-off) the values that the joint loop takes on
that sample alone, so the two loops hold each other to one set of rules.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np
import ode_core
import pytest
from ode_core import Status

MU = np.linspace(0.2, 5.0, 6)
Y0 = np.tile([2.0, 0.0], (6, 1))
T = np.linspace(0.0, 6.0, 7)


def van_der_pol_batch(mu: np.ndarray) -> Any:
    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        assert t.shape == (y.shape[0],)
        return np.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], axis=1)

    return f


def van_der_pol(mu: float) -> Any:
    return lambda t, y: np.array([y[1], mu * (1 - y[0] ** 2) * y[1] - y[0]])


def _alone(b: int, t: Any, **settings: Any) -> ode_core.Solution:
    return ode_core.solve(van_der_pol(MU[b]), Y0[b], t, dense_output=False, **settings)


def _assert_as_alone(batch: ode_core.Solution, t: Any, close: float = 1e-10, **settings: Any) -> None:
    assert batch.status is Status.SUCCESS, batch.message
    for b in range(len(MU)):
        alone = _alone(b, t if np.ndim(t) == 1 else t[b], **settings)
        assert int(batch.stats.n_steps[b]) == alone.stats.n_steps, b
        assert int(batch.stats.n_accepted[b]) == alone.stats.n_accepted, b
        assert int(batch.stats.n_rejected[b]) == alone.stats.n_rejected, b
        assert int(batch.stats.nfev[b]) == alone.stats.nfev, b
        np.testing.assert_allclose(batch.ys[:, b], alone.ys, rtol=close, atol=1e-12)
        np.testing.assert_allclose(batch.y_final[b], alone.y_final, rtol=close, atol=1e-12)


@pytest.mark.parametrize(
    "method",
    # heun_euler, of order 2(1), takes thousands of steps here: among the slow tests.
    [
        "dopri5",
        "tsit5",
        "bosh3",
        "dopri87",
        "fehlberg2",
        "cash_karp",
        pytest.param("heun_euler", marks=pytest.mark.slow),
    ],
)
def test_adaptive_samples_step_as_alone(method: str) -> None:
    settings = {"method": method, "rtol": 1e-6, "atol": 1e-8}
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, **settings)
    _assert_as_alone(batch, T, **settings)
    assert len(set(batch.stats.n_steps.tolist())) > 3  # the samples took different numbers of steps


@pytest.mark.parametrize(
    "settings",
    [
        {"method": "rk4", "step_size": 0.01},
        {"method": "midpoint", "step_size": 0.03},
        {"method": "euler", "step_size": 0.004},
        {"method": "dopri5", "step_size": 0.05},
    ],
)
def test_fixed_steps_as_alone(settings: dict[str, Any]) -> None:
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, **settings)
    _assert_as_alone(batch, T, **settings)


def test_grid_of_t_as_alone() -> None:
    """A fixed-step method without a step size steps from output to output."""
    t = np.linspace(0.0, 6.0, 601)
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, t, batch_dims=1, method="heun2")
    _assert_as_alone(batch, t, method="heun2")


def test_each_sample_its_own_output_times_and_backwards() -> None:
    times = np.stack([np.linspace(0.1 * b, 3.0 + b, 6) for b in range(len(MU))])
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, times, batch_dims=1, rtol=1e-7)
    assert batch.ts.shape == times.shape
    np.testing.assert_array_equal(batch.ts, times)
    _assert_as_alone(batch, times, rtol=1e-7)
    np.testing.assert_array_equal(batch.t_final, times[:, -1])
    backward = ode_core.solve(van_der_pol_batch(MU), Y0, -times, batch_dims=1, rtol=1e-7)
    _assert_as_alone(backward, -times, rtol=1e-7)


def test_controllers_and_bounds_as_alone() -> None:
    settings: dict[str, Any] = {
        "controller": ode_core.PIController(),
        "rtol": 1e-7,
        "max_step": 0.3,
        "first_step": 0.01,
    }
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, **settings)
    _assert_as_alone(batch, T, **settings)


def test_forced_steps_at_min_step_as_alone() -> None:
    settings: dict[str, Any] = {"rtol": 1e-9, "min_step": 0.05, "accept_at_min_step": True}
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, **settings)
    _assert_as_alone(batch, T, **settings)
    forced = [_alone(b, T, **settings).stats.n_forced for b in range(len(MU))]
    assert batch.stats.n_forced.tolist() == forced and max(forced) > 0


def test_several_batch_dimensions_and_shaped_states() -> None:
    """(2, 3) samples of a (2, 1) state: the same as the flat batch of six."""

    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        assert t.shape == (2, 3) and y.shape == (2, 3, 2, 1)
        mu = MU.reshape(2, 3)
        x, v = y[..., 0, 0], y[..., 1, 0]
        return np.stack([v, mu * (1 - x**2) * v - x], axis=-1)[..., None]

    shaped = ode_core.solve(f, Y0.reshape(2, 3, 2, 1), T, batch_dims=2)
    flat = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1)
    assert shaped.ys.shape == (len(T), 2, 3, 2, 1) and shaped.stats.nfev.shape == (2, 3)
    np.testing.assert_array_equal(shaped.ys.reshape(len(T), 6, 2), flat.ys)
    np.testing.assert_array_equal(shaped.stats.nfev.reshape(6), flat.stats.nfev)


def test_a_failing_sample_leaves_the_others_alone() -> None:
    """Sample 1 blows up (y' = y^2 from 1 at t = 1); the others reach the end."""

    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        rates = np.array([-1.0, 0.0, 0.5])
        return np.where(np.arange(3)[:, None] == 1, y**2, rates[:, None] * y)

    with np.errstate(all="ignore"):
        batch = ode_core.solve(f, np.ones((3, 1)), [0.0, 0.5, 2.0], batch_dims=1)
    assert batch.sample_status == (Status.SUCCESS, Status.STEP_SIZE_UNDERFLOW, Status.SUCCESS)
    assert batch.status is Status.STEP_SIZE_UNDERFLOW
    assert "1 of 3 samples failed; the first, sample 1" in batch.message
    assert np.isnan(batch.ys[2, 1, 0]) and abs(batch.ys[1, 1, 0] - 2.0) < 1e-5  # y = 1 / (1 - t)
    assert 0.99 < batch.t_final[1] < 1.001
    np.testing.assert_allclose(batch.ys[2, [0, 2], 0], np.exp([-2.0, 1.0]), rtol=1e-5)


def test_max_steps_and_non_finite_fixed_steps() -> None:
    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, max_steps=40)
    assert Status.MAX_STEPS_REACHED in batch.sample_status and Status.SUCCESS in batch.sample_status
    assert int(batch.stats.n_steps.max()) == 40
    assert "max_steps=40" in batch.message
    with np.errstate(all="ignore"):
        blown = ode_core.solve(van_der_pol_batch(MU), Y0, np.linspace(0, 10, 11), batch_dims=1, method="euler")
    assert Status.NON_FINITE in blown.sample_status and blown.sample_status[0] is Status.SUCCESS
    assert "fixed step" in blown.message


def test_norm_per_sample_and_single_time() -> None:
    calls = []

    def max_rows(scaled: np.ndarray) -> np.ndarray:
        calls.append(scaled.shape)
        return np.max(np.abs(scaled), axis=1)

    batch = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, norm=max_rows)
    assert batch.success and calls[0] == (len(MU), 2)
    alone = ode_core.solve(van_der_pol(MU[3]), Y0[3], T, norm=lambda s: float(np.max(np.abs(s))), dense_output=False)
    assert int(batch.stats.nfev[3]) == alone.stats.nfev
    single = ode_core.solve(van_der_pol_batch(MU), Y0, [1.0], batch_dims=1)
    assert single.ys.shape == (1, len(MU), 2) and single.success
    np.testing.assert_array_equal(single.ys[0], Y0)


@pytest.mark.parametrize(
    ("arguments", "match"),
    [
        ({"method": "radau5"}, "method: 'radau5' is implicit"),
        ({"method": "adams_bashforth"}, "multistep"),
        ({"events": lambda t, y: y[:2, 0]}, r"events\[0\]: returned shape \(2,\), expected one value per sample"),
        ({"dense_output": True}, "dense_output: not available"),
        ({"step_t": [1.0]}, "step_t: not available"),
        ({"controller": ode_core.PredictiveController()}, "controller: PredictiveController"),
        ({"batch_dims": 3}, "batch_dims: expected 0 to 2"),
        ({"t": np.zeros((2, 3))}, r"t: expected shape \(m,\) or \(6, 'm'\)"),
        ({"t": np.array([[0.0, 1.0]] * 5 + [[0.0, -1.0]])}, "sample 5 has t"),
        ({"sync_every": 0}, "sync_every"),
    ],
)
def test_what_the_mode_refuses(arguments: dict[str, Any], match: str) -> None:
    settings = {"batch_dims": 1, **arguments}
    t = settings.pop("t", T)
    with pytest.raises((ValueError, TypeError), match=match):
        ode_core.solve(van_der_pol_batch(MU), Y0, t, **settings)


def test_torch_float32_and_float64(torch: ModuleType) -> None:
    for dtype in (torch.float32, torch.float64):
        mu = torch.tensor(MU, dtype=dtype)

        def f(t: Any, y: Any, mu: Any = mu) -> Any:
            assert t.dtype == torch.float64 and t.shape == (len(MU),)
            return torch.stack([y[:, 1], mu * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0]], dim=1)

        batch = ode_core.solve(f, torch.tensor(Y0, dtype=dtype), T, batch_dims=1, rtol=1e-5, atol=1e-7)
        assert batch.ys.dtype == dtype and batch.success
        numpy = ode_core.solve(van_der_pol_batch(MU), Y0, T, batch_dims=1, rtol=1e-5, atol=1e-7)
        if dtype == torch.float64:
            assert batch.stats.nfev.tolist() == numpy.stats.nfev.tolist()
        np.testing.assert_allclose(batch.ys.numpy(), numpy.ys, rtol=1e-3 if dtype == torch.float32 else 1e-9, atol=1e-4)


def test_driving_the_steps_by_hand() -> None:
    """``PerSampleRun``: the steps a caller takes itself (in blocks it may compile or capture) are the solve's."""
    settings = ode_core.validation.check_settings("dopri5", 1e-6, 1e-8, xp=np, y0=Y0[0])
    f = van_der_pol_batch(MU)
    times = np.broadcast_to(T, (len(MU), len(T)))
    run = ode_core.PerSampleRun(f, Y0, times, settings)
    blocks = 0
    while run.running():
        for _ in range(16):
            run.carry = ode_core.per_sample_step(run.problem, run.carry)
        blocks += 1
    by_hand = run.solution()
    whole = ode_core.integrate_per_sample(f, Y0, times, settings)
    assert blocks == -(-int(whole.stats.n_steps.max()) // 16)
    np.testing.assert_array_equal(by_hand.ys, whole.ys)
    np.testing.assert_array_equal(by_hand.stats.nfev, whole.stats.nfev)
    assert by_hand.sample_status == whole.sample_status


@pytest.mark.parametrize("settings", [{"method": "dopri5"}, {"method": "rk4", "step_size": 0.25}])
@pytest.mark.parametrize("backwards", [False, True])
def test_samples_of_no_span_are_done_at_their_start(settings: dict[str, Any], backwards: bool) -> None:
    """A sample whose times are all its first (as the per-sample adjoint pads its intervals) never steps,
    its outputs its initial state, and leaves the others' steps and direction as they were, even in row 0."""
    spans = np.array([[1.0, 1.0, 1.0], [0.0, 1.0, 2.0], [0.0, 0.5, 1.0]])
    times = spans[:, ::-1].copy() if backwards else spans
    batch = ode_core.integrate_per_sample(van_der_pol_batch(MU[:3]), Y0[:3], times, _checked(settings))
    assert batch.status is Status.SUCCESS, batch.message
    assert int(batch.stats.n_steps[0]) == 0 and batch.t_final[0] == 1.0
    np.testing.assert_array_equal(batch.ys[:, 0], np.tile(Y0[0], (3, 1)))
    for b in (1, 2):
        alone = ode_core.solve(
            van_der_pol(MU[b]), Y0[b], times[b], rtol=1e-6, atol=1e-8, dense_output=False, **settings
        )
        assert int(batch.stats.n_steps[b]) == alone.stats.n_steps
        np.testing.assert_allclose(batch.ys[:, b], alone.ys, rtol=1e-10, atol=1e-12)


def _checked(settings: dict[str, Any]) -> ode_core.Settings:
    return ode_core.validation.check_settings(
        settings["method"], 1e-6, 1e-8, xp=np, y0=Y0[0], step_size=settings.get("step_size")
    )


def test_finished_samples_leave_the_batch() -> None:
    """``compact=True``: f sees fewer rows as samples finish; every sample's steps and values are unchanged."""
    rows = []

    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:  # mu carried in the state: no per-sample data in f
        rows.append(y.shape[0])
        return np.stack([y[:, 1], y[:, 2] * (1 - y[:, 0] ** 2) * y[:, 1] - y[:, 0], 0 * y[:, 2]], axis=1)

    y0 = np.concatenate([Y0, MU[:, None]], axis=1)
    whole = ode_core.solve(f, y0, T, batch_dims=1, sync_every=4)
    row_evaluations = sum(rows)
    rows.clear()
    compacted = ode_core.solve(f, y0, T, batch_dims=1, sync_every=4, compact=True)
    assert min(rows) < len(MU) and sum(rows) < 0.9 * row_evaluations
    assert compacted.sample_status == whole.sample_status
    for name in ("nfev", "n_steps", "n_accepted", "n_rejected"):
        np.testing.assert_array_equal(getattr(compacted.stats, name), getattr(whole.stats, name))
    # Equal to round-off: a product over fewer rows may round differently.
    np.testing.assert_allclose(compacted.ys, whole.ys, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(compacted.t_final, whole.t_final)
    with pytest.raises(ValueError, match="compact: takes rows out of one batch dimension; got batch_dims=2"):
        ode_core.solve(f, y0.reshape(2, 3, 3), T, batch_dims=2, compact=True)


def _falling(heights: np.ndarray) -> tuple[Any, np.ndarray]:
    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([y[:, 1], np.full_like(y[:, 0], -9.81)], axis=1)

    return f, np.stack([heights, np.zeros_like(heights)], axis=1)


def test_terminal_events_stop_each_sample_where_it_would_stop_alone() -> None:
    """Each sample falls from its own height onto its own floor (per-sample data in g)."""
    heights, floors = np.array([1.0, 2.0, 4.0, 8.0]), np.array([0.0, 0.5, -1.0, 7.9])
    f, y0 = _falling(heights)

    def floor(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y[:, 0] - floors

    floor.terminal, floor.direction = True, -1  # type: ignore[attr-defined]
    t = np.linspace(0.0, 2.0, 5)
    batch = ode_core.solve(f, y0, t, batch_dims=1, events=floor)
    assert batch.status is Status.EVENT and batch.sample_status == (Status.EVENT,) * 4
    for b in range(4):

        def alone_floor(t: float, y: np.ndarray, b: int = b) -> float:
            return y[0] - floors[b]

        alone_floor.terminal, alone_floor.direction = True, -1  # type: ignore[attr-defined]
        alone = ode_core.solve(lambda t, y: np.array([y[1], -9.81]), y0[b], t, events=alone_floor, dense_output=False)
        assert alone.status is Status.EVENT and int(batch.stats.nfev[b]) == alone.stats.nfev
        # The same event to round-off (the two loops' interpolants round differently).
        assert abs(batch.t_final[b] - alone.t_final) < 1e-14
        assert abs(batch.t_final[b] - np.sqrt(2 * (heights[b] - floors[b]) / 9.81)) < 1e-12
        np.testing.assert_allclose(batch.t_events[0][b], alone.t_events[0], rtol=0, atol=1e-14)
        reached = alone.ys.shape[0]
        np.testing.assert_allclose(batch.ys[:reached, b], alone.ys, rtol=1e-13)
        assert np.all(np.isnan(batch.ys[reached:, b]))


def test_events_with_finished_samples_leaving_the_batch() -> None:
    """``compact=True`` with events: the same events, states and counts as without, while samples that
    stopped at their floor (carried in the state, as compaction asks of f and g) leave the batch."""
    heights = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0])
    floors = np.array([0.0, 0.5, -1.0, 7.9, 0.0, 0.0, -300.0, -400.0])
    rows: list[int] = []

    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        rows.append(y.shape[0])
        # With drag: free fall, exact for dopri5, would take a few long steps only.
        return np.stack([y[:, 1], -9.81 - 0.05 * y[:, 1] * np.abs(y[:, 1]), 0 * y[:, 2]], axis=1)

    def floor(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y[:, 0] - y[:, 2]

    def halfway(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y[:, 0] - 0.5 * y[:, 2] - 2.0

    floor.terminal, floor.direction = True, -1  # type: ignore[attr-defined]
    y0 = np.stack([heights, np.zeros_like(heights), floors], axis=1)
    t = np.linspace(0.0, 8.0, 9)
    settings: dict[str, Any] = {"batch_dims": 1, "sync_every": 2, "events": [floor, halfway]}
    whole = ode_core.solve(f, y0, t, **settings)
    rows.clear()
    compacted = ode_core.solve(f, y0, t, compact=True, **settings)
    assert min(rows) < len(heights)
    assert compacted.sample_status == whole.sample_status
    assert compacted.sample_status[:6] == (Status.EVENT,) * 6 and compacted.sample_status[6:] == (Status.SUCCESS,) * 2
    for name in ("nfev", "n_steps", "n_accepted", "n_rejected"):
        np.testing.assert_array_equal(getattr(compacted.stats, name), getattr(whole.stats, name))
    np.testing.assert_allclose(compacted.ys, whole.ys, rtol=1e-13, atol=1e-14)
    np.testing.assert_array_equal(compacted.t_final, whole.t_final)
    for e in range(2):
        for b in range(len(heights)):
            np.testing.assert_allclose(compacted.t_events[e][b], whole.t_events[e][b], rtol=1e-14, atol=0)
            np.testing.assert_allclose(compacted.y_events[e][b], whole.y_events[e][b], rtol=1e-13, atol=1e-14)
    # Halfway (2 above the floor's half) is crossed by the balls falling far enough before their floor.
    assert [len(times) for times in compacted.t_events[1]] == [0, 0, 1, 0, 1, 1, 0, 0]


def test_events_that_do_not_stop_and_directions_as_alone() -> None:
    omega = np.array([1.0, 2.0, 3.5])

    def f(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.stack([y[:, 1], -(omega**2) * y[:, 0]], axis=1)

    def position(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return y[:, 0]

    def rising(t: np.ndarray, y: np.ndarray) -> np.ndarray:  # zero at t0: no event there
        return y[:, 1]

    rising.direction = 1  # type: ignore[attr-defined]
    twice = np.vectorize(lambda v: v)  # a third function: terminal at its second crossing

    def second(t: np.ndarray, y: np.ndarray) -> np.ndarray:
        return twice(y[:, 0] - 0.5)

    second.terminal = 2  # type: ignore[attr-defined]
    y0 = np.stack([np.ones(3), np.zeros(3)], axis=1)
    settings: dict[str, Any] = {"rtol": 1e-9, "atol": 1e-12}
    batch = ode_core.solve(f, y0, T, batch_dims=1, events=[position, rising, second], **settings)
    for b in range(3):
        alone_events = [
            lambda t, y: y[0],
            lambda t, y: y[1],
            lambda t, y: y[0] - 0.5,
        ]
        alone_events[1].direction = 1  # type: ignore[attr-defined]
        alone_events[2].terminal = 2  # type: ignore[attr-defined]
        alone = ode_core.solve(
            lambda t, y, b=b: np.array([y[1], -(omega[b] ** 2) * y[0]]),
            y0[b],
            T,
            events=alone_events,
            dense_output=False,
            **settings,
        )
        assert batch.sample_status[b] is alone.status and int(batch.stats.nfev[b]) == alone.stats.nfev
        for e in range(3):
            np.testing.assert_allclose(batch.t_events[e][b], alone.t_events[e], rtol=0, atol=1e-13)
            np.testing.assert_allclose(batch.y_events[e][b], alone.y_events[e], rtol=1e-12, atol=1e-12)


def test_events_on_torch(torch: ModuleType) -> None:
    heights = torch.tensor([1.0, 3.0], dtype=torch.float64)
    y0 = torch.stack([heights, torch.zeros(2, dtype=torch.float64)], dim=1)

    def floor(t: Any, y: Any) -> Any:
        return y[:, 0]

    floor.terminal = True  # type: ignore[attr-defined]
    batch = ode_core.solve(
        lambda t, y: torch.stack([y[:, 1], torch.full_like(y[:, 0], -9.81)], dim=1),
        y0,
        [0.0, 2.0],
        batch_dims=1,
        events=floor,
    )
    torch.testing.assert_close(batch.t_final, torch.sqrt(2 * heights / 9.81), rtol=1e-12, atol=0)
