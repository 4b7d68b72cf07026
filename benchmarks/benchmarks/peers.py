"""The peers on our benchmark problems, in the same run: scipy, torchdiffeq 0.2.5 and torchode 1.0.1.

:class:`ScipyExplicit` and :class:`ScipyStiff` mirror :mod:`.solvers` and
:mod:`.stiff` (RK23/RK45/DOP853 for bosh3/dopri5/dopri8, Radau and BDF for
the implicit methods); :class:`TorchPeers` mirrors :class:`.gradients.Engines`.
:class:`Ratios` measures ours against a peer inside one process, the two
interleaved round after round (so both see the same machine load), and
tracks ``our time / their time`` and ``our evaluations / theirs``: below 1
means we are ahead, and one graph per comparison shows it across commits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ode_adjoint
import ode_core
import torch
import torchdiffeq
from scipy.integrate import solve_ivp

from ._common import CountingRhs, round_robin_times
from ._fields import HETEROGENEOUS_TOLERANCES, MLPField, heterogeneous_batch, torchode_dopri5
from ._problems import (
    EXPLICIT_PROBLEMS,
    STIFF_PROBLEMS,
    error_in_tolerance_units,
    max_abs_error,
    reference_solution,
    stiff_reference,
)
from .solvers import ATOL_OVER_RTOL, require_method
from .solvers import PROBLEMS as EXPLICIT_KEYS
from .solvers import RTOLS as EXPLICIT_RTOLS
from .stiff import JACOBIANS
from .stiff import RTOLS as STIFF_RTOLS

torch.set_num_threads(1)

MLP_RTOL, MLP_ATOL = 1e-6, 1e-8


def _scipy_solve(problem: Any, f: Any, method: str, rtol: float, atol: float, jac: Any = None) -> Any:
    times = problem.times
    options = {} if jac is None else {"jac": jac}  # the explicit methods warn about any jac, even None
    solution = solve_ivp(
        f, (float(times[0]), float(times[-1])), problem.y0, method=method, t_eval=times, rtol=rtol, atol=atol, **options
    )
    if not solution.success:
        raise RuntimeError(f"scipy {method} on {problem.name}: {solution.message}")
    return solution


class ScipyExplicit:
    """``scipy.integrate.solve_ivp`` on the problems of :class:`.solvers.ExplicitMethods`."""

    params = (EXPLICIT_KEYS, ["RK23", "RK45", "DOP853"], EXPLICIT_RTOLS)
    param_names = ("problem", "method", "rtol")
    timeout = 300.0

    def setup_cache(self) -> dict[str, np.ndarray]:
        return {key: reference_solution(EXPLICIT_PROBLEMS[key]()) for key in EXPLICIT_KEYS}

    def setup(self, references: dict[str, np.ndarray], problem_key: str, method: str, rtol: float) -> None:
        self.problem = EXPLICIT_PROBLEMS[problem_key]()
        self.reference = references[problem_key]
        self.method = method
        self.rtol = rtol

    def _solve(self) -> Any:
        return _scipy_solve(self.problem, self.problem.f, self.method, self.rtol, self.rtol * ATOL_OVER_RTOL)

    def time_solve_ivp(self, references: Any, problem_key: str, method: str, rtol: float) -> None:
        self._solve()

    def track_nfev(self, references: Any, problem_key: str, method: str, rtol: float) -> int:
        return int(self._solve().nfev)

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_error(self, references: Any, problem_key: str, method: str, rtol: float) -> float:
        return max_abs_error(np.asarray(self._solve().y).T, self.reference)

    track_error.unit = "max abs error"  # type: ignore[attr-defined]


class ScipyStiff:
    """scipy's ``Radau`` and ``BDF`` on the cases of :class:`.stiff.ImplicitMethods`."""

    params = (list(STIFF_PROBLEMS), ["Radau", "BDF"], STIFF_RTOLS, JACOBIANS)
    param_names = ("problem", "method", "rtol", "jacobian")
    timeout = 300.0

    def setup_cache(self) -> dict[str, np.ndarray]:
        return {key: stiff_reference(problem) for key, problem in STIFF_PROBLEMS.items()}

    def setup(
        self, references: dict[str, np.ndarray], problem_key: str, method: str, rtol: float, jacobian: str
    ) -> None:
        self.problem = STIFF_PROBLEMS[problem_key]
        self.reference = references[problem_key]
        self.method = method
        self.rtol = rtol
        self.atol = self.problem.atol_for(rtol)
        self.jac = self.problem.jac if jacobian == "analytic" else None

    def _solve(self, f: Any = None) -> Any:
        f = self.problem.f if f is None else f
        return _scipy_solve(self.problem, f, self.method, self.rtol, self.atol, self.jac)

    def time_solve_ivp(self, references: Any, *params: Any) -> None:
        self._solve()

    def track_nfev(self, references: Any, *params: Any) -> int:
        """Calls of ``f`` counted by a wrapper: scipy's own ``nfev`` leaves out its finite-difference Jacobian's."""
        counter = CountingRhs(self.problem.f)
        self._solve(counter)
        return counter.calls

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_njev(self, references: Any, *params: Any) -> int:
        return int(self._solve().njev)

    track_njev.unit = "Jacobians"  # type: ignore[attr-defined]

    def track_nlu(self, references: Any, *params: Any) -> int:
        return int(self._solve().nlu)

    track_nlu.unit = "factorisations"  # type: ignore[attr-defined]

    def track_error(self, references: Any, *params: Any) -> float:
        ys = np.asarray(self._solve().y).T
        return error_in_tolerance_units(ys, self.reference, self.rtol, self.atol)

    track_error.unit = "error / tolerance"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- torch peers


def _mlp_problem() -> tuple[MLPField, torch.Tensor, torch.Tensor]:
    """The workload of :class:`.gradients.Engines`: the MLP, ``y0`` (16, 2) and 11 output times."""
    torch.manual_seed(0)
    return MLPField(), torch.randn(16, 2), torch.linspace(0.0, 10.0, 11)


def _peer_solve(
    peer: str, func: MLPField, y0: torch.Tensor, t: torch.Tensor, method: str = "dopri5"
) -> Callable[[], torch.Tensor]:
    """A call that solves the MLP problem with the peer (dopri5; torchdiffeq also ``method``) and returns
    the outputs, time first."""
    if peer == "torchdiffeq":
        return lambda: torchdiffeq.odeint(func, y0, t, rtol=MLP_RTOL, atol=MLP_ATOL, method=method)
    if peer == "torchdiffeq adjoint":
        return lambda: torchdiffeq.odeint_adjoint(func, y0, t, rtol=MLP_RTOL, atol=MLP_ATOL, method="dopri5")
    if peer == "torchode":
        solver, problem = torchode_dopri5(func, y0, t, MLP_RTOL, MLP_ATOL)
        return lambda: solver.solve(problem).ys.transpose(0, 1)
    raise ValueError(f"peer: unknown peer {peer!r}")


class TorchPeers:
    """torchdiffeq's ``odeint`` (backprop through the solver) and ``odeint_adjoint``, and torchode (backprop
    through the solver), on the MLP of :class:`.gradients.Engines`."""

    params = (["torchdiffeq", "torchdiffeq adjoint", "torchode"],)
    param_names = ("peer",)

    def setup(self, peer: str) -> None:
        self.func, y0, t = _mlp_problem()
        self.solve = _peer_solve(peer, self.func, y0, t)
        self._forward_backward()  # warm-up, as in gradients.Engines.setup

    def _forward_backward(self) -> tuple[int, int]:
        """Forward and backward evaluations of one forward + backward."""
        self.func.zero_grad(set_to_none=True)
        before = self.func.calls
        ys = self.solve()
        forward = self.func.calls - before
        ys.pow(2).sum().backward()
        return forward, self.func.calls - before - forward

    def time_forward(self, peer: str) -> None:
        self.solve()

    def time_forward_backward(self, peer: str) -> None:
        self._forward_backward()

    def track_nfev(self, peer: str) -> int:
        return self._forward_backward()[0]

    track_nfev.unit = "evaluations"  # type: ignore[attr-defined]

    def track_backward_nfev(self, peer: str) -> int:
        return self._forward_backward()[1]

    track_backward_nfev.unit = "evaluations"  # type: ignore[attr-defined]


class HeterogeneousBatch:
    """A batch of independent van der Pol oscillators (``mu`` from 0.2 to 5, as
    ``bench_heterogeneous.py``): ode-adjoint's per-sample mode (eager, and its
    step compiled), its joint solve, and torchode's per-sample steps;
    evaluations counted per sample."""

    params = (
        ["ode_adjoint per sample", "ode_adjoint per sample compiled", "ode_adjoint joint", "torchode per sample"],
    )
    param_names = ("implementation",)
    timeout = 300  # the compiled variant compiles in setup (seconds on the CPU)

    def setup(self, implementation: str) -> None:
        self.func, y0, t = heterogeneous_batch()
        rtol, atol = HETEROGENEOUS_TOLERANCES
        if implementation == "torchode per sample":
            solver, problem = torchode_dopri5(self.func, y0, t, rtol, atol)

            def torchode_per_sample() -> float:
                stats = solver.solve(problem).stats
                return float((6 * stats["n_steps"] + stats["n_initialized"]).double().mean())

            self.solve = torchode_per_sample
        elif implementation.startswith("ode_adjoint per sample"):
            pure, _, _ = heterogeneous_batch(count=False)  # no Python side effects, for torch.compile
            compiled = implementation.endswith("compiled")

            def per_sample() -> float:
                solution = ode_adjoint.solve(pure, y0, t, batch_dims=1, rtol=rtol, atol=atol, compile=compiled)
                return float(solution.stats.nfev.double().mean())

            with torch.no_grad():
                per_sample()  # compiles once, outside the timings
            self.solve = per_sample
        else:

            def joint() -> float:
                before = self.func.calls
                ode_adjoint.odeint(self.func, y0, t, rtol=rtol, atol=atol)
                return float(self.func.calls - before)

            self.solve = joint

    def time_solve(self, implementation: str) -> None:
        with torch.no_grad():
            self.solve()

    def track_evaluations_per_sample(self, implementation: str) -> float:
        with torch.no_grad():
            return self.solve()

    track_evaluations_per_sample.unit = "evaluations"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- ratios


@dataclass(frozen=True)
class Side:
    """One side of a comparison: ``run()`` for timing, ``evaluations()`` runs once more and counts calls of f."""

    run: Callable[[], Any]
    evaluations: Callable[[], int]


def _numpy_side(solve: Callable[[Any], Any], f: Any) -> Side:
    def evaluations() -> int:
        counter = CountingRhs(f)
        solve(counter)
        return counter.calls

    return Side(lambda: solve(f), evaluations)


def _explicit_pair(problem_key: str, method: str, scipy_method: str, rtol: float) -> tuple[Side, Side]:
    require_method(method)
    problem = EXPLICIT_PROBLEMS[problem_key]()
    atol = rtol * ATOL_OVER_RTOL

    def ours(f: Any) -> Any:
        return ode_core.solve(f, problem.y0, problem.times, method=method, rtol=rtol, atol=atol, dense_output=False)

    def theirs(f: Any) -> Any:
        return _scipy_solve(problem, f, scipy_method, rtol, atol)

    return _numpy_side(ours, problem.f), _numpy_side(theirs, problem.f)


def _stiff_pair(problem_key: str, method: str, scipy_method: str, rtol: float) -> tuple[Side, Side]:
    require_method(method)
    problem = STIFF_PROBLEMS[problem_key]
    atol = problem.atol_for(rtol)

    def ours(f: Any) -> Any:
        return ode_core.solve(f, problem.y0, problem.times, method=method, rtol=rtol, atol=atol, dense_output=False)

    def theirs(f: Any) -> Any:
        return _scipy_solve(problem, f, scipy_method, rtol, atol)

    return _numpy_side(ours, problem.f), _numpy_side(theirs, problem.f)


def _torch_side(func: MLPField, solve: Callable[[], torch.Tensor], backward: bool) -> Side:
    def run() -> None:
        if backward:
            func.zero_grad(set_to_none=True)
            solve().pow(2).sum().backward()
        else:
            with torch.no_grad():
                solve()

    def evaluations() -> int:
        before = func.calls
        run()
        return func.calls - before

    return Side(run, evaluations)


def _mlp_pair(
    gradient: str | None, peer: str, method: str = "dopri5", peer_method: str = "dopri5"
) -> tuple[Side, Side]:
    """Ours with ``gradient`` (None: forward only, under no_grad) against the peer on the MLP problem."""
    require_method(method)
    func, y0, t = _mlp_problem()

    def ours() -> torch.Tensor:
        solution = ode_adjoint.solve(
            func, y0, t, rtol=MLP_RTOL, atol=MLP_ATOL, method=method, gradient=gradient or "backprop"
        )
        return solution.ys

    backward = gradient is not None
    peer_solve = _peer_solve(peer, func, y0, t, peer_method)
    return _torch_side(func, ours, backward), _torch_side(func, peer_solve, backward)


def _heterogeneous_pair() -> tuple[Side, Side]:
    """ode-adjoint's per-sample mode (eager) against torchode on the heterogeneous van der Pol batch."""
    counted, y0, t = heterogeneous_batch()
    pure, _, _ = heterogeneous_batch(count=False)
    rtol, atol = HETEROGENEOUS_TOLERANCES
    solver, problem = torchode_dopri5(counted, y0, t, rtol, atol)

    def ours() -> Any:
        with torch.no_grad():
            return ode_adjoint.solve(pure, y0, t, batch_dims=1, rtol=rtol, atol=atol)

    def theirs() -> Any:
        with torch.no_grad():
            return solver.solve(problem)

    def our_evaluations() -> int:
        return int(ours().stats.nfev.sum())

    def their_evaluations() -> int:
        stats = theirs().stats
        return int((6 * stats["n_steps"] + stats["n_initialized"]).sum())

    return Side(ours, our_evaluations), Side(theirs, their_evaluations)


COMPARISONS: dict[str, Callable[[], tuple[Side, Side]]] = {
    "heterogeneous van der Pol: per sample / torchode": _heterogeneous_pair,
    "van_der_pol rtol=1e-6: dopri5 / RK45": lambda: _explicit_pair("van_der_pol", "dopri5", "RK45", 1e-6),
    "arenstorf rtol=1e-9: dopri8 / DOP853": lambda: _explicit_pair("arenstorf", "dopri8", "DOP853", 1e-9),
    "fisher_kpp rtol=1e-6: dopri5 / RK45": lambda: _explicit_pair("fisher_kpp", "dopri5", "RK45", 1e-6),
    "robertson rtol=1e-6: kvaerno5 / Radau": lambda: _stiff_pair("robertson", "kvaerno5", "Radau", 1e-6),
    "van_der_pol_1000 rtol=1e-6: kvaerno5 / BDF": lambda: _stiff_pair("van_der_pol_1000", "kvaerno5", "BDF", 1e-6),
    "van_der_pol_1000 rtol=1e-6: radau5 / Radau": lambda: _stiff_pair("van_der_pol_1000", "radau5", "Radau", 1e-6),
    "MLP forward: dopri5 / torchdiffeq": lambda: _mlp_pair(None, "torchdiffeq"),
    "MLP forward: dopri5 / torchode": lambda: _mlp_pair(None, "torchode"),
    # The same method: torchdiffeq's dopri8 is RK8(7)13M, ode-core's dopri87.
    "MLP forward: dopri87 / torchdiffeq dopri8": lambda: _mlp_pair(None, "torchdiffeq", "dopri87", "dopri8"),
    "MLP backprop / torchdiffeq odeint": lambda: _mlp_pair("backprop", "torchdiffeq"),
    "MLP adjoint / torchdiffeq odeint_adjoint": lambda: _mlp_pair("adjoint", "torchdiffeq adjoint"),
    "MLP backprop / torchode": lambda: _mlp_pair("backprop", "torchode"),
}


class Ratios:
    """Ours over a peer, measured in one process: time (best CPU time of each, interleaved) and evaluations."""

    params = (list(COMPARISONS),)
    param_names = ("comparison",)
    timeout = 300.0
    # Each ratio stops once the faster side has run MIN_TIME seconds in all (at least MIN_REPEATS rounds),
    # or after MAX_TIME seconds.
    MIN_TIME = 0.5
    MIN_REPEATS = 5
    MAX_TIME = 10.0

    def setup(self, comparison: str) -> None:
        self.ours, self.peer = COMPARISONS[comparison]()

    def track_time_ratio(self, comparison: str) -> float:
        """Our best CPU time / the peer's (below 1: we are faster)."""
        timings = round_robin_times(
            {"ours": self.ours.run, "peer": self.peer.run},
            min_time=self.MIN_TIME,
            min_repeats=self.MIN_REPEATS,
            max_repeats=10_000,
            max_case_time=self.MAX_TIME,
        )
        return timings.ratio("ours", "peer", cpu=True)

    track_time_ratio.unit = "ours / peer"  # type: ignore[attr-defined]

    def track_nfev_ratio(self, comparison: str) -> float:
        """Our evaluations of f / the peer's, forward and backward together."""
        return self.ours.evaluations() / self.peer.evaluations()

    track_nfev_ratio.unit = "ours / peer"  # type: ignore[attr-defined]
