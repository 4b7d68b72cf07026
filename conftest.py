"""Fixtures every package's tests share."""

from __future__ import annotations

import pytest


@pytest.fixture(
    params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)],
)
def device(request: pytest.FixtureRequest) -> str:
    """The torch device a test runs on: the CPU, and CUDA when there is one (``cuda``-marked)."""
    torch = pytest.importorskip("torch")
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return str(request.param)
