"""Sessions users and CI run: ``nox -s tests``, ``nox -s lint``.

Every session installs the packages from their subfolders with pip into its
own virtualenv, the way a user would.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "virtualenv"
nox.options.sessions = ["tests", "lint"]

PACKAGES = ("./packages/ode-core", "./packages/ode-adjoint", "./packages/ode-models")
# torch is a test-only dependency of ode-core (its array-API tests run on
# tensors) and a runtime one of ode-adjoint; this pin matches the release
# available offline on our machines, package metadata says torch>=2.4.
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
TEST_REQUIREMENTS = ("pytest>=8", "hypothesis>=6", "scipy>=1.11")


@nox.session
def tests(session: nox.Session) -> None:
    """Run every package's tests and the cross-package ones (posargs go to pytest)."""
    session.install(*TORCH)
    session.install(*TEST_REQUIREMENTS)
    session.install(*PACKAGES)
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check, ruff format --check and mypy on the packages' sources."""
    session.install("ruff>=0.6", "mypy>=1.11", "numpy>=1.26")
    session.install(*TORCH)
    session.install(*PACKAGES)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
