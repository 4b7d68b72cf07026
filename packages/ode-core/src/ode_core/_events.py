"""Events: zeros of user functions ``g(t, y)`` located on each step's interpolant.

Conventions follow ``scipy.integrate.solve_ivp``:

* ``g.terminal``: ``False`` (default), ``True`` (stop at the first
  occurrence) or an int ``N >= 1`` (stop at the ``N``-th occurrence).
* ``g.direction``: ``0`` (default) every zero crossing counts; ``> 0`` only
  crossings from negative to positive, ``< 0`` only positive to negative.
  As in scipy, "from" and "to" follow the order in which the solver visits
  the times: integrating backwards, ``direction > 0`` fires where ``g`` is
  negative at the later time and positive at the earlier one.
* A sign change is looked for over each step only, so a function with an
  even number of zeros within one step shows none (scipy documents the same
  limit); its location is found to ``time_tolerance`` with Brent's method on
  the step's interpolant, which costs no evaluations of ``f``.

Exact zeros are where we differ from scipy, which counts a zero exactly at
a step's end twice (once in each of the two steps) and reports a zero at
``t0`` as an event. Here, as in SUNDIALS' root finding:

* a zero of ``g`` at ``t0`` is no event; a crossing later in the first step
  still is;
* a zero exactly at a step's end is one event, recorded in the step that
  reaches it, with the side ``g`` came from giving its direction; where
  ``g`` left its sign earlier in that step (a crossing inside, or a jump
  onto zero) the event is there, found by bisection on the sign, as
  torchdiffeq finds it;
* for a step that starts on a zero, the sign ``g`` has just after the start
  (one extra evaluation of ``g`` on the interpolant) is compared with the
  sign at the end, so the zero is not counted again and a crossing later in
  the step is still found.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any

from array_api_compat import array_namespace, is_array_api_obj
from array_api_compat import device as device_of

__all__ = ["EventTracker"]

_EPS = sys.float_info.epsilon
# Brent's method falls back on bisection, and one bisection can only follow
# a few interpolation steps, so even from the widest pair of doubles down to
# one unit in the last place (about 2100 halvings) it ends well before this
# cap, which is a guard only, e.g. against a g that is no function of t.
_MAX_ITERATIONS = 2500
# A step starting on a zero of g takes g's sign this far into the step
# (relative to the size of t), as SUNDIALS does.
_PROBE_ULPS = 100.0


def _sign(value: float) -> int:
    return (value > 0) - (value < 0)


def _as_event_value(value: Any, index: int, t: float) -> float:
    """The float an event function returned, or a ValueError/TypeError."""
    if isinstance(value, bool):
        raise TypeError(f"events[{index}]: returned a bool at t={t!r}, expected a real scalar")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        shape = getattr(value, "shape", None)
        if shape is None:
            raise TypeError(f"events[{index}]: returned {type(value).__name__} at t={t!r}, expected a real scalar")
        shape = tuple(shape)
        if math.prod(shape) != 1:
            raise ValueError(f"events[{index}]: returned shape {shape}, expected a scalar")
        kind = str(getattr(value, "dtype", ""))
        if "complex" in kind or "bool" in kind:
            raise TypeError(f"events[{index}]: returned dtype {kind} at t={t!r}, expected a real scalar")
        if len(shape) > 0:
            value = array_namespace(value).reshape(value, ()) if is_array_api_obj(value) else value.reshape(())
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"events[{index}]: returned {type(value).__name__} at t={t!r}, expected a real scalar"
            ) from exc
    if not math.isfinite(number):
        raise ValueError(f"events[{index}]: returned {number!r} at t={t!r}, expected a finite value")
    return number


def _check_terminal(event: Any, index: int) -> int:
    """Occurrences that stop the solve; 0 for a non-terminal event."""
    terminal = getattr(event, "terminal", False)
    if terminal is None or terminal is False:
        return 0
    if terminal is True:
        return 1
    # scipy's words too, and its exception: ValueError for a number that is no count.
    scipy_words = "The `terminal` attribute of each event must be a boolean or positive integer."
    if not isinstance(terminal, numbers.Real):
        raise TypeError(
            f"events[{index}].terminal: expected a bool or a positive int, got {type(terminal).__name__} "
            f"{terminal!r} ({scipy_words})"
        )
    if not isinstance(terminal, numbers.Integral) or terminal < 0:
        raise ValueError(
            f"events[{index}].terminal: expected a bool or a positive int, got {terminal!r} ({scipy_words})"
        )
    return int(terminal)


def _check_direction(event: Any, index: int) -> int:
    """The sign of ``event.direction``: -1, 0 or +1."""
    direction = getattr(event, "direction", 0)
    if isinstance(direction, bool) or not isinstance(direction, numbers.Real):
        raise TypeError(f"events[{index}].direction: expected a real number, got {type(direction).__name__}")
    number = float(direction)
    if not math.isfinite(number):
        raise ValueError(f"events[{index}].direction: expected a finite number, got {number!r}")
    return _sign(number)


def _brent(
    func: Callable[[float], float], a: float, fa: float, b: float, fb: float, tolerance: float
) -> tuple[float, float]:
    """A zero of ``func`` in ``[a, b]`` to within ``tolerance``.

    ``fa`` and ``fb`` are nonzero with opposite signs; ``a`` may exceed
    ``b``. Brent's method (inverse quadratic interpolation, secant steps and
    bisection), arranged as in Brent's ``zero`` and scipy's ``brentq``.

    Returns
    -------
    (x, func(x)), x in [min(a, b), max(a, b)]
    """
    x_prev, f_prev = a, fa
    x_cur, f_cur = b, fb
    x_block, f_block = a, fa
    step_prev = step_cur = b - a
    for _ in range(_MAX_ITERATIONS):
        if f_prev != 0 and f_cur != 0 and (f_prev < 0) != (f_cur < 0):
            x_block, f_block = x_prev, f_prev
            step_prev = step_cur = x_cur - x_prev
        if abs(f_block) < abs(f_cur):
            # Keep the best estimate in x_cur.
            x_prev, f_prev = x_cur, f_cur
            x_cur, f_cur = x_block, f_block
            x_block, f_block = x_prev, f_prev
        delta = max(0.5 * tolerance, math.ulp(x_cur))
        bisect = 0.5 * (x_block - x_cur)
        if f_cur == 0 or abs(bisect) < delta:
            return x_cur, f_cur
        if abs(step_prev) > delta and abs(f_cur) < abs(f_prev):
            # Brent's formulas in ratios of f values: products of two tiny
            # (or huge) values would underflow (or overflow) first.
            ratio = f_cur / f_prev
            if x_prev == x_block:
                # Secant step.
                trial = -2.0 * bisect * ratio / (1.0 - ratio)
            else:
                # Inverse quadratic interpolation.
                q = f_prev / f_block
                r = f_cur / f_block
                p = ratio * (2.0 * bisect * q * (q - r) - (x_cur - x_prev) * (r - 1.0))
                trial = -p / ((q - 1.0) * (r - 1.0) * (ratio - 1.0))
            # A nan or inf trial (overflowed ratios) fails this test and bisects.
            if 2.0 * abs(trial) < min(abs(step_prev), 3.0 * abs(bisect) - delta):
                step_prev, step_cur = step_cur, trial
            else:
                step_prev = step_cur = bisect
        else:
            step_prev = step_cur = bisect
        x_prev, f_prev = x_cur, f_cur
        if abs(step_cur) > delta:
            x_cur += step_cur
        else:
            x_cur += delta if bisect > 0 else -delta
        f_cur = func(x_cur)
    return x_cur, f_cur


def _sign_boundary(func: Callable[[float], float], a: float, sign_a: int, b: float, tolerance: float) -> float:
    """Where ``func`` stops having the sign ``sign_a`` between ``a`` and ``b``, to within ``tolerance``.

    Bisection on the sign (``func(a)`` has sign ``sign_a``, ``func(b)`` is
    zero): the earliest boundary the halvings meet, which is ``b`` itself when
    ``func`` keeps its sign all the way. ``a`` may exceed ``b``.

    Returns
    -------
    float
        The first time of the last bracket at which the sign is not ``sign_a``.
    """
    inside, outside = a, b
    for _ in range(_MAX_ITERATIONS):
        middle = 0.5 * (inside + outside)
        if abs(outside - inside) <= max(tolerance, math.ulp(middle)) or middle in (inside, outside):
            break
        if _sign(func(middle)) == sign_a:
            inside = middle
        else:
            outside = middle
    return outside


class EventTracker:
    """Detects and locates the events of one solve, step by step.

    Parameters
    ----------
    events : callable or sequence of callables
        ``g(t, y) -> scalar`` with ``t`` a Python float and ``y`` an array
        of ``shape``; the result a Python number or a one-element array.
        Optional attributes ``terminal`` (bool or int ``>= 1``) and
        ``direction`` (real number), as in ``scipy.integrate.solve_ivp``.
    xp : array namespace
        The state's namespace.
    shape : tuple of int
        The state's shape (``y0.shape``).
    t0 : float
        Initial time.
    y0_flat : array, shape (n,)
        Initial state, flattened.
    direction : float
        Direction of integration, ``+1.0`` or ``-1.0``.
    time_tolerance : float, optional
        Absolute accuracy of event times on the interpolant; default
        ``4 * eps * max(|t_old|, |t_new|)`` per step (round-off level).

    Raises
    ------
    TypeError, ValueError
        Naming ``events[i]`` (or its ``terminal``/``direction``) for a
        non-callable, a bad attribute, or a value of ``g(t0, y0)`` that is
        not a finite real scalar.

    Notes
    -----
    Call :meth:`step` after every accepted step; after it returns a stop
    point, step no further. See the module docstring for the treatment of
    exact zeros.

    Examples
    --------
    >>> import math, numpy as np
    >>> from ode_core._events import EventTracker
    >>> exact = lambda t: np.array([math.cos(t), -math.sin(t)])
    >>> tracker = EventTracker(lambda t, y: y[0], np, (2,), 0.0, exact(0.0), 1.0)
    >>> tracker.step(0.0, 2.0, exact(2.0), exact)  # no terminal event: None
    >>> bool(abs(tracker.t_events[0][0] - math.pi / 2) < 1e-14)
    True
    """

    def __init__(
        self,
        events: Callable[..., Any] | Sequence[Callable[..., Any]],
        xp: Any,
        shape: tuple[int, ...],
        t0: float,
        y0_flat: Any,
        direction: float,
        time_tolerance: float | None = None,
    ) -> None:
        given: Any = events  # checked at run time, whatever the annotation says
        if callable(given):
            functions: list[Callable[..., Any]] = [given]
        elif isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
            raise TypeError(f"events: expected a callable or a sequence of callables, got {type(given).__name__}")
        else:
            functions = list(given)
        for index, event in enumerate(functions):
            if not callable(event):
                raise TypeError(f"events[{index}]: expected a callable, got {type(event).__name__}")
        if direction not in (1.0, -1.0):
            raise ValueError(f"direction: expected +1.0 or -1.0, got {direction!r}")
        tolerance: Any = time_tolerance
        if tolerance is not None:
            if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
                raise TypeError(f"time_tolerance: expected a number, got {type(tolerance).__name__}")
            if not (math.isfinite(float(tolerance)) and float(tolerance) >= 0):
                raise ValueError(f"time_tolerance: expected a finite number >= 0, got {tolerance!r}")

        self._functions = functions
        self._max_counts = [_check_terminal(event, index) for index, event in enumerate(functions)]
        self._directions = [_check_direction(event, index) for index, event in enumerate(functions)]
        self._xp = xp
        self._shape = tuple(shape)
        self._direction = float(direction)
        self._time_tolerance = None if time_tolerance is None else float(time_tolerance)
        self._dtype = y0_flat.dtype
        self._device = device_of(y0_flat)

        self._g_old = self._evaluate_all(float(t0), y0_flat)
        self._counts = [0] * len(functions)
        self._times: list[list[float]] = [[] for _ in functions]
        self._states: list[list[Any]] = [[] for _ in functions]

    def _value(self, index: int, t: float, y_flat: Any) -> float:
        return _as_event_value(self._functions[index](t, self._xp.reshape(y_flat, self._shape)), index, t)

    def _evaluate_all(self, t: float, y_flat: Any) -> list[float]:
        y = self._xp.reshape(y_flat, self._shape)
        return [_as_event_value(g(t, y), index, t) for index, g in enumerate(self._functions)]

    def restart(self, t: float, y_flat: Any) -> None:
        """The state jumped at ``t`` (an impulse): look for sign changes from its new value on.

        Parameters
        ----------
        t : float
        y_flat : array, shape (n,)
        """
        self._g_old = self._evaluate_all(float(t), y_flat)

    def step(
        self, t_old: float, t_new: float, y_new_flat: Any, interpolate: Callable[[float], Any]
    ) -> tuple[float, Any] | None:
        """Look for events in the step from ``t_old`` to ``t_new``.

        Parameters
        ----------
        t_old, t_new : float
            The accepted step; ``t_old`` is the previous call's ``t_new``
            (or ``t0``).
        y_new_flat : array, shape (n,)
            State at ``t_new``.
        interpolate : callable
            ``interpolate(t) -> array (n,)``, the state at any ``t`` of the
            step; no evaluations of ``f``.

        Returns
        -------
        (t_stop, y_stop_flat) or None
            The earliest terminal occurrence in this step that reached its
            count (``y_stop_flat`` of shape (n,)), else ``None``.
            Occurrences after ``t_stop`` are not recorded.
        """
        t_old = float(t_old)
        t_new = float(t_new)
        g_new = self._evaluate_all(t_new, y_new_flat)
        scale = max(abs(t_old), abs(t_new))
        tolerance = 4.0 * _EPS * scale if self._time_tolerance is None else self._time_tolerance
        step = t_new - t_old

        found: list[tuple[float, int]] = []
        for index, (value_old, value_new) in enumerate(zip(self._g_old, g_new)):
            t_left, value_left = t_old, value_old
            if value_old == 0.0:
                # Counted in the step that reached it (or at t0: no event);
                # the sign just inside this step decides what happens next.
                offset = min(max(_PROBE_ULPS * _EPS * scale, tolerance), 0.5 * abs(step))
                t_left = t_old + math.copysign(offset, step)
                if t_left in (t_old, t_new):
                    continue
                value_left = self._value(index, t_left, interpolate(t_left))
            sign_left, sign_new = _sign(value_left), _sign(value_new)
            if sign_left == 0 or sign_left == sign_new:
                continue
            # sign_left != 0 here, so the crossing goes from sign_left towards -sign_left.
            if self._directions[index] not in (0, -sign_left):
                continue

            def along(t: float, index: int = index) -> float:
                return self._value(index, t, interpolate(t))

            if sign_new == 0:
                # g reached zero exactly at the step's end: the zero is there,
                # unless g left its sign earlier in the step (a crossing inside,
                # or a g that jumps onto zero, as torchdiffeq's examples use to
                # stop at a given time).
                found.append((_sign_boundary(along, t_left, sign_left, t_new, tolerance), index))
                continue
            root, _ = _brent(along, t_left, value_left, t_new, value_new, tolerance)
            found.append((root, index))
        self._g_old = g_new
        if not found:
            return None

        found.sort(key=lambda occurrence: (self._direction * occurrence[0], occurrence[1]))
        t_stop: float | None = None
        for root, index in found:
            if t_stop is not None and root != t_stop:
                break
            self._times[index].append(root)
            self._states[index].append(y_new_flat if root == t_new else interpolate(root))
            self._counts[index] += 1
            if t_stop is None and self._counts[index] == self._max_counts[index]:
                t_stop = root
        if t_stop is None:
            return None
        return t_stop, (y_new_flat if t_stop == t_new else interpolate(t_stop))

    @property
    def t_events(self) -> list[Any]:
        """Event times, one float64 array of shape (k_i,) per event function, in time order."""
        xp = self._xp
        return [xp.asarray(times, dtype=xp.float64, device=self._device) for times in self._times]

    @property
    def y_events(self) -> list[Any]:
        """States at the events, one array of shape (k_i, *shape) per event function."""
        xp = self._xp
        arrays = []
        for states in self._states:
            if states:
                arrays.append(xp.reshape(xp.stack(states), (len(states), *self._shape)))
            else:
                arrays.append(xp.zeros((0, *self._shape), dtype=self._dtype, device=self._device))
        return arrays
