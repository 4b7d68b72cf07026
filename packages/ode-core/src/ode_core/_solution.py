"""What a solve returns: outputs, a status instead of exceptions, statistics."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from ._dense import DenseOutput

__all__ = ["Solution", "Stats", "Status"]


class Status(str, enum.Enum):
    """How a solve ended. Only ``SUCCESS`` reached the last output time."""

    SUCCESS = "success"
    """Every output time was reached."""
    MAX_STEPS_REACHED = "max_steps_reached"
    """``max_steps`` steps were attempted before the end."""
    STEP_SIZE_UNDERFLOW = "step_size_underflow"
    """The step size fell below ``min_step`` (or round-off level)."""
    NON_FINITE = "non_finite"
    """``f`` or the state became inf or nan and smaller steps did not help."""
    EVENT = "event"
    """A terminal event stopped the solve (``t_final`` is its time)."""
    NONLINEAR_SOLVE_FAILED = "nonlinear_solve_failed"
    """An implicit method's Newton iteration failed in a fixed step."""


@dataclass(frozen=True)
class Stats:
    """Counters of one solve.

    Attributes
    ----------
    nfev : int
        Evaluations of ``f``, the initial-step heuristic's included. In the
        per-sample mode this and the step counts are arrays of shape
        (*batch,): each sample's own (the evaluations of the batch's ``f``
        calls made while it was running).
    n_steps : int
        Attempted steps, ``n_accepted + n_rejected``.
    n_accepted, n_rejected : int
    njev : int
        Jacobian evaluations (implicit methods; finite-difference ones
        included, their evaluations of ``f`` counted in ``nfev``).
    nlu : int
        LU factorisations of the Newton iteration matrices (``I - h gamma J``
        and Radau IIA's pair; sparse LU for a sparse Jacobian).
    nfev_jacobian : int
        Of ``nfev``, the evaluations spent on finite-difference Jacobians
        (implicit methods without ``jac``; scipy's ``nfev`` leaves these out,
        so ``nfev - nfev_jacobian`` is what scipy reports).
    n_forced : int
        Accepted steps whose error was above the tolerance, taken at
        ``min_step`` because the settings say so
        (``accept_at_min_step`` of :class:`ode_core.Settings`).
    """

    nfev: int
    n_steps: int
    n_accepted: int
    n_rejected: int
    njev: int = 0
    nlu: int = 0
    n_forced: int = 0
    nfev_jacobian: int = 0


@dataclass(frozen=True)
class Solution:
    """Result of :func:`ode_core.solve` and :func:`ode_core.integrate`.

    Attributes
    ----------
    ts : array, shape (m,)
        Output times reached (all of ``t`` on success, a prefix otherwise),
        float64, in the state's namespace and device.
    ys : array, shape (m, *y0.shape)
        The solution at ``ts``.
    status : Status
    message : str
        Human-readable reason, naming the time reached on failure.
    stats : Stats
    dense : DenseOutput or None
        Continuous solution over everything solved (``None`` when
        ``dense_output=False``).
    t_final : float
        Time of the last accepted step (the end time on success); an array
        of one per sample in the per-sample mode.
    y_final : array, shape y0.shape
        State at ``t_final``.
    t_events : list of arrays, shape (k_i,), or None
        Per event function, the times of its occurrences (``None`` without
        ``events``).
    y_events : list of arrays, shape (k_i, *y0.shape), or None
        The states at those times.
    step_proposal : float
        The (unsigned) size the solver chose for its last attempted step,
        before shortening it to land on an output, ``step_t`` or ``jump_t``
        time: a good ``first_step`` for a solve that continues from
        ``t_final``. ``nan`` for a solve that took no step.
    sample_status : tuple of Status, or None
        The per-sample mode's (``batch_dims``): each sample's own status, in
        C order over the batch dimensions. There ``ts`` is (*batch, m),
        ``ys`` (m, *batch, *state) with NaN at the outputs a failed sample
        did not reach, ``t_final`` (*batch,) and the statistics arrays of
        shape (*batch,); ``None`` in a joint solve.
    """

    ts: Any
    ys: Any
    status: Status
    message: str
    stats: Stats
    dense: DenseOutput | None
    t_final: Any
    y_final: Any
    t_events: list[Any] | None = None
    y_events: list[Any] | None = None
    step_proposal: float = math.nan
    sample_status: tuple[Status, ...] | None = None

    @property
    def success(self) -> bool:
        """Whether the solve ended as asked: all outputs, or a terminal event."""
        return self.status in (Status.SUCCESS, Status.EVENT)
