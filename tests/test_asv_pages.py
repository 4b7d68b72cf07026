"""The asv pages work offline (``nox -s bench-publish``: ``asv publish``, then ``benchmarks/_offline_pages.py``).

A small results set (one machine, two commits of a throwaway git repository, the suite's
``peers.Ratios.track_time_ratio``) is published with the project's asv settings into a temporary
folder, served on 127.0.0.1 and opened in headless Chromium, in which every host name but
127.0.0.1 fails to resolve: the graph page must draw its flot canvases from the local copies. The
same pages as asv wrote them must show asv's "failed to load" page there, so the test cannot pass
by reaching a CDN.

Needs asv (``pip install asv==0.6.6``), Chromium (Debian's ``chromium``) and git, and skips
without them; the checks of the rewrite itself need none of them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = "peers.Ratios.track_time_ratio"
COMPARISONS = ("van_der_pol rtol=1e-6: dopri5 / RK45", "MLP adjoint / torchdiffeq odeint_adjoint")
PARAMS = [[repr(comparison) for comparison in COMPARISONS]]  # as asv stores them
FAILED_TO_LOAD = "dependencies of airspeed velocity failed to load"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # No network: a host name other than the local server's does not resolve, as behind a firewall.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
)


def _load_offline_pages() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_offline_pages", ROOT / "benchmarks" / "_offline_pages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


offline_pages = _load_offline_pages()


def _asv_template() -> Path:
    spec = importlib.util.find_spec("asv")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("asv is not installed (pip install asv==0.6.6)")
    return Path(next(iter(spec.submodule_search_locations))) / "www" / "index.html"


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return chromium


# --- The rewrite, on its own.


def test_localize_page_points_cdn_urls_at_the_copies() -> None:
    url = "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js"
    html = (
        f'<script src="{url}" integrity="sha256-x=" crossorigin="anonymous" onerror="js_load_failure()"></script>\n'
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css" '
        'integrity="sha256-y=" crossorigin="anonymous">\n'
        '<script src="asv.js"></script> <a href="https://github.com/airspeed-velocity/asv/">asv</a>'
    )
    assert offline_pages.localize_page(html) == (
        '<script src="vendor/bootstrap-3.1.1/js/bootstrap.min.js" onerror="js_load_failure()"></script>\n'
        '<link rel="stylesheet" href="vendor/bootstrap-3.1.1/css/bootstrap.min.css">\n'
        '<script src="asv.js"></script> <a href="https://github.com/airspeed-velocity/asv/">asv</a>'
    )


def test_localize_page_rejects_a_url_without_a_copy() -> None:
    with pytest.raises(ValueError, match=r"loads 'https://cdn\.example/plot\.js', which has no local copy"):
        offline_pages.localize_page('<script src="https://cdn.example/plot.js"></script>')


def test_every_copy_is_vendored_with_its_origin() -> None:
    readme = (offline_pages.VENDOR / "README.md").read_text()
    for copy in offline_pages.CDN_COPIES.values():
        assert (offline_pages.VENDOR / copy).is_file(), copy
        assert f"`{copy}`" in readme, copy


def test_copies_cover_asv_page_and_match_its_hashes() -> None:
    """Every CDN URL of asv's page has a copy, and each copy but flot's sources is the CDN's file byte for byte."""
    template = _asv_template().read_text()
    urls = re.findall(
        r"""<(?:script|link)\b[^>]*\b(?:src|href)="(https?://[^"]+)"[^>]*\bintegrity="([^"]+)""", template
    )
    assert {url for url, _ in urls} == set(offline_pages.CDN_COPIES)
    for url, integrity in urls:
        copy = offline_pages.CDN_COPIES[url]
        if copy.startswith("flot-0.8.3/"):
            continue  # flot's sources stand in for the CDN's minified files: same release, other bytes
        data = (offline_pages.VENDOR / copy).read_bytes()
        algorithm, digest = integrity.split("-", 1)
        assert base64.b64encode(hashlib.new(algorithm, data).digest()).decode() == digest, copy
    flot = (offline_pages.VENDOR / "flot-0.8.3" / "jquery.flot.js").read_text()
    assert flot.startswith("/* Javascript plotting library for jQuery, version 0.8.3.")


# --- Published pages in Chromium.


@dataclass
class PublishedPages:
    offline: Path  # after benchmarks/_offline_pages.py
    as_asv_wrote: Path  # before it, for the control
    chromium: str


def _git(repo: Path, *arguments: str, date: str | None = None) -> str:
    environment = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date} if date else {}
    identity = ("-c", "user.name=asv pages test", "-c", "user.email=test@localhost", "-c", "commit.gpgsign=false")
    completed = subprocess.run(
        ["git", *identity, *arguments],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"], "HOME": str(repo), **environment},
    )
    return completed.stdout.strip()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _results_set(folder: Path) -> None:
    """In ``folder``: a git repository with two commits on main, asv results of both, their config."""
    repo = folder / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet", "--initial-branch=main")
    commits = []
    for day, message in ((1, "first"), (2, "second")):
        (repo / "file.txt").write_text(message)
        _git(repo, "add", "file.txt")
        _git(repo, "commit", "--quiet", "-m", message, date=f"2026-11-0{day}T12:00:00+00:00")
        commits.append((_git(repo, "rev-parse", "HEAD"), int(_git(repo, "log", "-1", "--format=%ct")) * 1000))

    # The project's settings (project, branches, pythons, matrix), this folder's paths.
    from asv.util import load_json  # type: ignore[import-untyped]

    config = load_json(ROOT / "benchmarks" / "asv.conf.json", js_comments=True)
    config.update(repo=str(repo), results_dir=str(folder / "results"), html_dir=str(folder / "html"))

    machine = {
        "arch": "x86_64",
        "cpu": "test CPU",
        "machine": "test-machine",
        "num_cpu": "2",
        "os": "Linux",
        "ram": "1",
    }
    requirements = config["matrix"]["req"]
    python = config["pythons"][0]
    results = folder / "results"
    _write_json(
        results / "benchmarks.json",
        {
            BENCHMARK: {
                "code": "def track_time_ratio(self, comparison): ...",
                "name": BENCHMARK,
                "param_names": ["comparison"],
                "params": PARAMS,
                "timeout": 300.0,
                "type": "track",
                "unit": "ours / peer",
                "version": "1",
            },
            "version": 2,
        },
    )
    _write_json(results / machine["machine"] / "machine.json", {**machine, "version": 1})
    for index, (commit, date) in enumerate(commits):
        ratios = [0.8 - 0.05 * index, 0.2 + 0.01 * index]
        _write_json(
            results / machine["machine"] / f"{commit[:8]}-virtualenv-py{python}.json",
            {
                "commit_hash": commit,
                "env_name": f"virtualenv-py{python}",
                "date": date,
                "params": {**machine, "python": python, **requirements},
                "python": python,
                "requirements": requirements,
                "env_vars": {},
                "result_columns": ["result", "params", "version", "started_at", "duration"],
                "results": {BENCHMARK: [ratios, PARAMS, "1", date + 60_000, 12.0]},
                "durations": {},
                "version": 2,
            },
        )
    _write_json(folder / "asv.conf.json", config)


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> PublishedPages:
    _asv_template()
    chromium = _chromium()
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    folder = tmp_path_factory.mktemp("asv")
    _results_set(folder)
    publish = subprocess.run(
        [sys.executable, "-m", "asv", "publish", "--no-pull", "--config", str(folder / "asv.conf.json")],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert publish.returncode == 0, publish.stdout[-3000:] + publish.stderr[-3000:]
    shutil.copytree(folder / "html", folder / "html-as-asv-wrote")
    assert offline_pages.make_pages_offline(folder / "html") == [folder / "html" / "index.html"]
    return PublishedPages(offline=folder / "html", as_asv_wrote=folder / "html-as-asv-wrote", chromium=chromium)


class _RecordingHandler(SimpleHTTPRequestHandler):
    def __init__(self, *arguments: Any, requested: list[str], **keywords: Any) -> None:
        self.requested = requested
        super().__init__(*arguments, **keywords)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.requested.append(self.path.split("?")[0])

    def log_message(self, format: str, *arguments: Any) -> None:
        pass


@dataclass
class _Server:
    url: str
    requested: list[str]


@pytest.fixture
def serve() -> Iterator[Callable[[Path], _Server]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(directory: Path) -> _Server:
        requested: list[str] = []
        handler = functools.partial(_RecordingHandler, directory=str(directory), requested=requested)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        servers.append((server, thread))
        return _Server(f"http://127.0.0.1:{server.server_address[1]}", requested)

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def _dump_dom(chromium: str, url: str, profile: Path) -> str:
    """The page's DOM once Chromium has loaded it and run its scripts (20 s of virtual time at most)."""
    completed = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def test_graph_page_draws_offline(published: PublishedPages, serve: Callable[[Path], _Server], tmp_path: Path) -> None:
    server = serve(published.offline)
    dom = _dump_dom(published.chromium, f"{server.url}/index.html#{BENCHMARK}", tmp_path / "profile")
    assert FAILED_TO_LOAD not in dom
    assert dom.count('<canvas class="flot-base"') >= 1, dom[-3000:]
    for comparison in COMPARISONS:
        assert f">comparison-{comparison}</td>" in dom  # the graph's legend: one line per series
    assert {f"/vendor/{copy}" for copy in offline_pages.CDN_COPIES.values()} <= set(server.requested)
    assert any(path.endswith(f"/{BENCHMARK}.json") for path in server.requested)


def test_pages_as_asv_wrote_them_fail_offline(
    published: PublishedPages, serve: Callable[[Path], _Server], tmp_path: Path
) -> None:
    """The control: without the local copies the same pages show only asv's error, as issue 14 reported."""
    server = serve(published.as_asv_wrote)
    dom = _dump_dom(published.chromium, f"{server.url}/index.html#{BENCHMARK}", tmp_path / "profile")
    assert FAILED_TO_LOAD in dom
    assert "flot-base" not in dom
