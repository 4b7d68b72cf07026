"""What :func:`ode_adjoint.solve` returns: ode-core's result, differentiable, with backward statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import ode_core
from ode_core import Stats, Status

from ._engines import BackwardCounter

__all__ = ["Solution", "SolverError"]


class SolverError(RuntimeError):
    """The solve stopped before the last output time (``status``, ``message``).

    Raised by :func:`solve`, :func:`odeint` and :func:`odeint_adjoint`
    unless ``on_failure="return"``.

    Parameters
    ----------
    status : ode_core.Status
        Why the solve stopped; kept as the ``status`` attribute.
    message : str
        The solver's message, naming the time reached.

    Examples
    --------
    >>> import torch, ode_adjoint
    >>> try:
    ...     ode_adjoint.odeint(lambda t, y: y**2, torch.ones(1), torch.tensor([0.0, 2.0]))
    ... except ode_adjoint.SolverError as error:
    ...     print(error.status.value)
    step_size_underflow
    """

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(f"{status.value}: {message}")
        self.status = status


@dataclass(frozen=True)
class Solution(ode_core.Solution):
    """Result of :func:`ode_adjoint.solve`: :class:`ode_core.Solution`'s fields, differentiable.

    Attributes
    ----------
    ts : Tensor, shape (m,)
        Output times reached (float64, on the state's device).
    ys : Tensor of shape (m, *y0.shape), or a tuple of them
        The solution at ``ts``, differentiable by the chosen engine.
    status : ode_core.Status
    message : str
    stats : ode_core.Stats
        The forward solve's counters.
    dense : callable or None
        With ``dense_output=True``: ``dense(t)`` for a time or a sequence of
        times within the solved span, differentiable by the chosen engine
        (the adjoint and checkpointing engines run a backward pass of their
        own for it).
    t_final : float
        Time of the last accepted step (the event's time after a terminal event).
    y_final : Tensor or tuple of Tensor
        The state at ``t_final``, differentiable.
    t_events : list of Tensor, shape (k_i,), or None
        With ``events``: per event function, its occurrences' times
        (float64), differentiable through the implicit function theorem.
    y_events : list of Tensor (k_i, *y0.shape) (tuples for tuple states), or None
        The states at those times, differentiable.
    step_proposal : float
        See :class:`ode_core.Solution`.
    """

    backward_counter: BackwardCounter = field(default_factory=BackwardCounter, repr=False, compare=False)

    @property
    def backward_stats(self) -> Stats | None:
        """The backward passes' counters, ``None`` until ``backward()`` has run.

        The adjoint's backward solves (evaluations, steps, accepted and
        rejected); the checkpointing engine's replay (``n_steps`` steps
        reversed, ``nfev`` every evaluation, recomputations included).
        Summed over repeated ``backward()`` calls. Always ``None`` for
        backprop, whose backward is autograd's.
        """
        return self.backward_counter.stats()
