"""What the loop asks of a stepper, and how it finds one for an array library.

The loop (:func:`ode_core.integrate`) owns every decision of a solve: where
to step, what to accept, when to stop, what to report. A stepper owns the
arithmetic of one step of one method on one array library: the stages, the
error estimate and the interpolant. ode-core's steppers work on every array
API library; another package may provide a faster one for its library (as
ode-adjoint does for torch tensors) by declaring an entry point in the group
``ode_core.steppers`` named after the array library's module (``torch``)::

    [project.entry-points."ode_core.steppers"]
    torch = "ode_adjoint._stepper:provide_stepper"

The entry point is a callable ``provide(tableau, y0, f) -> Stepper | None``,
consulted for explicit methods on arrays of that library only (so a NumPy
solve imports nothing), given the flat initial state and the flat function
the loop will call; ``None`` declines and ode-core's own stepper is used.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from array_api_compat import is_numpy_namespace

from ._dense import evaluate_polynomial
from ._initial_step import select_initial_step
from ._norms import rms_norm
from ._tableau import ButcherTableau

__all__ = ["STEPPER_ENTRY_POINTS", "Stepper", "StepperBase", "register_stepper", "stepper_provider"]

STEPPER_ENTRY_POINTS = "ode_core.steppers"
"""Entry-point group of stepper providers, one per array library."""

RightHandSide = Callable[[float, Any], Any]


@runtime_checkable
class Stepper(Protocol):
    """One method's steps on one array library, for the loop to drive.

    States are flat 1-D arrays of size ``n``; ``fun(t, y)`` is the flat
    right-hand side. A stepper may keep state between steps (an implicit
    method keeps its Jacobian; ode-adjoint's torch stepper its stage buffer),
    so the loop makes one per solve and calls :meth:`close` at the end. A
    stepper whose steps use earlier ones (an Adams method's slopes) may offer
    ``restart()``: the loop calls it where ``f`` or the state jumps.

    Attributes
    ----------
    error_order : int
        Order ``q`` of the error estimate, for the controller's exponent.
    fsal : bool
        Whether ``stages[-1]`` of a step is ``f(t + h, y1)``.
    has_continuous_extension : bool
        Whether the interpolant needs no ``f(t + h, y1)`` (else the loop
        evaluates it for the cubic Hermite interpolant).
    extra_evaluations : int
        Evaluations of ``f`` that :meth:`dense_coefficients` costs.
    njev, nlu : int
        Jacobian evaluations and matrix factorisations so far (implicit
        methods; 0 otherwise).
    nfev_jacobian : int, optional
        Evaluations of ``f`` spent on finite-difference Jacobians so far
        (read with a default of 0).
    """

    @property
    def error_order(self) -> int:
        """Order ``q`` of the error estimate."""
        ...

    @property
    def fsal(self) -> bool:
        """Whether ``stages[-1]`` is ``f(t + h, y1)``."""
        ...

    @property
    def has_continuous_extension(self) -> bool:
        """Whether the interpolant needs no ``f(t + h, y1)``."""
        ...

    @property
    def extra_evaluations(self) -> int:
        """Evaluations of ``f`` that :meth:`dense_coefficients` costs."""
        ...

    @property
    def njev(self) -> int:
        """Jacobian evaluations so far."""
        ...

    @property
    def nlu(self) -> int:
        """Matrix factorisations so far."""
        ...

    def step(
        self, fun: RightHandSide, t: float, y: Any, f0: Any, h: float, t_end_eval: float | None = None
    ) -> tuple[Any, Any, int]:
        """One step of size ``h`` from ``(t, y)`` with ``f0 = f(t, y)``.

        Parameters
        ----------
        fun : callable
            The flat right-hand side.
        t : float
        y, f0 : array, shape (n,)
        h : float
            Signed step size.
        t_end_eval : float, optional
            Time at which to evaluate stages at the step's end instead of
            ``t + h`` (the one-sided limit before a jump of ``f``).

        Returns
        -------
        y1 : array, shape (n,), or None
            ``None`` when the step could not be taken (an implicit method's
            Newton iteration failed): the loop retries smaller.
        stages : array
            What :meth:`error_ratio` and the interpolant need.
        evaluations : int
            Calls of ``fun`` made.
        """
        ...

    def error_ratio(
        self, h: float, y: Any, y1: Any, stages: Any, atol: Any, rtol: Any, norm: Callable[[Any], float] | None
    ) -> float:
        """Norm of the local error over ``atol + rtol * max(|y|, |y1|)``.

        Parameters
        ----------
        h : float
        y, y1 : array, shape (n,)
        stages : array
            From :meth:`step`.
        atol, rtol : float or array, shape (n,)
        norm : callable or None
            On the scaled error; ``None`` for the RMS norm.

        Returns
        -------
        float
            ``<= 1`` passes; ``inf`` or ``nan`` when the step is not finite.
        """
        ...

    def initial_step(
        self,
        fun: RightHandSide,
        t0: float,
        y0: Any,
        f0: Any,
        direction: float,
        rtol: Any,
        atol: Any,
        norm: Callable[[Any], float] | None,
        max_step: float,
        span: float,
    ) -> float:
        """The unsigned first step when none is given (Hairer's heuristic,
        :func:`ode_core.select_initial_step`: one evaluation of ``fun``).

        Parameters
        ----------
        fun, t0, y0, f0, direction, rtol, atol, max_step, span
            As :func:`ode_core.select_initial_step` takes them.
        norm : callable or None
            ``None`` for the RMS norm.

        Returns
        -------
        float
        """
        ...

    def adjust_step(self, h: float, h_next: float) -> float:
        """The next step after an accepted ``h`` given the controller's ``h_next``.

        Parameters
        ----------
        h, h_next : float

        Returns
        -------
        float
        """
        ...

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """Coefficients ``C`` (d, n) of the step's interpolant
        ``y(t + theta h) = y + sum_j theta^(j+1) C[j]``.

        Parameters
        ----------
        fun : callable
        t : float
        y, y1 : array, shape (n,)
        f1 : array, shape (n,), or None
            ``f(t + h, y1)`` when the loop has it.
        stages : array
        h : float
        f0 : array, shape (n,), optional

        Returns
        -------
        array, shape (d, n)
        """
        ...

    def interpolate(
        self,
        fun: RightHandSide,
        t: float,
        y: Any,
        y1: Any,
        f1: Any,
        stages: Any,
        h: float,
        thetas: list[float],
        *,
        f0: Any = None,
        coefficients: Any = None,
    ) -> tuple[Any, int]:
        """The interpolant at ``t + theta h`` for each theta.

        Parameters
        ----------
        fun, t, y, y1, f1, stages, h
            As for :meth:`dense_coefficients`.
        thetas : list of float
        f0 : array, shape (n,), optional
            ``f(t, y)``, for interpolants that use it.
        coefficients : array, optional
            From :meth:`dense_coefficients`, when the loop made them.

        Returns
        -------
        values : array, shape (len(thetas), n)
        evaluations : int
            Calls of ``fun`` made.
        """
        ...

    def close(self) -> None:
        """End of the solve: release what the stepper holds."""
        ...


class StepperBase:
    """Defaults of the :class:`Stepper` protocol that most steppers share.

    The interpolant is evaluated from :meth:`dense_coefficients`; a step
    keeps its size as the controller proposes it; nothing to release.
    Subclasses set ``xp`` (the array namespace) and implement ``step``,
    ``error_ratio`` and ``dense_coefficients``.
    """

    xp: Any
    error_order: int
    extra_evaluations = 0
    njev = 0
    nlu = 0
    nfev_jacobian = 0

    def dense_coefficients(
        self, fun: RightHandSide, t: float, y: Any, y1: Any, f1: Any, stages: Any, h: float, f0: Any = None
    ) -> Any:
        """The step's interpolant; see :meth:`Stepper.dense_coefficients`.

        Parameters
        ----------
        fun, t, y, y1, f1, stages, h, f0
            As :meth:`Stepper.dense_coefficients` takes them.

        Returns
        -------
        array, shape (d, n)
        """
        raise NotImplementedError

    def initial_step(
        self,
        fun: RightHandSide,
        t0: float,
        y0: Any,
        f0: Any,
        direction: float,
        rtol: Any,
        atol: Any,
        norm: Callable[[Any], float] | None,
        max_step: float,
        span: float,
    ) -> float:
        """Hairer's heuristic, :func:`ode_core.select_initial_step`.

        Parameters
        ----------
        fun, t0, y0, f0, direction, rtol, atol, max_step, span
            As :func:`ode_core.select_initial_step` takes them.
        norm : callable or None
            ``None`` for the RMS norm.

        Returns
        -------
        float
        """
        return select_initial_step(
            fun, t0, y0, f0, direction, self.error_order, rtol, atol, norm or rms_norm, max_step, span
        )

    def adjust_step(self, h: float, h_next: float) -> float:
        """The controller's proposal as it is.

        Parameters
        ----------
        h, h_next : float

        Returns
        -------
        float
            ``h_next``.
        """
        return h_next

    def interpolate(
        self,
        fun: RightHandSide,
        t: float,
        y: Any,
        y1: Any,
        f1: Any,
        stages: Any,
        h: float,
        thetas: list[float],
        *,
        f0: Any = None,
        coefficients: Any = None,
    ) -> tuple[Any, int]:
        """The step's polynomial at ``thetas``, from :meth:`dense_coefficients`.

        Parameters
        ----------
        fun, t, y, y1, f1, stages, h, thetas, f0, coefficients
            As :meth:`Stepper.interpolate` takes them.

        Returns
        -------
        values : array, shape (len(thetas), n)
        evaluations : int
        """
        evaluations = 0
        if coefficients is None:
            coefficients = self.dense_coefficients(fun, t, y, y1, f1, stages, h, f0)
            evaluations = self.extra_evaluations
        return evaluate_polynomial(self.xp, y, coefficients, thetas), evaluations

    def close(self) -> None:
        """Nothing to release."""


_PROVIDERS: dict[str, Callable[..., Any] | None] = {}


def register_stepper(library: str, provider: Callable[..., Any] | None) -> None:
    """Use ``provider`` for explicit methods on arrays of ``library`` (``"torch"``).

    What an entry point of :data:`STEPPER_ENTRY_POINTS` declares, in code;
    ``None`` goes back to ode-core's own steppers.

    Parameters
    ----------
    library : str
        The array library's module name, the last part of its array API
        namespace's name.
    provider : callable or None
        ``provide(tableau, y0, fun) -> Stepper | None``.
    """
    if not isinstance(library, str) or not library:
        raise TypeError(f"library: expected a module name such as 'torch', got {library!r}")
    if provider is not None and not callable(provider):
        raise TypeError(f"provider: expected a callable or None, got {type(provider).__name__}")
    _PROVIDERS[library] = provider
    _BY_NAMESPACE.clear()


def stepper_provider(xp: Any) -> Callable[..., Any] | None:
    """The registered stepper provider for the array library of ``xp``, if any.

    Looked up once per library among the entry points of
    :data:`STEPPER_ENTRY_POINTS`; never for NumPy.

    Parameters
    ----------
    xp : array namespace

    Returns
    -------
    callable or None
        ``provide(tableau, y0, fun) -> Stepper | None``.
    """
    if is_numpy_namespace(xp):
        return None
    library = xp.__name__.rsplit(".", 1)[-1]
    if library not in _PROVIDERS:
        found = [ep for ep in importlib.metadata.entry_points(group=STEPPER_ENTRY_POINTS) if ep.name == library]
        _PROVIDERS[library] = found[0].load() if found else None
    return _PROVIDERS[library]


def _cached_provider(xp: Any) -> Callable[..., Any] | None:
    """:func:`stepper_provider` by namespace object: one dict lookup per solve."""
    try:
        return _BY_NAMESPACE[xp]
    except KeyError:
        provider = _BY_NAMESPACE[xp] = stepper_provider(xp)
        return provider


_BY_NAMESPACE: dict[Any, Callable[..., Any] | None] = {}


def provided_stepper(tableau: ButcherTableau, xp: Any, y0: Any, fun: RightHandSide) -> Stepper | None:
    """A registered provider's stepper for an explicit ``tableau``, or None."""
    provider = _cached_provider(xp) if tableau.explicit else None
    return None if provider is None else provider(tableau, y0, fun)
