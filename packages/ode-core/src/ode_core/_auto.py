"""``auto``: an explicit method while the problem is not stiff, ``bdf`` while it is (as LSODA switches).

The detection rules, both on quantities the steps already have:

* **to stiff** (Hairer's test in DOPRI5; Hairer & Wanner, *Solving ODEs I*,
  IV.2 and the code's ``IASTI``/``NONSTI``): after each accepted step of the
  explicit method, ``h rho`` with ``rho = ||k_7 - k_6|| / ||y_1 - Y_6||``
  estimates ``h |lambda|`` for the dominant eigenvalue (``k_6`` and ``k_7``
  are the slopes at the sixth stage's point ``Y_6`` and at ``y_1``, both at
  ``t + h``). Above ``3.25``, dopri5's stability boundary on the negative
  axis, the step was limited by stability rather than accuracy. Fifteen such
  steps, with no six in a row below it between them, switch to ``bdf``.
* **back to non-stiff** (after LSODA's idea of comparing the two methods'
  steps): while ``bdf`` steps, ``3.25 / ||J||_inf`` bounds the step the
  explicit method could take stably (``||J||_inf`` bounds the spectral
  radius). When it exceeds twice ``bdf``'s own next step for six accepted
  steps in a row, the explicit method takes over again.

A switch happens between steps: the new method starts from the last
accepted state, its slope and step proposal (``bdf`` at order 1, afresh, with
a fresh Jacobian). Its steps are those of ``dopri5`` exactly until the first
switch (the test's arithmetic apart).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._arrays import detached
from ._bdf import BDFMethod, BDFStepper
from ._controllers import ControllerState, IController
from ._linalg import is_sparse
from ._stepper import RightHandSide, StepperBase
from ._tableau import ButcherTableau

__all__ = ["AutoController", "AutoMethod", "AutoStepper"]


@dataclass(frozen=True)
class AutoMethod:
    """A non-stiff explicit method and a stiff one, with the rules to switch between them.

    Parameters
    ----------
    name : str
    nonstiff : ButcherTableau
        Explicit, with FSAL and seven stages of dopri5's shape (the stiffness
        test reads its sixth and seventh slopes).
    stiff : BDFMethod
    stability_boundary : float
        ``h |lambda|`` above which a step of ``nonstiff`` is stability-bound.
    stiff_steps, nonstiff_steps : int
        Stability-bound steps that switch to ``stiff``; steps below the
        boundary in a row that reset that count, and steps in a row in which
        ``nonstiff`` could step twice as far as ``stiff`` that switch back.
    citation : str
    """

    name: str
    nonstiff: ButcherTableau
    stiff: BDFMethod
    stability_boundary: float = 3.25
    stiff_steps: int = 15
    nonstiff_steps: int = 6
    citation: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.nonstiff, ButcherTableau) or not self.nonstiff.explicit:
            raise TypeError(f"AutoMethod {self.name!r}: nonstiff: expected an explicit ButcherTableau")
        if not (self.nonstiff.fsal and self.nonstiff.n_stages == 7 and self.nonstiff.adaptive):
            raise ValueError(f"AutoMethod {self.name!r}: nonstiff: expected an adaptive FSAL method of 7 stages")
        if not isinstance(self.stiff, BDFMethod):
            raise TypeError(f"AutoMethod {self.name!r}: stiff: expected a BDFMethod")

    # What a solve asks of its method (as of a ButcherTableau): implicit, as its stiff part (it takes jac).
    explicit = False
    implicit = True
    diagonally_implicit = False
    adaptive = True
    fsal = True
    steps_onto_outputs = False

    @property
    def order(self) -> int:
        """The non-stiff method's order."""
        return self.nonstiff.order

    @property
    def controller_order(self) -> int:
        """The non-stiff method's, which takes the first step."""
        return self.nonstiff.controller_order

    def __repr__(self) -> str:
        return f"AutoMethod({self.name!r}, {self.nonstiff.name} / {self.stiff.name})"


class AutoStepper(StepperBase):
    """The steps of an :class:`AutoMethod`: its two steppers, one active at a time.

    Parameters
    ----------
    method : AutoMethod
    nonstiff, stiff : Stepper
        The steppers of ``method.nonstiff`` and ``method.stiff`` for this solve.
    xp : array namespace
    norm : callable
        The solve's norm (only its RMS-like scale matters to the test).
    """

    fsal = True
    has_continuous_extension = True
    extra_evaluations = 0

    def __init__(self, method: AutoMethod, nonstiff: Any, stiff: BDFStepper, xp: Any) -> None:
        self.method = method
        self.tableau = method
        self.nonstiff, self.stiff = nonstiff, stiff
        self.active: Any = nonstiff
        self.xp = xp
        self.error_order = nonstiff.error_order
        self.default_controller = AutoController(self)
        a = method.nonstiff.a[5][:5]
        self.sixth_row = [float(v) for v in a]
        self.stiff_count = 0
        self.nonstiff_count = 0
        self.switch_pending = False
        self.switches: list[tuple[float, str]] = []  # (time, the method taking over)
        self._last: tuple[float, Any, Any, Any, float] | None = None  # the explicit step: t, y, y1, stages, h
        self._jacobian_norm: tuple[Any, float] | None = None

    @property
    def stiff_active(self) -> bool:
        """Whether ``bdf`` takes the steps now."""
        return self.active is self.stiff

    # -- delegation -----------------------------------------------------------

    def step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One step of the active method (switching first when the last accepted step said so).

        Parameters
        ----------
        fun, t, y, f0, h, t_end_eval
            As :meth:`ode_core.Stepper.step` takes them.

        Returns
        -------
        y1, stages, evaluations
        """
        if self.switch_pending:
            self.switch_pending = False
            if self.active is self.nonstiff:
                self.active = self.stiff
                self.stiff.restart()
                self.stiff.jacobian = None  # a fresh one at the switch
                self.switches.append((t, self.method.stiff.name))
            else:
                self.active = self.nonstiff
                self.switches.append((t, self.method.nonstiff.name))
            self.stiff_count = self.nonstiff_count = 0
        y1, stages, evaluations = self.active.step(fun, t, y, f0, h, t_end_eval)
        # The stiff method's, for the statistics.
        self.njev, self.nlu, self.nfev_jacobian = self.stiff.njev, self.stiff.nlu, self.stiff.nfev_jacobian
        if self.active is self.nonstiff:
            self._last = (t, y, y1, stages, h)
        return y1, stages, evaluations

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """The active method's.

        Parameters
        ----------
        h, y, y1, stages, atol, rtol, norm
            As :meth:`ode_core.Stepper.error_ratio` takes them.

        Returns
        -------
        float
        """
        return float(self.active.error_ratio(h, y, y1, stages, atol, rtol, norm))

    def initial_step(self, *arguments: Any) -> float:
        """The non-stiff method's first step.

        Parameters
        ----------
        *arguments
            As :meth:`ode_core.Stepper.initial_step` takes them.

        Returns
        -------
        float
        """
        return float(self.nonstiff.initial_step(*arguments))

    def adjust_step(self, h: float, h_next: float) -> float:
        """The active method's adjustment.

        Parameters
        ----------
        h, h_next : float

        Returns
        -------
        float
        """
        return float(self.active.adjust_step(h, h_next))

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """The interpolant of the method that took the step.

        Parameters
        ----------
        fun, t, y, y1, f1, stages, h, f0
            As :meth:`ode_core.Stepper.dense_coefficients` takes them.

        Returns
        -------
        array, shape (d, n)
        """
        return self.active.dense_coefficients(fun, t, y, y1, f1, stages, h, f0)

    def interpolate(self, *arguments: Any, **keywords: Any) -> tuple[Any, int]:
        """The active method's interpolation.

        Parameters
        ----------
        *arguments, **keywords
            As :meth:`ode_core.Stepper.interpolate` takes them.

        Returns
        -------
        values, evaluations
        """
        values, evaluations = self.active.interpolate(*arguments, **keywords)
        return values, int(evaluations)

    def restart(self) -> None:
        """Forget the stiff method's history (a jump of ``f`` or of the state)."""
        self.stiff.restart()

    def close(self) -> None:
        """Close both steppers."""
        self.nonstiff.close()
        self.stiff.close()

    # -- the detection ----------------------------------------------------------

    def after_explicit_step(self) -> None:
        """Hairer's test on the accepted explicit step: count stability-bound steps, maybe switch."""
        assert self._last is not None
        _, y, y1, stages, h = self._last
        # A decision, not differentiated.
        y, y1, stages = detached(y), detached(y1), detached(stages)
        xp = self.xp
        sixth_point = y
        for j, weight in enumerate(self.sixth_row):
            if weight != 0.0:
                sixth_point = sixth_point + (h * weight) * stages[j]
        slope_difference = stages[6] - stages[5]
        state_difference = y1 - sixth_point
        numerator = float(xp.sum(xp.abs(slope_difference) ** 2))
        denominator = float(xp.sum(xp.abs(state_difference) ** 2))
        if denominator > 0.0 and abs(h) * math.sqrt(numerator / denominator) > self.method.stability_boundary:
            self.nonstiff_count = 0
            self.stiff_count += 1
            if self.stiff_count >= self.method.stiff_steps:
                self.switch_pending = True
        else:
            self.nonstiff_count += 1
            if self.nonstiff_count >= self.method.nonstiff_steps:
                self.stiff_count = 0

    def after_stiff_step(self, h_next: float) -> float:
        """After an accepted ``bdf`` step: whether the explicit method could step stably twice as far.

        Returns the step the next method should take: ``h_next``, or the
        explicit method's stable bound when it takes over.
        """
        jacobian = self.stiff.jacobian
        if self._jacobian_norm is None or self._jacobian_norm[0] is not jacobian:
            value = jacobian if is_sparse(jacobian) else detached(jacobian)  # a decision, not differentiated
            self._jacobian_norm = (jacobian, _infinity_norm(self.xp, value))
        radius = self._jacobian_norm[1]
        stable = math.inf if radius == 0.0 else self.method.stability_boundary / radius
        if stable >= 2.0 * abs(h_next):
            self.nonstiff_count += 1
            if self.nonstiff_count >= self.method.nonstiff_steps:
                self.switch_pending = True
                return math.copysign(min(stable, abs(h_next)), h_next)
        else:
            self.nonstiff_count = 0
        return h_next


def _infinity_norm(xp: Any, matrix: Any) -> float:
    """``||J||_inf``, the largest absolute row sum (dense or scipy.sparse)."""
    if is_sparse(matrix):
        return float(np.max(np.asarray(abs(matrix).sum(axis=1)))) if matrix.shape[0] else 0.0
    return float(xp.max(xp.sum(xp.abs(matrix), axis=1)))


class AutoController:
    """The step size of an :class:`AutoStepper`: the active method's controller, and the switching tests.

    Parameters
    ----------
    stepper : AutoStepper
    """

    def __init__(self, stepper: AutoStepper) -> None:
        self.stepper = stepper
        self.explicit = IController()

    def init(self, error_order: int) -> ControllerState:
        """The explicit controller's start.

        Parameters
        ----------
        error_order : int

        Returns
        -------
        ControllerState
        """
        self.error_order = error_order
        return self.explicit.init(error_order)

    def adapt(self, h: float, error_ratio: float, state: ControllerState) -> tuple[bool, float, ControllerState]:
        """The active method's decision; after an accepted step, the switching test.

        Parameters
        ----------
        h : float
        error_ratio : float
        state : ControllerState

        Returns
        -------
        accepted : bool
        h_next : float
        state : ControllerState
        """
        stepper = self.stepper
        if stepper.stiff_active:
            accepted, h_next, state = stepper.stiff.default_controller.adapt(h, error_ratio, state)
            if accepted:
                h_next = stepper.after_stiff_step(h_next)
                if stepper.switch_pending:  # the explicit controller starts afresh
                    state = self.explicit.init(self.error_order)
            return accepted, h_next, state
        accepted, h_next, state = self.explicit.adapt(h, error_ratio, state)
        if accepted:
            stepper.after_explicit_step()
        return accepted, h_next, state
