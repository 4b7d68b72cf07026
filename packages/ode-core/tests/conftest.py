"""Fixtures of the ode-core tests (shared problems live in ``_detest``, ``_stiff_problems``, ``_rooted_trees``)."""

from __future__ import annotations

from types import ModuleType

import pytest


@pytest.fixture
def torch() -> ModuleType:
    """torch, for the tests that run ode-core on tensors (skipped without it)."""
    return pytest.importorskip("torch")
