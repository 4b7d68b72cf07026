"""Step-size controllers: separate objects, so the solve loop stays generic.

A controller sees the error ratio ``r`` of each attempted step (the norm of
the local error over the tolerance; ``r <= 1`` passes) and proposes the next
step. All controllers here are Soderlind's digital filters

    h_{n+1} = h_n * safety * r_n^{-beta1/k} * r_{n-1}^{-beta2/k} * r_{n-2}^{-beta3/k},

with ``k = q + 1`` for an error estimator of order ``q``, the factor clipped to
``[min_factor, max_factor]``. ``beta = (1, 0, 0)`` is the classical integral
(I) controller of scipy and torchdiffeq; ``(0.7, -0.4, 0)`` is Gustafsson's PI
controller used by Hairer's codes; three nonzero betas give a PID filter.
:class:`PredictiveController` (Gustafsson's predictive rule of stiff codes)
also looks at the ratio of the last two steps.

References
----------
G. Soderlind, Digital filters in adaptive time-stepping, ACM Trans. Math.
Softw. 29 (2003) 1-26. K. Gustafsson, Control theoretic techniques for
stepsize selection in explicit Runge-Kutta methods, ACM TOMS 17 (1991)
533-554.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from array_api_compat import device as device_of

__all__ = [
    "ControllerState",
    "IController",
    "PIController",
    "PIDController",
    "PredictiveController",
    "PredictiveState",
]


class ControllerState(NamedTuple):
    """What a controller carries from step to step.

    Attributes
    ----------
    exponents : tuple of float
        ``(beta1/k, beta2/k, beta3/k)`` for this method's error order.
    previous_ratio, older_ratio : float
        Error ratios of the last two accepted steps (1.0 when unknown).
    last_rejected : bool
        Whether the last attempted step was rejected; the next step may then
        not grow (Hairer, Norsett & Wanner, Solving ODEs I, II.4).
    """

    exponents: tuple[float, float, float]
    previous_ratio: float
    older_ratio: float
    last_rejected: bool


@dataclass(frozen=True)
class PIDController:
    """Soderlind's PID step-size filter.

    Parameters
    ----------
    beta1, beta2, beta3 : float
        Filter coefficients on the current, previous and older error ratio.
        The defaults ``(1, 0, 0)`` are the integral (I) controller.
    safety : float
        Factor below one applied to every proposal.
    min_factor, max_factor : float
        Bounds on ``h_next / h``.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0],
    ...                      controller=ode_core.PIDController(1/18, 1/9, 1/18))
    >>> sol.status
    <Status.SUCCESS: 'success'>
    """

    beta1: float = 1.0
    beta2: float = 0.0
    beta3: float = 0.0
    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self) -> None:
        _check_settings(self, ("beta1", "beta2", "beta3"))
        if self.beta1 <= 0:
            raise ValueError(f"beta1: expected a positive number, got {self.beta1}")

    def init(self, error_order: int) -> ControllerState:
        """Start a solve with an error estimator of order ``error_order``.

        Parameters
        ----------
        error_order : int
            Order ``q`` of the method's error estimate
            (:attr:`ButcherTableau.controller_order`); the exponents are
            ``beta / (q + 1)``.

        Returns
        -------
        ControllerState
            No previous ratios known yet (both 1.0), nothing rejected.
        """
        k = error_order + 1
        return ControllerState((self.beta1 / k, self.beta2 / k, self.beta3 / k), 1.0, 1.0, False)

    def adapt(self, h: float, error_ratio: float, state: ControllerState) -> tuple[bool, float, ControllerState]:
        """Accept or reject a step and propose the next step size.

        Parameters
        ----------
        h : float
            The step just attempted (signed).
        error_ratio : float
            Norm of the scaled local error; may be ``inf`` or ``nan``, which
            rejects with the smallest factor.
        state : ControllerState

        Returns
        -------
        accepted : bool
        h_next : float
            Signed proposal for the next step (or the retry).
        state : ControllerState
        """
        exponents, previous_ratio, older_ratio, last_rejected = state
        if not error_ratio <= 1.0:  # also catches nan
            factor = _rejection_factor(self, error_ratio, exponents[0])
            return False, h * factor, ControllerState(exponents, previous_ratio, older_ratio, True)
        if error_ratio == 0.0:
            factor = self.max_factor
        else:
            factor = self.safety * error_ratio ** -exponents[0]
            if exponents[1]:
                factor *= previous_ratio ** -exponents[1]
            if exponents[2]:
                factor *= older_ratio ** -exponents[2]
            factor = max(self.min_factor, min(factor, self.max_factor))
        if last_rejected:
            factor = min(factor, 1.0)
        # A zero ratio carries no information for the filter's memory.
        remembered = error_ratio if error_ratio > 0.0 else previous_ratio
        return True, h * factor, ControllerState(exponents, remembered, previous_ratio, False)

    def adapt_per_sample(
        self, xp: Any, h: Any, error_ratio: Any, state: ControllerState, active: Any = True
    ) -> tuple[Any, Any, Any]:
        """:meth:`adapt` for a batch of independent steps, on arrays: every decision a mask.

        The same rule, element by element, as array operations that read
        nothing on the host (the per-sample mode's control runs on the
        device; see ``ode_core._per_sample``).

        Parameters
        ----------
        xp : array namespace
        h : array, shape (B,)
            The steps just attempted (signed).
        error_ratio : array, shape (B,)
            Their error ratios; ``inf`` or ``nan`` rejects with the smallest factor.
        state : ControllerState
            With ``previous_ratio``, ``older_ratio`` and ``last_rejected``
            arrays of shape (B,) (:meth:`init_per_sample`).
        active : bool array, shape (B,), optional
            The samples that stepped: the others are not accepted, and keep
            their history.

        Returns
        -------
        accepted : bool array, shape (B,)
        h_next : array, shape (B,)
        state : ControllerState
        """
        exponents, previous_ratio, older_ratio, last_rejected = state
        accepted = (error_ratio <= 1.0) & active  # false for nan too
        # A zero ratio as the smallest normal one: its factor is clipped to the
        # largest; nan and inf stay, and take the smallest factor below.
        ratio = xp.clip(error_ratio, _SMALLEST_RATIO, None)
        factor = self.safety * ratio ** -exponents[0]
        history = bool(exponents[1] or exponents[2])
        if history:
            # A rejection looks at this ratio only; an acceptance at the history too.
            rejection = xp.clip(factor, self.min_factor, 1.0)
            if exponents[1]:
                factor = factor * previous_ratio ** -exponents[1]
            if exponents[2]:
                factor = factor * older_ratio ** -exponents[2]
        # Accepted: up to max_factor (1 after a rejection); rejected: up to 1.
        factor = xp.clip(factor, self.min_factor, self.max_factor)
        factor = xp.where(accepted & ~last_rejected, factor, xp.clip(factor, None, 1.0))
        if history:
            factor = xp.where(accepted, factor, rejection)
        factor = xp.where(ratio < math.inf, factor, self.min_factor)
        if history:
            remembered = xp.where(error_ratio > 0.0, error_ratio, previous_ratio)
            previous_ratio, older_ratio = (
                xp.where(accepted, remembered, previous_ratio),
                xp.where(accepted, previous_ratio, older_ratio),
            )
        return (
            accepted,
            h * factor,
            ControllerState(exponents, previous_ratio, older_ratio, xp.where(active, ~accepted, last_rejected)),
        )

    def init_per_sample(self, xp: Any, error_order: int, like: Any) -> ControllerState:
        """:meth:`init` for :meth:`adapt_per_sample`: the history as arrays shaped like ``like`` (B,).

        Parameters
        ----------
        xp : array namespace
        error_order : int
        like : array, shape (B,)
            Gives the shape, dtype and device of the ratios.

        Returns
        -------
        ControllerState
        """
        ones = xp.ones(like.shape, dtype=like.dtype, device=device_of(like))
        rejected = xp.zeros(like.shape, dtype=xp.bool, device=device_of(like))
        return self.init(error_order)._replace(previous_ratio=ones, older_ratio=ones, last_rejected=rejected)


@dataclass(frozen=True)
class IController(PIDController):
    """The integral (I) controller, ``beta = (1, 0, 0)``: scipy's and torchdiffeq's.

    The default of :func:`ode_core.solve`.

    Parameters
    ----------
    beta1, beta2, beta3 : float
        Defaults ``(1, 0, 0)``; see :class:`PIDController`.
    safety, min_factor, max_factor : float
        Defaults ``0.9``, ``0.2`` and ``10``; see :class:`PIDController`.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0], controller=ode_core.IController(safety=0.8))
    >>> sol.success
    True
    """


@dataclass(frozen=True)
class PIController(PIDController):
    """Gustafsson's PI controller, ``beta = (0.7, -0.4, 0)`` (Hairer's choice).

    Smoother step-size sequences than the I controller, often fewer rejected
    steps.

    Parameters
    ----------
    beta1, beta2, beta3 : float
        Defaults ``(0.7, -0.4, 0)``; see :class:`PIDController`.
    safety, min_factor, max_factor : float
        Defaults ``0.9``, ``0.2`` and ``10``; see :class:`PIDController`.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0], controller=ode_core.PIController())
    >>> sol.success
    True
    """

    beta1: float = 0.7
    beta2: float = -0.4


class PredictiveState(NamedTuple):
    """What :class:`PredictiveController` carries from step to step.

    Attributes
    ----------
    exponent : float
        ``1 / (q + 1)`` for this method's error order ``q``.
    previous_step : float
        The last accepted step (signed; ``nan`` before the first).
    previous_ratio : float
        Its error ratio (``nan`` before the first).
    last_rejected : bool
        Whether the last attempted step was rejected.
    """

    exponent: float
    previous_step: float
    previous_ratio: float
    last_rejected: bool


@dataclass(frozen=True)
class PredictiveController:
    """Gustafsson's predictive controller, the default of ``radau5``.

    After an accepted step ``h_n`` with error ratio ``r_n``, following one of
    ``h_{n-1}`` with ``r_{n-1}``, the next step is

        h_{n+1} = h_n * safety * r_n^{-1/k} * min(1, (h_n / h_{n-1}) (r_{n-1} / r_n)^{1/k}),

    ``k = q + 1``, the factor clipped to ``[min_factor, max_factor]``: the
    step grows only as far as the error's trend predicts it can, which on
    stiff problems avoids the accept-reject cycles of the I controller
    (Hairer & Wanner, *Solving ODEs II*, IV.8, eq. (8.25); the rule of
    RADAU5 and of scipy's ``Radau``). A rejected step shrinks by
    ``safety * r^{-1/k}``, and the step after a rejection may not grow.

    Parameters
    ----------
    safety : float
        Factor below one applied to every proposal.
    min_factor, max_factor : float
        Bounds on ``h_next / h``.

    Examples
    --------
    >>> import numpy as np, ode_core
    >>> sol = ode_core.solve(lambda t, y: -y, np.ones(2), [0.0, 1.0], controller=ode_core.PredictiveController())
    >>> sol.success
    True
    """

    safety: float = 0.9
    min_factor: float = 0.2
    max_factor: float = 10.0

    def __post_init__(self) -> None:
        _check_settings(self, ())

    def init(self, error_order: int) -> PredictiveState:
        """Start a solve with an error estimator of order ``error_order``.

        Parameters
        ----------
        error_order : int
            Order ``q`` of the method's error estimate.

        Returns
        -------
        PredictiveState
            No accepted step yet.
        """
        return PredictiveState(1.0 / (error_order + 1), math.nan, math.nan, False)

    def adapt(self, h: float, error_ratio: float, state: PredictiveState) -> tuple[bool, float, PredictiveState]:
        """Accept or reject a step and propose the next step size.

        Parameters
        ----------
        h : float
            The step just attempted (signed).
        error_ratio : float
            Norm of the scaled local error; ``inf`` or ``nan`` rejects with
            the smallest factor.
        state : PredictiveState

        Returns
        -------
        accepted : bool
        h_next : float
            Signed proposal for the next step (or the retry).
        state : PredictiveState
        """
        exponent, previous_step, previous_ratio, last_rejected = state
        if not error_ratio <= 1.0:  # also catches nan
            return False, h * _rejection_factor(self, error_ratio, exponent), state._replace(last_rejected=True)
        if error_ratio == 0.0:
            factor = self.max_factor
        else:
            factor = error_ratio**-exponent
            if previous_ratio > 0.0:  # false while nan: no history yet
                factor *= min(1.0, abs(h / previous_step) * (previous_ratio / error_ratio) ** exponent)
            factor = max(self.min_factor, min(self.safety * factor, self.max_factor))
        if last_rejected:
            factor = min(factor, 1.0)
        remembered = error_ratio if error_ratio > 0.0 else previous_ratio
        return True, h * factor, PredictiveState(exponent, h, remembered, False)


# The per-sample rule's stand-in for a zero error ratio: small enough that its
# factor reaches max_factor for every error order here, normal in float32.
_SMALLEST_RATIO = 1e-37


def _check_settings(controller: PIDController | PredictiveController, extra: tuple[str, ...]) -> None:
    """Every setting a finite number; ``safety`` in (0, 1], ``min_factor`` in
    (0, 1], ``max_factor >= 1``. Raises ``ValueError`` naming the setting."""
    for name in (*extra, "safety", "min_factor", "max_factor"):
        value = getattr(controller, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if not 0 < controller.safety <= 1:
        raise ValueError(f"safety: expected 0 < safety <= 1, got {controller.safety}")
    if not 0 < controller.min_factor <= 1:
        raise ValueError(f"min_factor: expected 0 < min_factor <= 1, got {controller.min_factor}")
    if controller.max_factor < 1:
        raise ValueError(f"max_factor: expected max_factor >= 1, got {controller.max_factor}")


def _rejection_factor(controller: PIDController | PredictiveController, error_ratio: float, exponent: float) -> float:
    """``h_retry / h`` after a rejected step: ``safety * r^(-exponent)`` in
    ``[min_factor, 1]``, and ``min_factor`` for an infinite or nan ratio."""
    if error_ratio < math.inf:  # false for nan too
        return max(controller.min_factor, min(controller.safety * float(error_ratio**-exponent), 1.0))
    return controller.min_factor
