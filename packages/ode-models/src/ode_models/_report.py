"""Compare training runs: the paper's table 1 in Markdown and its figure 3 as PNGs."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._metrics import METRICS, RESULTS
from ._regularization import REGULARIZERS

__all__ = ["PLOTS", "load_run", "report"]

PLOTS = ("test_error.png", "nfe.png")
"""Files :func:`report` writes: test error per epoch (every run), NFE-F / NFE-B per epoch (ODE models)."""


def load_run(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A run folder's ``results.json`` (if finished) and ``metrics.jsonl``.

    Returns
    -------
    dict
        ``dir``, ``results`` (``None`` while the run is unfinished) and
        ``metrics`` (one dict per epoch).

    Raises
    ------
    FileNotFoundError
        The folder has neither file.
    ValueError
        A file is not valid JSON (the message names it).
    """
    directory = Path(run_dir)
    results_path, metrics_path = directory / RESULTS, directory / METRICS
    if not results_path.is_file() and not metrics_path.is_file():
        raise FileNotFoundError(f"{directory}: not a run folder (no {RESULTS} or {METRICS})")
    results: dict[str, Any] | None = None
    metrics: list[dict[str, Any]] = []
    try:
        if results_path.is_file():
            results = json.loads(results_path.read_text(encoding="utf-8"))
        if metrics_path.is_file():
            lines = metrics_path.read_text(encoding="utf-8").splitlines()
            metrics = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise ValueError(f"{directory}: invalid JSON ({exc})") from exc
    return {"dir": directory, "results": results, "metrics": metrics}


def _label(run: dict[str, Any], counts: dict[str, int]) -> str:
    name = _model(run)
    return name if counts[name] == 1 else f"{name} ({run['dir'].name})"


def _model(run: dict[str, Any]) -> str:
    results = run["results"]
    if results is not None:
        return str(results.get("model", run["dir"].name))
    return str(run["dir"].name)


def _bytes(value: Any) -> str:
    if not isinstance(value, (int, float)) or value <= 0:
        return "—"
    return f"{value / 2**20:,.0f} MiB"


def _seconds(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "—"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _nfe(value: Any, ode: bool) -> str:
    return f"{value:.1f}" if ode and isinstance(value, (int, float)) else "—"


def _is_ode(run: dict[str, Any]) -> bool:
    return any(m.get("nfe_forward", 0) > 0 for m in run["metrics"]) or bool(
        run["results"] and (run["results"].get("nfe_forward") or 0) > 0
    )


_REGULARIZER_COLUMNS = {"kinetic_energy": "Kinetic energy", "jacobian_norm": "Jacobian norm"}


def _regularizers(runs: list[dict[str, Any]]) -> list[str]:
    """The regularisers any of the runs trained with, in :data:`REGULARIZERS` order."""
    return [name for name in REGULARIZERS if any(name in m for run in runs for m in run["metrics"])]


def _row(run: dict[str, Any], label: str, regularizers: list[str]) -> str:
    results = run["results"]
    last = run["metrics"][-1] if run["metrics"] else {}
    ode = _is_ode(run)
    if results is None:  # unfinished: what the metrics say so far
        error = last.get("test_error")
        cells = [
            f"{label} (epoch {last.get('epoch', 0)}, unfinished)",
            f"{100 * error:.2f}%" if isinstance(error, (int, float)) else "—",
            "—",
            _bytes(last.get("peak_memory_bytes")),
            _seconds(sum(m.get("epoch_time_s", 0.0) for m in run["metrics"])),
            _nfe(last.get("nfe_forward"), ode),
            _nfe(last.get("nfe_backward"), ode),
        ]
    else:
        error = results.get("test_error")
        cells = [
            label,
            f"{100 * error:.2f}%" if isinstance(error, (int, float)) else "—",
            f"{results['params'] / 1e6:.2f}M ({results['params']:,})" if "params" in results else "—",
            _bytes(results.get("peak_memory_bytes")),
            _seconds(results.get("wall_time_s")),
            _nfe(results.get("nfe_forward"), ode),
            _nfe(results.get("nfe_backward"), ode),
        ]
    for name in regularizers:  # the last epoch's mean per batch, unweighted
        value = last.get(name)
        cells.append(f"{value:.4g}" if isinstance(value, (int, float)) else "—")
    return "| " + " | ".join(cells) + " |"


def _plot(runs: list[dict[str, Any]], labels: list[str], plot_dir: Path) -> list[Path]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("report: the plots need matplotlib (pip install matplotlib)") from exc
    plot_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    figure = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for run, label in zip(runs, labels):
        epochs = [m["epoch"] for m in run["metrics"]]
        axes.plot(epochs, [100 * m["test_error"] for m in run["metrics"]], marker=".", label=label)
    axes.set(xlabel="epoch", ylabel="test error (%)", title="Test error")
    axes.grid(alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    if runs:
        axes.legend()
    path = plot_dir / PLOTS[0]
    figure.savefig(path, dpi=120)
    written.append(path)

    ode_runs = [(run, label) for run, label in zip(runs, labels) if _is_ode(run)]
    if ode_runs:
        figure = Figure(figsize=(10, 4), layout="constrained")
        FigureCanvasAgg(figure)
        forward, backward = figure.subplots(1, 2)
        for run, label in ode_runs:
            epochs = [m["epoch"] for m in run["metrics"]]
            forward.plot(epochs, [m["nfe_forward"] for m in run["metrics"]], marker=".", label=label)
            backward.plot(epochs, [m["nfe_backward"] for m in run["metrics"]], marker=".", label=label)
        forward.set(xlabel="epoch", ylabel="NFE per batch", title="NFE-F (forward)")
        backward.set(xlabel="epoch", ylabel="NFE per batch", title="NFE-B (backward)")
        for axes in (forward, backward):
            axes.grid(alpha=0.3)
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
            axes.legend()
        path = plot_dir / PLOTS[1]
        figure.savefig(path, dpi=120)
        written.append(path)
    return written


def report(run_dirs: Sequence[str | os.PathLike[str]], *, plot_dir: str | os.PathLike[str] | None = None) -> str:
    """A Markdown table comparing runs (the paper's table 1), and optionally plots.

    Parameters
    ----------
    run_dirs : sequence of path-like
        Output folders of ``ode-models train`` (finished, or unfinished: then
        the row shows the last epoch's metrics).
    plot_dir : path-like, optional
        Where to write ``test_error.png`` (test error per epoch, every run)
        and ``nfe.png`` (NFE-F and NFE-B per epoch, ODE models only: the
        paper's figure 3c); nothing is plotted if ``None``.

    Returns
    -------
    str
        Columns Model | Test error | # Params | Memory | Time | NFE-F | NFE-B:
        last-epoch test error, parameters, peak memory (CUDA: max allocated;
        CPU: peak RSS of the process), training + testing time, and the mean
        evaluations per training batch in the last epoch; then, where a run
        trained with them, Kinetic energy and Jacobian norm (their last
        epoch's unweighted mean per batch).

    Raises
    ------
    FileNotFoundError, ValueError
        A folder is not a run, or its files are not valid JSON.
    """
    if not run_dirs:
        raise ValueError("run_dirs: expected at least one run folder")
    runs = [load_run(d) for d in run_dirs]
    counts: dict[str, int] = {}
    for run in runs:
        counts[_model(run)] = counts.get(_model(run), 0) + 1
    labels = [_label(run, counts) for run in runs]
    regularizers = _regularizers(runs)
    extra = "".join(f" {_REGULARIZER_COLUMNS[name]} |" for name in regularizers)
    lines = [
        "| Model | Test error | # Params | Memory | Time | NFE-F | NFE-B |" + extra,
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(regularizers),
        *(_row(run, label, regularizers) for run, label in zip(runs, labels)),
    ]
    if plot_dir is not None:
        _plot(runs, labels, Path(plot_dir))
    return "\n".join(lines) + "\n"
