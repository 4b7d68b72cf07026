"""The settings of one solve, checked once and then trusted by the loop."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._adams import AdamsMethod
from ._auto import AutoMethod
from ._bdf import BDFMethod
from ._tableau import ButcherTableau

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    """Everything :func:`ode_core.integrate` needs besides ``f``, ``y0`` and ``t``.

    Build it with :func:`ode_core.validation.check_settings`, which checks
    every value and names the argument that is wrong; the loop trusts what it
    is given. One object serves many solves (ode-adjoint's backward solves
    reuse theirs, changing ``first_step`` with :func:`dataclasses.replace`).

    Attributes
    ----------
    method : ButcherTableau, AdamsMethod, BDFMethod or AutoMethod
    rtol, atol : float, or array of shape (n,) in the state's namespace
        Relative and absolute tolerances on the flat state.
    step_size : float or None
        Fixed step size; ``None`` for adaptive steps, or, for a method
        without an error estimate, for steps from each landing time (output
        times, ``step_t``, ``jump_t``) to the next (torchdiffeq's grid).
    first_step : float or None
        First adaptive step; ``None`` for Hairer's heuristic.
    max_step, min_step : float
        Bounds on the adaptive step size.
    max_steps : int
        Attempted steps before :attr:`Status.MAX_STEPS_REACHED`.
    controller : controller or None
        Step-size controller; ``None`` for the method's default.
    norm : callable or None
        ``norm(scaled_error) -> float`` on the flat scaled error (n,);
        ``None`` for the RMS norm.
    step_t, jump_t : tuple of float
        Times to step onto; discontinuities of ``f`` in ``t``.
    dense_output : bool
        Keep every step's interpolant.
    jac : callable or None
        ``jac(t, y) -> (n, n)`` on the flat state (an array, or a scipy.sparse
        matrix for NumPy states), implicit methods only.
    linear_solver : {"direct", "krylov"}
        How the implicit methods solve their Newton systems: LU
        factorisations, or GMRES on Jacobian-vector products (no matrix).
    jvp : callable or None
        ``jvp(t, y, v) -> J v`` on flat arrays, for ``"krylov"``.
    columns : callable or None
        ``columns(t, Y) -> F``: ``f`` on the flat states in the columns of
        ``Y`` (n, k) at once (``solve(vectorized=True)``), for the
        finite-difference Jacobians.
    differentiable_solve : callable or None
        For ``"krylov"`` under autograd: how a Newton system's solve is
        differentiated (ode-adjoint's; see ``ode_core._krylov.KrylovSolver``).
    jac_sparsity : scipy.sparse matrix or None
        Where ``df/dy`` may be nonzero, for finite differences grouped by it
        when ``jac`` is None (NumPy states).
    progress : bool
        Show a progress meter over time (tqdm, when installed).
    one_sided_steps : bool
        Fixed steps only: evaluate ``f`` at each step's ends as one-sided
        limits from inside the step (the time one unit in the last place
        inside), as if ``f`` jumped at every step boundary; torchdiffeq's
        ``perturb``.
    accept_at_min_step : bool
        Adaptive steps only: a step of ``min_step`` is accepted whatever its
        error (torchdiffeq's ``min_step``), and counted in
        ``n_forced`` of :class:`ode_core.Stats`, where otherwise a step that would shrink
        below ``min_step`` ends the solve (:attr:`Status.STEP_SIZE_UNDERFLOW`).
    """

    method: ButcherTableau | AdamsMethod | BDFMethod | AutoMethod
    rtol: Any = 1e-6
    atol: Any = 1e-9
    step_size: float | None = None
    first_step: float | None = None
    max_step: float = math.inf
    min_step: float = 0.0
    max_steps: int = 100_000
    controller: Any = None
    norm: Callable[[Any], float] | None = None
    step_t: tuple[float, ...] = ()
    jump_t: tuple[float, ...] = ()
    dense_output: bool = False
    jac: Callable[[float, Any], Any] | None = None
    jac_sparsity: Any = None
    linear_solver: str = "direct"
    jvp: Callable[[float, Any, Any], Any] | None = None
    columns: Callable[[float, Any], Any] | None = None
    differentiable_solve: Callable[..., Any] | None = None
    progress: bool = False
    one_sided_steps: bool = False
    accept_at_min_step: bool = False

    @property
    def adaptive(self) -> bool:
        """Whether steps are chosen by error control (no ``step_size``, a method with an error estimate)."""
        return self.step_size is None and self.method.adaptive

    @property
    def gridded(self) -> bool:
        """Whether the steps go from landing time to landing time (no ``step_size``, no error estimate)."""
        return self.step_size is None and not self.method.adaptive
