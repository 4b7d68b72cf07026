"""Butcher tableaux as checked, immutable data.

A Runge--Kutta method with ``s`` stages is drawn as::

    c[0]   | a[0][0]   ...  a[0][s-1]
    c[1]   | a[1][0]   ...  a[1][s-1]
    ...    | ...            ...
    c[s-1] | a[s-1][0] ...  a[s-1][s-1]
    -------+---------------------------
           | b[0]      ...  b[s-1]          <- propagated solution, order ``order``
           | b_embedded[0] ... b_embedded[s-1]   <- error estimate, ``embedded_order``

and a step from ``(t, y)`` with step ``h`` computes the stages
``k_i = f(t + c_i h, y + h sum_j a_ij k_j)`` and ``y1 = y + h sum_i b_i k_i``.
The local error estimate is ``h sum_i (b_i - b_embedded_i) k_i``.

Coefficients are stored as :class:`fractions.Fraction`. Where a source
publishes exact rationals they are exact; where it publishes decimals (Tsit5,
DOP853) the fraction is the exact value of the published decimal, and
``exact=False`` tells the self-checks to allow the rounding the source carries.
They are converted to the caller's dtype once, by the stepper.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["ButcherTableau"]

CoefficientLike = Fraction | int | str
"""An exact coefficient: a ``Fraction``, an ``int`` or a string such as
``"-56/15"`` or ``"0.9800255409045097"`` (read exactly, digit for digit)."""

# Published decimals (Tsitouras 2011, Hairer's DOP853) are given to 16--30
# significant digits, and their row sums and weight sums hold only to that
# rounding; 1e-14 is loose enough for those sources and far tighter than any
# transcription slip.
_DECIMAL_SOURCE_TOLERANCE = Fraction(1, 10**14)


def _to_fraction(value: CoefficientLike, where: str) -> Fraction:
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(
            f"{where}: expected an exact coefficient (Fraction, int or str), "
            f"got {type(value).__name__} {value!r}; floats would lose exactness"
        )
    return Fraction(value)


def _vector(values: tuple[CoefficientLike, ...], where: str) -> tuple[Fraction, ...]:
    return tuple(_to_fraction(v, f"{where}[{i}]") for i, v in enumerate(values))


@dataclass(frozen=True)
class ButcherTableau:
    """A Runge--Kutta method as exact data, checked on construction.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"dopri5"``.
    order : int
        Order of the propagated solution ``b``.
    c : tuple, shape (s,)
        Nodes.
    a : tuple of tuples, shape (s, <= s)
        Runge--Kutta matrix, one row per stage. Rows may be ragged (explicit
        methods give row ``i`` with ``i`` entries); they are padded with zeros
        to ``s``.
    b : tuple, shape (s,)
        Weights of the propagated solution.
    b_embedded : tuple, shape (s,), optional
        Weights of the embedded solution used for the error estimate.
    embedded_order : int, optional
        Order of ``b_embedded``; required with it.
    b_embedded_secondary : tuple, shape (s,), optional
        A second embedded solution. Only DOP853 uses one: its error estimate
        combines a 5th- and a 3rd-order difference (Hairer, Norsett & Wanner,
        *Solving ODEs I*, 2nd ed., section II.10).
    embedded_secondary_order : int, optional
        Order of ``b_embedded_secondary``.
    error_order : int, optional
        The order ``q`` whose step-size exponent ``-1/(q + 1)`` the controller
        uses. Defaults to ``min(order, embedded_order)``.
    dense : tuple of tuples, shape (s + s_extra, d), optional
        Continuous-extension weights: ``b_i(theta) = sum_j dense[i][j] *
        theta**(j + 1)`` so that ``y(t + theta h) = y + h sum_i b_i(theta)
        k_i``. Rows past ``s`` weigh the extra stages below.
    dense_order : int, optional
        Order of the continuous extension; required with ``dense``.
    c_extra, a_extra : tuple, optional
        Nodes and matrix rows (over all earlier stages) of extra stages that
        only the continuous extension needs (DOP853 has three).
    interpolate_outputs : bool, optional
        Whether adaptive solves take the values at output times from the
        interpolant (``True``) or step onto the output times (``False``).
        By default (``None``) they interpolate when the interpolant's order
        (``dense_order``, or 3 for the cubic Hermite interpolant) is at least
        :attr:`controller_order`, and step onto them otherwise; see
        :attr:`steps_onto_outputs`.
    exact : bool
        ``True`` when the source publishes exact rationals, so every identity
        is checked exactly; ``False`` for published decimals.
    citation : str
        Where the coefficients come from.

    Raises
    ------
    ValueError
        If the shapes disagree or a consistency condition fails: row sums of
        ``a`` equal ``c``, weights sum to one, the continuous extension equals
        ``b`` at ``theta = 1``.

    Examples
    --------
    Heun's method as data; any tableau can be passed as ``method=``:

    >>> import numpy as np, ode_core
    >>> heun = ode_core.ButcherTableau(name="my_heun", order=2, c=(0, 1), a=((), (1,)), b=("1/2", "1/2"))
    >>> heun
    ButcherTableau('my_heun', explicit, order 2, 2 stages)
    >>> sol = ode_core.solve(lambda t, y: -y, np.array([1.0]), [0.0, 1.0], method=heun, step_size=0.01)
    >>> round(float(sol.ys[-1, 0]), 4)  # exp(-1) = 0.36788
    0.3679
    """

    name: str
    order: int
    c: tuple[Fraction, ...]
    a: tuple[tuple[Fraction, ...], ...]
    b: tuple[Fraction, ...]
    b_embedded: tuple[Fraction, ...] | None = None
    embedded_order: int | None = None
    b_embedded_secondary: tuple[Fraction, ...] | None = None
    embedded_secondary_order: int | None = None
    error_order: int | None = None
    dense: tuple[tuple[Fraction, ...], ...] | None = None
    dense_order: int | None = None
    c_extra: tuple[Fraction, ...] = ()
    a_extra: tuple[tuple[Fraction, ...], ...] = ()
    interpolate_outputs: bool | None = None
    exact: bool = True
    citation: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise once, here only
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        where = f"tableau {self.name!r}"
        c = _vector(tuple(self.c), f"{where}: c")
        n_stages = len(c)
        if n_stages == 0:
            raise ValueError(f"{where}: c must have at least one node")
        if len(self.a) != n_stages:
            raise ValueError(f"{where}: a has {len(self.a)} rows, expected {n_stages} (len(c))")
        a_rows = []
        for i, row in enumerate(self.a):
            if len(row) > n_stages:
                raise ValueError(f"{where}: a[{i}] has {len(row)} entries, expected at most {n_stages}")
            padded = tuple(row) + (0,) * (n_stages - len(row))
            a_rows.append(_vector(padded, f"{where}: a[{i}]"))
        a = tuple(a_rows)
        set_(self, "c", c)
        set_(self, "a", a)
        b = self._checked_weights(self.b, "b", n_stages)
        if b is None:
            raise ValueError(f"{where}: b (the weights) is required")
        set_(self, "b", b)
        set_(self, "b_embedded", self._checked_weights(self.b_embedded, "b_embedded", n_stages))
        set_(
            self,
            "b_embedded_secondary",
            self._checked_weights(self.b_embedded_secondary, "b_embedded_secondary", n_stages),
        )
        for weights_name, order_name in (
            ("b_embedded", "embedded_order"),
            ("b_embedded_secondary", "embedded_secondary_order"),
        ):
            if (getattr(self, weights_name) is None) != (getattr(self, order_name) is None):
                raise ValueError(f"{where}: {weights_name} and {order_name} must be given together")
        if self.interpolate_outputs is not None and not isinstance(self.interpolate_outputs, bool):
            raise ValueError(
                f"{where}: interpolate_outputs must be True, False or None, got {self.interpolate_outputs!r}"
            )
        if not isinstance(self.order, int) or self.order < 1:
            raise ValueError(f"{where}: order must be a positive int, got {self.order!r}")
        if self.embedded_order is not None and not 0 < self.embedded_order < self.order:
            raise ValueError(f"{where}: embedded_order must lie in 1..{self.order - 1}, got {self.embedded_order}")
        if self.b_embedded_secondary is not None and self.b_embedded is None:
            raise ValueError(f"{where}: b_embedded_secondary needs b_embedded")

        for i in range(n_stages):
            self._check_close(sum(a[i], Fraction(0)), c[i], f"row sum of a[{i}] vs c[{i}]")

        c_extra = _vector(tuple(self.c_extra), f"{where}: c_extra")
        if len(self.a_extra) != len(c_extra):
            raise ValueError(f"{where}: a_extra has {len(self.a_extra)} rows, expected {len(c_extra)}")
        a_extra_rows = []
        for i, row in enumerate(self.a_extra):
            width = n_stages + i
            if len(row) > width:
                raise ValueError(f"{where}: a_extra[{i}] has {len(row)} entries, expected at most {width}")
            padded = tuple(row) + (0,) * (width - len(row))
            vec = _vector(padded, f"{where}: a_extra[{i}]")
            self._check_close(sum(vec, Fraction(0)), c_extra[i], f"row sum of a_extra[{i}] vs c_extra[{i}]")
            a_extra_rows.append(vec)
        set_(self, "c_extra", c_extra)
        set_(self, "a_extra", tuple(a_extra_rows))

        if (self.dense is None) != (self.dense_order is None):
            raise ValueError(f"{where}: dense and dense_order must be given together")
        if self.dense is not None:
            n_rows = n_stages + len(c_extra)
            if len(self.dense) != n_rows:
                raise ValueError(
                    f"{where}: dense has {len(self.dense)} rows, expected {n_rows} (stages + extra stages)"
                )
            degree = len(self.dense[0])
            dense_rows = []
            for i, row in enumerate(self.dense):
                if len(row) != degree:
                    raise ValueError(f"{where}: dense[{i}] has {len(row)} entries, expected {degree}")
                vec = _vector(tuple(row), f"{where}: dense[{i}]")
                at_one = sum(vec, Fraction(0))
                expected = b[i] if i < n_stages else Fraction(0)
                self._check_close(at_one, expected, f"dense[{i}] at theta=1 vs b[{i}]")
                dense_rows.append(vec)
            set_(self, "dense", tuple(dense_rows))
        elif c_extra:
            raise ValueError(f"{where}: extra stages are only used by a continuous extension (dense)")

    def _checked_weights(
        self, weights: tuple[CoefficientLike, ...] | None, what: str, n_stages: int
    ) -> tuple[Fraction, ...] | None:
        if weights is None:
            return None
        vec = _vector(tuple(weights), f"tableau {self.name!r}: {what}")
        if len(vec) != n_stages:
            raise ValueError(f"tableau {self.name!r}: {what} has {len(vec)} weights, expected {n_stages}")
        self._check_close(sum(vec, Fraction(0)), Fraction(1), f"sum of {what}")
        return vec

    def _check_close(self, value: Fraction, expected: Fraction, what: str) -> None:
        tolerance = Fraction(0) if self.exact else _DECIMAL_SOURCE_TOLERANCE
        if abs(value - expected) > tolerance:
            raise ValueError(
                f"tableau {self.name!r}: {what}: {float(value)!r} != {float(expected)!r}"
                + ("" if self.exact else f" (tolerance {float(tolerance)})")
            )

    @property
    def n_stages(self) -> int:
        """Number of stages ``s`` (without the dense-output extra stages)."""
        return len(self.c)

    @functools.cached_property
    def explicit(self) -> bool:
        """Whether ``a`` is strictly lower triangular."""
        return all(self.a[i][j] == 0 for i in range(self.n_stages) for j in range(i, self.n_stages))

    @functools.cached_property
    def diagonally_implicit(self) -> bool:
        """Whether ``a`` is lower triangular with a nonzero diagonal entry:
        each stage solves its own equation, one after the other."""
        s = self.n_stages
        lower = all(self.a[i][j] == 0 for i in range(s) for j in range(i + 1, s))
        return lower and not self.explicit

    @property
    def implicit(self) -> bool:
        """Whether some stage depends on itself or a later stage."""
        return not self.explicit

    @property
    def adaptive(self) -> bool:
        """Whether the method carries an error estimate for step-size control."""
        return self.b_embedded is not None

    @functools.cached_property
    def fsal(self) -> bool:
        """First same as last: the last stage is ``f(t + h, y1)``.

        True when the last row of ``a`` equals ``b`` and its node is one, so
        the last stage of one step is the first stage of the next.
        """
        return self.explicit and self.n_stages > 1 and self.c[0] == 0 and self.c[-1] == 1 and self.a[-1] == self.b

    @functools.cached_property
    def controller_order(self) -> int:
        """Order ``q`` in the step-size exponent ``-1/(q + 1)``."""
        if self.error_order is not None:
            return self.error_order
        if self.embedded_order is None:
            return self.order
        return min(self.order, self.embedded_order)

    @functools.cached_property
    def steps_onto_outputs(self) -> bool:
        """Whether adaptive solves step onto the output times rather than interpolate there.

        ``not interpolate_outputs`` where the tableau says; otherwise whether
        the interpolant's order is below :attr:`controller_order`: an
        interpolant less accurate than the local error the controller bounds
        (the cubic Hermite interpolant behind cash_karp's 5(4) pair) would
        lose the tolerance at outputs between steps. Stepping onto them costs
        a step per output interval at the least, which matters when the
        outputs are denser than the steps.
        """
        if self.interpolate_outputs is not None:
            return not self.interpolate_outputs
        interpolant_order = self.dense_order if self.dense_order is not None else 3
        return interpolant_order < self.controller_order

    @functools.cached_property
    def error_weights(self) -> tuple[Fraction, ...] | None:
        """``b - b_embedded``: the local error is ``h sum_i e_i k_i``."""
        if self.b_embedded is None:
            return None
        return tuple(bi - ei for bi, ei in zip(self.b, self.b_embedded))

    @functools.cached_property
    def error_weights_secondary(self) -> tuple[Fraction, ...] | None:
        """``b - b_embedded_secondary`` (DOP853's 3rd-order difference)."""
        if self.b_embedded_secondary is None:
            return None
        return tuple(bi - ei for bi, ei in zip(self.b, self.b_embedded_secondary))

    def __repr__(self) -> str:
        kind = "explicit" if self.explicit else "implicit"
        embedded = "" if self.embedded_order is None else f"({self.embedded_order})"
        return f"ButcherTableau({self.name!r}, {kind}, order {self.order}{embedded}, {self.n_stages} stages)"
