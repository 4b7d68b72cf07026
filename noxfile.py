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
TEST_REQUIREMENTS = ("pytest>=8", "hypothesis>=6", "scipy>=1.11", "tqdm>=4")


@nox.session
def tests(session: nox.Session) -> None:
    """Run every package's tests and the cross-package ones (posargs go to pytest)."""
    session.install(*TORCH)
    session.install(*TEST_REQUIREMENTS)
    # The peers, so that the tests comparing against torchdiffeq and torchode run, and asv for the
    # test of the published pages (tests/test_asv_pages.py; Chromium comes from .ci/run).
    session.install(*BENCH_PEERS, ASV)
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


# --- Documentation: the Sphinx site in docs/ (README, "Documentation"), built into docs/_build/html
# (ignored by git). Pinned, because the build treats every warning as an error.
DOCS_REQUIREMENTS = ("sphinx==9.0.4", "furo==2025.12.19", "myst-parser==5.2.0", "numpydoc==1.11.0")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs into docs/_build/html: warnings are errors, references nitpicky, no network.

    ``-E`` rereads every page, so a warning cannot hide in a cached one; posargs go to sphinx-build.
    """
    session.install(TORCH[0])
    session.install(*DOCS_REQUIREMENTS)
    session.install(*PACKAGES)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-n", "-E", "-b", "html", "docs", "docs/_build/html", *session.posargs
    )


@nox.session(name="docs-serve")
def docs_serve(session: nox.Session) -> None:
    """Live preview on http://127.0.0.1:8000: rebuild when docs/ or a package's source changes.

    The packages are installed editable, so docstring edits show up; posargs go to sphinx-autobuild.
    """
    session.install(TORCH[0])
    session.install(*DOCS_REQUIREMENTS, "sphinx-autobuild==2025.8.25")
    session.install(*(argument for package in PACKAGES for argument in ("-e", package)))
    session.run(
        "sphinx-autobuild", "-n", "--watch", "packages", "--port", "8000", "docs", "docs/_build/html", *session.posargs
    )


# --- Benchmarks: the asv suite in benchmarks/ (README, "Benchmarks"). Results, HTML and asv's own
# environments go to benchmarks/results, benchmarks/html and benchmarks/.asv, all ignored by git.
ASV_CONFIG = "benchmarks/asv.conf.json"
ASV = "asv==0.6.6"
BENCH_PEERS = ("scipy>=1.11", "torchdiffeq==0.2.5", "torchode==1.0.1")


@nox.session
def bench(session: nox.Session) -> None:
    """Run the asv suite once on this checkout, in this session's virtualenv (posargs go to ``asv run``).

    ``asv run --python=same --quick``: the packages as they are in the working tree, every benchmark
    once in its own process, nothing saved; fails if any benchmark fails. ``nox -s bench -- -b peers``
    runs one suite.
    """
    session.install(TORCH[0])
    session.install(ASV, *BENCH_PEERS)
    session.install(*PACKAGES)
    session.run("asv", "machine", "--yes", "--config", ASV_CONFIG)
    session.run("asv", "run", "--config", ASV_CONFIG, "--python=same", "--quick", "--show-stderr", *session.posargs)


@nox.session(name="bench-history")
def bench_history(session: nox.Session) -> None:
    """Benchmark the last N commits (``nox -s bench-history -- N``, default 3), then publish the pages.

    asv installs each commit's packages into its own virtualenv under benchmarks/.asv (torch and the
    peers once) and runs this checkout's suite against them, saving to benchmarks/results; commits
    already measured on this machine are skipped.
    """
    commits = int(session.posargs[0]) if session.posargs else 3
    session.install(ASV, "virtualenv")
    session.run("asv", "machine", "--yes", "--config", ASV_CONFIG)
    # asv exits with 2 when a benchmark failed on some commit (an API an old commit lacks, say):
    # publish all the same, the pages and asv's output above show which.
    session.run(
        "asv",
        "run",
        "--config",
        ASV_CONFIG,
        "--skip-existing-commits",
        "--show-stderr",
        f"HEAD~{commits}..HEAD",
        success_codes=[0, 2],
    )
    _asv_publish(session)


@nox.session(name="bench-publish")
def bench_publish(session: nox.Session) -> None:
    """``asv publish``: the saved results as HTML pages in benchmarks/html that work offline.

    The pages' JavaScript and CSS come from benchmarks/vendor/ rather than CDNs, so they need no
    network, behind a firewall or read later. ``-- --preview`` also serves them.
    """
    session.install(ASV)
    _asv_publish(session)
    if "--preview" in session.posargs:
        session.run("asv", "preview", "--config", ASV_CONFIG)


def _asv_publish(session: nox.Session) -> None:
    """``asv publish``, then benchmarks/_offline_pages.py points the pages at the local copies of their libraries."""
    session.run("asv", "publish", "--config", ASV_CONFIG)
    session.run("python", "benchmarks/_offline_pages.py", "benchmarks/html")
    session.log(
        "Pages in benchmarks/html; they work offline (their JavaScript and CSS are local copies). They load "
        "their data with JavaScript, so serve them rather than open the file: nox -s bench-publish -- --preview "
        "(asv preview, http://127.0.0.1:8080), or python -m http.server --directory benchmarks/html"
    )
