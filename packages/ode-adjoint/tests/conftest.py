"""Fixtures of the ode-adjoint tests (shared problems live in ``_adjoint_problems``)."""

from __future__ import annotations

import pytest
import torch
from _adjoint_problems import van_der_pol_inputs


@pytest.fixture
def van_der_pol() -> tuple[torch.Tensor, torch.Tensor]:
    """``(y0, theta)`` of the forced van der Pol field, float64, both requiring grad, fresh per test."""
    return van_der_pol_inputs()
