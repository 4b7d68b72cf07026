"""Small problems, method lists and per-method settings shared by the ode-adjoint tests.

The root ``pyproject.toml`` puts this folder on pytest's ``pythonpath`` (as
it does ode-core's tests folder), so the tests import it by name; the name
is unique across the monorepo's test folders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ode_core
import torch

DTYPE = torch.float64

METHODS = list(ode_core.METHODS)
METHOD = {name: ode_core.validation.check_method(name) for name in METHODS}
# Runge-Kutta methods only: each step stands alone (the checkpoint replays it so).
MULTISTEP = list(ode_core.MULTISTEP)
# Methods whose steps use the steps before: the checkpoint engine, which replays a step alone, refuses them.
WITH_HISTORY = [*ode_core.MULTISTEP, *ode_core.VARIABLE_ORDER]
# torchdiffeq's Adams methods, whose order rises with the history (to 11 and 12).
RISING_ORDER = ["explicit_adams", "implicit_adams"]
EXPLICIT = [name for name in ode_core.TABLEAUX if ode_core.TABLEAUX[name].explicit]
IMPLICIT = [name for name in METHODS if METHOD[name].implicit and name not in WITH_HISTORY]
ADAPTIVE = [name for name in METHODS if METHOD[name].adaptive]
FIXED_STEP = [name for name in METHODS if not METHOD[name].adaptive]
EXPLICIT_ADAPTIVE = [name for name in EXPLICIT if METHOD[name].adaptive]
GRADIENTS = ("backprop", "adjoint", "checkpoint")


def forced_van_der_pol(theta: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A 2-state nonlinear, non-autonomous field with three parameters.

    ``y' = theta0 v``, ``v' = -theta1 y + theta2 (1 - y^2) v + 0.3 cos t``.
    """

    def field(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        position, velocity = y[..., 0], y[..., 1]
        return torch.stack(
            (
                theta[0] * velocity,
                -theta[1] * position + theta[2] * (1 - position**2) * velocity + 0.3 * torch.cos(t),
            ),
            dim=-1,
        )

    return field


def van_der_pol_inputs(
    dtype: torch.dtype = DTYPE, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y0, theta)`` for :func:`forced_van_der_pol`, both requiring grad."""
    y0 = torch.tensor([0.6, -0.4], dtype=dtype, device=device, requires_grad=True)
    theta = torch.tensor([1.0, 0.8, 0.5], dtype=dtype, device=device, requires_grad=True)
    return y0, theta


class TimeMLP(torch.nn.Module):
    """``f(t, y) = W2 tanh(W1 y + t c + b1) + b2``: a tiny neural ODE field.

    ``pulse_height`` adds a narrow forcing pulse around ``t = 0.8``, where an
    adaptive solver that has grown its step rejects steps.
    """

    def __init__(
        self,
        n_state: int = 2,
        n_hidden: int = 8,
        dtype: torch.dtype = DTYPE,
        seed: int = 0,
        pulse_height: float = 0.0,
    ) -> None:
        super().__init__()
        self.pulse_height = pulse_height
        generator = torch.Generator().manual_seed(seed)
        self.hidden = torch.nn.Linear(n_state, n_hidden, dtype=dtype)
        self.output = torch.nn.Linear(n_hidden, n_state, dtype=dtype)
        self.time_weight = torch.nn.Parameter(torch.empty(n_hidden, dtype=dtype))
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator, dtype=dtype) * 0.7)

    def forward(self, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        output: torch.Tensor = self.output(torch.tanh(self.hidden(y) + t * self.time_weight))
        if self.pulse_height:
            output = output + self.pulse_height * torch.exp(-(((t - 0.8) / 0.04) ** 2))
        return output


def flat_parameter_grads(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in module.parameters() if p.grad is not None])


def relative_difference(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).norm() / expected.norm())


@dataclass(frozen=True)
class GradcheckSetting:
    """How accurately to solve with one method for gradcheck, and gradcheck's atol.

    ``solve_kwargs`` go to ``odeint``: tolerances for adaptive methods,
    ``options={"step_size": h}`` for fixed-step ones. ``atol`` is
    gradcheck's absolute tolerance on Jacobian entries of size about one.
    ``fast_mode`` picks gradcheck's random-projection mode for settings with
    many steps, to keep the suite short.
    """

    solve_kwargs: dict[str, Any] = field(default_factory=dict)
    atol: float = 1e-6
    fast_mode: bool = False


def _adaptive(tolerance: float, atol: float, fast_mode: bool = False) -> GradcheckSetting:
    return GradcheckSetting({"rtol": tolerance, "atol": tolerance}, atol, fast_mode)


def _fixed(step_size: float, atol: float, fast_mode: bool = False) -> GradcheckSetting:
    return GradcheckSetting({"options": {"step_size": step_size}}, atol, fast_mode)


# Why gradcheck needs accurate solves here, and where its atol comes from:
# * The adjoint integrates the continuous adjoint equation, so it differs from
#   the derivative of the discrete forward solve (what finite differences
#   measure) by the discretisation error: O(tolerance) for adaptive methods,
#   O(h^order) for fixed steps.
# * Every engine differentiates the output times t with the continuous
#   formulas (dy(t_i)/dt_i = f(t_i, y_i), dy(t_i)/dt_0 = -Phi f_0), again
#   exact only up to the discretisation error.
# * Adaptive step sizes are chosen under no_grad, so backprop and checkpoint
#   treat them as constants while finite differences see them move:
#   another O(tolerance) term.
# Each setting below makes these terms about ten times smaller than atol
# (measured on the problem of test_gradcheck.py). Exactness of backprop and
# checkpoint on the discrete solution, at coarse steps and tight atol, is
# test_gradcheck.py::test_backprop_and_checkpoint_are_exact_for_the_discrete_solution.
GRADCHECK_SETTINGS: dict[str, GradcheckSetting] = {
    # Order 1: O(h) = 2e-3 discretisation error.
    "euler": _fixed(2e-3, atol=3e-3, fast_mode=True),
    "backward_euler": _fixed(2e-3, atol=3e-3, fast_mode=True),
    # Order 2 with h = 1e-2.
    "midpoint": _fixed(1e-2, atol=1e-4),
    "heun": _fixed(1e-2, atol=1e-4),
    "ralston": _fixed(1e-2, atol=1e-4),
    "trapezoid": _fixed(1e-2, atol=1e-4),
    "implicit_midpoint": _fixed(1e-2, atol=1e-4),
    "sdirk2": _fixed(1e-2, atol=1e-4),
    "trbdf2": _fixed(1e-2, atol=1e-4),
    # Order 3 with h = 0.02.
    "heun3": _fixed(2e-2, atol=1e-4),
    "radau3": _fixed(2e-2, atol=1e-4),
    # Order 4 with h = 0.05.
    "rk4": _fixed(5e-2, atol=1e-5),
    "rk38": _fixed(5e-2, atol=1e-5),
    "gl4": _fixed(5e-2, atol=1e-5),
    # Orders 5 and 6 with h = 0.1.
    "gl6": _fixed(1e-1, atol=1e-5),
    # Orders 4 and 5 with h = 0.05, the first three steps by the 3/8 rule
    # (torchdiffeq's two, then orders rising to 11 and 12).
    "adams_bashforth": _fixed(5e-2, atol=1e-5),
    "adams_bashforth_moulton": _fixed(5e-2, atol=1e-5),
    # torchdiffeq's explicit_adams reaches order 11, stable only for |h lambda|
    # below about 0.004.
    "explicit_adams": _fixed(2.5e-3, atol=1e-5),
    "implicit_adams": _fixed(5e-2, atol=1e-5),
    "radau5_fixed": _fixed(1e-1, atol=1e-5),
    # Adaptive: low orders need looser tolerances to stay cheap.
    "heun_euler": _adaptive(1e-6, atol=2e-5, fast_mode=True),
    "fehlberg2": _adaptive(1e-7, atol=2e-4),
    "bosh3": _adaptive(1e-8, atol=3e-6),
    "cash_karp": _adaptive(1e-9, atol=3e-5),
    "dopri5": _adaptive(1e-10, atol=1e-6),
    "tsit5": _adaptive(1e-10, atol=1e-6),
    "dopri8": _adaptive(1e-10, atol=1e-6),
    # dopri87 interpolates its outputs with an order-5 extension, several
    # tolerances off at loose ones; where a finite-difference perturbation
    # changes the step sequence, the output jumps by about that much
    # (measured max |finite differences - backprop|: 8.6e-5 at 1e-10,
    # 1.6e-6 at 1e-12, 3.7e-7 at 1e-13).
    "dopri87": _adaptive(1e-13, atol=3e-6),
    "kvaerno3": _adaptive(1e-7, atol=3e-6),
    "kvaerno5": _adaptive(1e-9, atol=3e-6),
    "radau5": _adaptive(1e-9, atol=3e-6),
    "bdf": _adaptive(1e-9, atol=3e-6),
    "auto": _adaptive(1e-10, atol=1e-6),
}
assert set(GRADCHECK_SETTINGS) == set(METHODS), "every registered method needs a gradcheck setting"
