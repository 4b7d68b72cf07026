"""Stiff test problems shared by the stiff tests and the stiff benchmark."""

from __future__ import annotations

import numpy as np


def robertson(t: float, y: np.ndarray) -> np.ndarray:
    """Robertson's chemical kinetics (Hairer & Wanner, Solving ODEs II, IV.1, ROBER)."""
    return np.array(
        [
            -0.04 * y[0] + 1e4 * y[1] * y[2],
            0.04 * y[0] - 1e4 * y[1] * y[2] - 3e7 * y[1] ** 2,
            3e7 * y[1] ** 2,
        ]
    )


def robertson_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    return np.array(
        [
            [-0.04, 1e4 * y[2], 1e4 * y[1]],
            [0.04, -1e4 * y[2] - 6e7 * y[1], -1e4 * y[1]],
            [0.0, 6e7 * y[1], 0.0],
        ]
    )


VAN_DER_POL_MU = 1000.0


def van_der_pol(t: float, y: np.ndarray) -> np.ndarray:
    """Van der Pol's oscillator ``y'' = mu (1 - y^2) y' - y`` with mu = 1000."""
    return np.array([y[1], VAN_DER_POL_MU * (1.0 - y[0] ** 2) * y[1] - y[0]])


def van_der_pol_jacobian(t: float, y: np.ndarray) -> np.ndarray:
    return np.array([[0.0, 1.0], [-2.0 * VAN_DER_POL_MU * y[0] * y[1] - 1.0, VAN_DER_POL_MU * (1.0 - y[0] ** 2)]])
