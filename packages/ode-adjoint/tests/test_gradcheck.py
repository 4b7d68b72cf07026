"""``torch.autograd.gradcheck`` of every method with every gradient engine.

Inputs are the initial state, the field's parameters and the output times, in
float64; see ``_adjoint_problems.GRADCHECK_SETTINGS`` for the accuracy each
method is run at and why.
"""

from __future__ import annotations

import math
import warnings

import ode_adjoint
import pytest
import torch
from _adjoint_problems import (
    DTYPE,
    EXPLICIT,
    FIXED_STEP,
    GRADCHECK_SETTINGS,
    GRADIENTS,
    IMPLICIT,
    METHODS,
    MULTISTEP,
    RISING_ORDER,
    WITH_HISTORY,
    forced_van_der_pol,
    van_der_pol_inputs,
)
from ode_core.validation import check_method

# Two output times after t0, one of them between steps for most settings.
OUTPUT_TIMES = (0.0, 0.2, 0.5)


def _output_times() -> torch.Tensor:
    return torch.tensor(OUTPUT_TIMES, dtype=DTYPE, requires_grad=True)


# Every finite difference is a solve (the adaptive implicit methods take
# seconds each): the fast subset checks one adaptive and one fixed-step
# method under each engine, the full run every method.
_FAST_GRADCHECK = {"dopri5", "rk4"}


@pytest.mark.parametrize(
    ("method", "gradient"),
    [
        (m, g) if m in _FAST_GRADCHECK else pytest.param(m, g, marks=pytest.mark.slow)
        for m in METHODS
        for g in GRADIENTS
        # The checkpoint replays steps alone: it refuses multistep methods (test_engines).
        if not (m in WITH_HISTORY and g == "checkpoint")
    ],
)
def test_gradcheck_every_method_and_engine(method: str, gradient: str) -> None:
    setting = GRADCHECK_SETTINGS[method]
    y0, theta = van_der_pol_inputs()

    def solution(y0: torch.Tensor, theta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ys: torch.Tensor = ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            t,
            method=method,
            gradient=gradient,
            adjoint_params=(theta,),
            **setting.solve_kwargs,
        )
        return ys

    assert torch.autograd.gradcheck(
        solution, (y0, theta, _output_times()), atol=setting.atol, rtol=1e-6, fast_mode=setting.fast_mode
    )


@pytest.mark.parametrize("method", IMPLICIT)
def test_checkpoint_replays_implicit_steps_to_backprops_gradient(method: str) -> None:
    """The checkpointing engine replays an implicit step with the forward's
    stepper, Newton iteration included, so its gradient is backprop's to the
    Newton tolerance (the replay starts Newton from a fresh Jacobian; kvaerno3
    at its gradcheck setting differs by 1.2e-6)."""
    gradients = {}
    for gradient in ("backprop", "checkpoint"):
        y0, theta = van_der_pol_inputs()
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            _output_times(),
            method=method,
            gradient=gradient,
            adjoint_params=(theta,),
            **GRADCHECK_SETTINGS[method].solve_kwargs,
        )
        gradients[gradient] = torch.autograd.grad(ys.square().sum(), (y0, theta))
    for got, expected in zip(gradients["checkpoint"], gradients["backprop"]):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("gradient", ["backprop", "checkpoint"])
@pytest.mark.parametrize("method", EXPLICIT)
def test_backprop_and_checkpoint_are_exact_for_the_discrete_solution(method: str, gradient: str) -> None:
    """With a fixed step grid (adaptive tableaux too: step_size overrides the
    error control) the solution is a smooth function of y0 and the
    parameters, and both engines differentiate exactly that function: at
    steps of 0.1, far from the exact flow, gradcheck still passes at an atol
    limited only by finite differences. An engine that computed the
    continuous gradient instead would be off by the large discretisation error."""
    y0, theta = van_der_pol_inputs()
    t = torch.tensor([0.0, 0.23, 0.5], dtype=DTYPE)  # 0.23: interpolated inside a step

    def solution(y0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ys: torch.Tensor = ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            t,
            method=method,
            gradient=gradient,
            adjoint_params=(theta,),
            options={"step_size": 0.1},
        )
        return ys

    assert torch.autograd.gradcheck(solution, (y0, theta), atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("method", IMPLICIT)
def test_backprop_through_implicit_methods_warns_nothing(method: str) -> None:
    """gradient="backprop" with an implicit method differentiates ode-core's
    Newton iteration (gradcheck above shows the gradient is right); it should
    do so without torch warnings, e.g. from reading a float off a tensor that
    requires grad in a finite-difference Jacobian."""
    y0, theta = van_der_pol_inputs()
    # torch raises some warnings once per process; make it raise them every time.
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ys = ode_adjoint.odeint(
                forced_van_der_pol(theta),
                y0,
                _output_times(),
                method=method,
                gradient="backprop",
                **GRADCHECK_SETTINGS[method].solve_kwargs,
            )
            ys.sum().backward()
    finally:
        torch.set_warn_always(warn_always)
    assert y0.grad is not None
    assert theta.grad is not None
    assert torch.isfinite(y0.grad).all()
    assert torch.isfinite(theta.grad).all()


# torchdiffeq's Adams methods raise their order with the history: no one
# order to observe (test_torchdiffeq checks them against torchdiffeq itself).
@pytest.mark.parametrize("method", [m for m in FIXED_STEP if m not in RISING_ORDER])
def test_fixed_step_adjoint_converges_at_the_method_order(method: str) -> None:
    """The adjoint of a fixed-step method integrates the adjoint equation with
    the same method and step, so its gradient approaches the exact one at the
    method's order as the step halves."""
    order = check_method(method).order
    t = torch.tensor([0.0, 0.5], dtype=DTYPE)

    def loss_gradient(gradient: str, **solve_kwargs: object) -> torch.Tensor:
        y0, theta = van_der_pol_inputs()
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta), y0, t, gradient=gradient, adjoint_params=(theta,), **solve_kwargs
        )
        return torch.cat(torch.autograd.grad(ys[-1].sum(), (y0, theta)))

    exact = loss_gradient("backprop", method="dopri8", rtol=1e-13, atol=1e-13)
    # Steps large enough that the error stays well above round-off (and Newton's
    # tolerance, for implicit methods), even at orders 4 to 6.
    base_step = 0.25 if order >= 5 else 0.05 if order >= 4 else 0.025
    errors = [
        float((loss_gradient("adjoint", method=method, options={"step_size": h}) - exact).norm())
        for h in (base_step, base_step / 2)
    ]
    observed_order = math.log2(errors[0] / errors[1])
    assert observed_order > order - 0.3, f"errors {errors}: observed order {observed_order:.2f}, expected {order}"


# explicit_adams is unstable at these steps (order 11): its outputs grow too fast for finite differences.
@pytest.mark.parametrize("method", [m for m in MULTISTEP if m != "explicit_adams"])
def test_backprop_is_exact_for_an_adams_methods_discrete_solution(method: str) -> None:
    """Backprop differentiates the steps through the slopes they share, so
    gradcheck passes at steps of 0.1, far from the exact flow (as for the
    one-step methods above), outputs between steps included."""
    y0, theta = van_der_pol_inputs()
    t = torch.tensor([0.0, 0.23, 0.5, 0.8], dtype=DTYPE)

    def solution(y0: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        ys: torch.Tensor = ode_adjoint.odeint(
            forced_van_der_pol(theta), y0, t, method=method, gradient="backprop", options={"step_size": 0.1}
        )
        return ys

    assert torch.autograd.gradcheck(solution, (y0, theta), atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("method", [*MULTISTEP, "fixed_adams"])
def test_the_checkpoint_refuses_a_multistep_method_by_name(method: str) -> None:
    y0, theta = van_der_pol_inputs()
    with pytest.raises(ValueError, match=r"gradient: 'checkpoint' replays each step alone.*multistep method"):
        ode_adjoint.odeint(
            forced_van_der_pol(theta),
            y0,
            torch.tensor([0.0, 0.5], dtype=DTYPE),
            method=method,
            gradient="checkpoint",
            options={"step_size": 0.1},
        )


def test_the_checkpoint_refuses_bdf_by_name() -> None:
    y0, theta = van_der_pol_inputs()
    with pytest.raises(ValueError, match=r"gradient: 'checkpoint' replays each step alone.*'bdf' is a multistep"):
        ode_adjoint.odeint(
            forced_van_der_pol(theta), y0, torch.tensor([0.0, 0.5], dtype=DTYPE), method="bdf", gradient="checkpoint"
        )


@pytest.mark.parametrize("method", [m for m in MULTISTEP if m not in RISING_ORDER])
def test_adams_adjoint_keeps_its_order_across_output_times(method: str) -> None:
    """At each output time the adjoint jumps by the output's cotangent (an
    impulse of the backward solve); slopes from before it would cost the
    method its order, so it restarts there."""
    t = torch.tensor([0.0, 0.3, 0.6, 1.0], dtype=DTYPE)

    def loss_gradient(gradient: str, **solve_kwargs: object) -> torch.Tensor:
        y0, theta = van_der_pol_inputs()
        ys = ode_adjoint.odeint(
            forced_van_der_pol(theta), y0, t, gradient=gradient, adjoint_params=(theta,), **solve_kwargs
        )
        return torch.cat(torch.autograd.grad(ys.square().sum(), (y0, theta)))

    exact = loss_gradient("backprop", method="dopri8", rtol=1e-13, atol=1e-13)
    errors = [
        float((loss_gradient("adjoint", method=method, options={"step_size": h}) - exact).norm()) for h in (0.02, 0.01)
    ]
    assert math.log2(errors[0] / errors[1]) > 3.7, errors
