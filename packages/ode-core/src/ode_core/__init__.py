"""ode-core: framework-agnostic ODE solvers.

One set of Runge--Kutta tableaux and Adams methods, step-size controllers and dense output that
runs on NumPy arrays, torch tensors and other array API libraries.

Examples
--------
>>> import numpy as np, ode_core
>>> sol = ode_core.solve(lambda t, y: -y, np.array([1.0]), [0.0, 1.0], method="tsit5")
>>> sol.success
True
"""

from __future__ import annotations

from . import validation
from ._adams import AdamsMethod
from ._auto import AutoMethod
from ._bdf import BDFMethod
from ._controllers import (
    ControllerState,
    IController,
    PIController,
    PIDController,
    PredictiveController,
    PredictiveState,
)
from ._dense import DenseOutput
from ._initial_step import select_initial_step
from ._krylov import gmres
from ._loop import AcceptedStep, StepObserver, integrate, make_stepper
from ._norms import MixedNorm, max_norm, rms_norm
from ._per_sample import DEFAULT_SYNC_EVERY, BatchShapedFunction, PerSampleRun, integrate_per_sample, per_sample_step
from ._settings import Settings
from ._solution import Solution, Stats, Status
from ._solve import solve
from ._stepper import STEPPER_ENTRY_POINTS, Stepper, StepperBase, register_stepper
from ._tableau import ButcherTableau
from ._tableaux import ALIASES, METHODS, MULTISTEP, TABLEAUX, VARIABLE_ORDER

__version__ = "0.2.0"

__all__ = [
    "ALIASES",
    "DEFAULT_SYNC_EVERY",
    "METHODS",
    "MULTISTEP",
    "STEPPER_ENTRY_POINTS",
    "TABLEAUX",
    "VARIABLE_ORDER",
    "AcceptedStep",
    "AdamsMethod",
    "AutoMethod",
    "BDFMethod",
    "BatchShapedFunction",
    "ButcherTableau",
    "ControllerState",
    "DenseOutput",
    "IController",
    "MixedNorm",
    "PIController",
    "PIDController",
    "PerSampleRun",
    "PredictiveController",
    "PredictiveState",
    "Settings",
    "Solution",
    "Stats",
    "Status",
    "StepObserver",
    "Stepper",
    "StepperBase",
    "gmres",
    "integrate",
    "integrate_per_sample",
    "make_stepper",
    "max_norm",
    "per_sample_step",
    "register_stepper",
    "rms_norm",
    "select_initial_step",
    "solve",
    "validation",
]
