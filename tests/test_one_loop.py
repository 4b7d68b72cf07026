"""One loop: ode-core's drives every solve, ode-adjoint's included.

Parity: the same problems through ``ode_core.solve`` on NumPy, on torch, and
``ode_adjoint.solve`` with each engine end with the same status and message
on failure and take the same accepted steps on success. The backends add in
different orders (NumPy's matmul, torch's addmv, autograd's chained adds),
so the times a message names agree to round-off, not to the bit, except
where the solve lands on a given time.

Structure: ode-adjoint's sources hold no loop of their own: they set no
``Status`` and never call a controller.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import ode_adjoint
import ode_core
import pytest
import torch
from ode_core import Status

# check_state's message, scipy's words included.
NON_FINITE_Y0 = r"^y0: contains inf or nan; All components of the initial state `y0` must be finite\.$"

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("backprop", "adjoint", "checkpoint")
_NUMBER = re.compile(r"-?\d+\.\d+(?:e[-+]?\d+)?|-?\d+e[-+]?\d+")


def _same_message(got: str, expected: str) -> bool:
    """Equal text, and numbers equal to a relative 1e-6."""
    if _NUMBER.sub("#", got) != _NUMBER.sub("#", expected):
        return False
    return all(
        math.isclose(float(a), float(b), rel_tol=1e-6, abs_tol=1e-300)
        for a, b in zip(_NUMBER.findall(got), _NUMBER.findall(expected))
    )


def _torch_field(numpy_field: Callable[[float, np.ndarray], np.ndarray]) -> Callable[[Any, torch.Tensor], torch.Tensor]:
    def field(t: Any, y: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(numpy_field(float(t), y.detach().numpy()), dtype=y.dtype) + 0 * y

    return field


def _decay(t: float, y: np.ndarray) -> np.ndarray:
    return -y


def _blow_up(t: float, y: np.ndarray) -> np.ndarray:
    return y * y


def _nan_after_half(t: float, y: np.ndarray) -> np.ndarray:
    return -y if t <= 0.5 else y * np.nan


def _stiff(t: float, y: np.ndarray) -> np.ndarray:
    return -1000.0 * (y - np.cos(t))


def _infinite(t: float, y: np.ndarray) -> np.ndarray:
    return y * np.inf


def _rotation(t: float, y: np.ndarray) -> np.ndarray:
    return np.array([-y[1], y[0]]) * (1.0 + 0.5 * np.cos(3.0 * t))


# name: (field, y0, t, ode_core keywords, ode_adjoint options, expected status)
CASES: dict[str, tuple[Any, list[float], list[float], dict[str, Any], dict[str, Any] | None, Status]] = {
    "max-steps": (_decay, [1.0, 2.0], [0.0, 10.0], {"max_steps": 3}, {"max_num_steps": 3}, Status.MAX_STEPS_REACHED),
    "underflow": (_blow_up, [1.0], [0.0, 2.0], {}, {}, Status.STEP_SIZE_UNDERFLOW),
    # torchdiffeq's min_step (ode-adjoint's options): steps forced at 0.01, unstable there.
    "min-step": (
        _stiff,
        [0.0],
        [0.0, 1.0],
        {"min_step": 0.01, "accept_at_min_step": True},
        {"min_step": 0.01},
        Status.NON_FINITE,
    ),
    "min-step-underflow": (_stiff, [0.0], [0.0, 1.0], {"min_step": 0.01}, None, Status.STEP_SIZE_UNDERFLOW),
    "nan-mid-solve": (_nan_after_half, [1.0, 2.0], [0.0, 1.0], {"step_t": [0.5]}, {"step_t": [0.5]}, Status.NON_FINITE),
    "non-finite-f0": (_infinite, [1.0], [0.0, 1.0], {}, {}, Status.NON_FINITE),
    "success": (_rotation, [1.0, 0.0], [0.0, 0.5, 1.0, 4.0], {}, {}, Status.SUCCESS),
}


def _all_backends(name: str) -> dict[str, tuple[Status, str, int]]:
    with np.errstate(all="ignore"):  # the failures overflow on purpose, in f's NumPy code too
        return _run_backends(name)


def _run_backends(name: str) -> dict[str, tuple[Status, str, int]]:
    field, y0, t, core_keywords, options, _ = CASES[name]
    results = {}
    solution = ode_core.solve(field, np.array(y0), t, rtol=1e-7, atol=1e-9, **core_keywords)
    results["ode_core numpy"] = (solution.status, solution.message, solution.stats.n_accepted)
    tensor_field = _torch_field(field)
    solution = ode_core.solve(
        tensor_field, torch.tensor(y0, dtype=torch.float64), t, rtol=1e-7, atol=1e-9, **core_keywords
    )
    results["ode_core torch"] = (solution.status, solution.message, solution.stats.n_accepted)
    if options is None:  # a setting ode-adjoint's options do not offer
        return results
    for engine in ENGINES:
        y = torch.tensor(y0, dtype=torch.float64, requires_grad=True)
        solution = ode_adjoint.solve(
            tensor_field, y, t, gradient=engine, adjoint_params=(), options=options, on_failure="return"
        )
        results[f"ode_adjoint {engine}"] = (solution.status, solution.message, solution.stats.n_accepted)
    return results


@pytest.mark.parametrize("name", list(CASES))
def test_every_backend_and_engine_ends_the_same(name: str) -> None:
    results = _all_backends(name)
    status, message, accepted = results["ode_core numpy"]
    assert status is CASES[name][-1], message
    for backend, (other_status, other_message, other_accepted) in results.items():
        assert other_status is status, backend
        assert _same_message(other_message, message), (backend, other_message, message)
        assert other_accepted == accepted, backend


def test_landing_times_are_named_exactly() -> None:
    """Where the solve lands on a given time the message names it to the bit."""
    messages = {backend: message for backend, (_, message, _) in _all_backends("nan-mid-solve").items()}
    assert len(set(messages.values())) == 1, messages
    assert "near t=0.5," in messages["ode_core numpy"]


def test_non_finite_y0_raises_the_same_error_everywhere() -> None:
    errors = set()
    for y0 in (np.array([1.0, np.nan]), torch.tensor([1.0, math.inf], dtype=torch.float64)):
        with pytest.raises(ValueError, match=NON_FINITE_Y0) as caught:
            ode_core.solve(lambda t, y: -y, y0, [0.0, 1.0])
        errors.add(str(caught.value))
    for engine in ENGINES:
        with pytest.raises(ValueError, match=NON_FINITE_Y0) as caught:
            ode_adjoint.solve(lambda t, y: -y, torch.tensor([math.nan]), [0.0, 1.0], gradient=engine, adjoint_params=())
        errors.add(str(caught.value))
    assert errors == {"y0: contains inf or nan; All components of the initial state `y0` must be finite."}


def test_ode_core_on_tensors_runs_ode_adjoints_stepper() -> None:
    """ode-core finds the torch stepper through its entry point, so a solve of
    ode_core on tensors takes the fast path, step for step as ode_adjoint."""
    from array_api_compat import array_namespace
    from ode_adjoint._stepper import provide_stepper
    from ode_core._stepper import stepper_provider

    y0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    assert stepper_provider(array_namespace(y0)) is provide_stepper
    stepper = ode_core.make_stepper(ode_core.TABLEAUX["dopri5"], array_namespace(y0), y0, lambda t, y: y, _SETTINGS)
    assert isinstance(stepper, ode_adjoint.TorchRungeKutta)
    implicit = ode_core.make_stepper(ode_core.TABLEAUX["kvaerno5"], array_namespace(y0), y0, lambda t, y: y, _SETTINGS)
    assert not isinstance(implicit, ode_adjoint.TorchRungeKutta)  # ode-core's Newton steppers
    assert stepper_provider(array_namespace(np.ones(2))) is None


_SETTINGS = ode_core.Settings(method=ode_core.TABLEAUX["dopri5"])


def _ode_adjoint_sources() -> list[tuple[Path, ast.Module]]:
    folder = ROOT / "packages" / "ode-adjoint" / "src" / "ode_adjoint"
    return [(path, ast.parse(path.read_text())) for path in sorted(folder.glob("*.py"))]


def test_ode_adjoint_sets_no_status() -> None:
    """A status is the loop's decision: ode-adjoint only compares them. The one exception is
    torchdiffeq's scipy_solver (``_scipy.py``), which is scipy's loop: it names scipy's failure."""
    for path, tree in _ode_adjoint_sources():
        if path.name == "_scipy.py":
            continue
        compared = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Compare) for inner in ast.walk(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "Status":
                assert id(node) in compared, f"{path.name}:{node.lineno} uses Status.{node.attr} outside a comparison"


def test_ode_adjoint_takes_no_step_decisions() -> None:
    """No controller, landing or step-size logic: nothing calls ``adapt`` or
    ``init`` of a controller, or ode-core's initial-step heuristic."""
    for path, tree in _ode_adjoint_sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in ("adapt", "select_initial_step"), f"{path.name}:{node.lineno}"
            if isinstance(node, ast.Name):
                assert node.id not in ("select_initial_step", "_LANDING_SLACK"), f"{path.name}:{node.lineno}"
