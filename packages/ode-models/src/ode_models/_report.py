"""Compare training runs: the paper's table 1 in Markdown, its figure 3 and the flows' densities as PNGs.

Runs of one task share a table; its second column is the task's primary
test metric (test error, or a flow's test NLL). A density run whose
checkpoint is there also gets its picture: the true density, the flow's
and samples from the flow (an image flow: test images and samples).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._augmented import REGULARIZERS
from ._checkpoint import CHECKPOINT, load_checkpoint
from ._metrics import METRICS, RESULTS
from ._tasks import IMAGE_DENSITIES, TASKS, Task, get_task

__all__ = ["PLOTS", "load_run", "report", "write_plots"]

PLOTS = ("test_error.png", "test_nll.png", "test_extrapolation_mse.png", "nfe.png", "density.png", "latent.png")
"""Files :func:`write_plots` may write: each task's primary metric per epoch (``test_error.png`` for the
classifiers, ``test_nll.png`` for the flows, ``test_extrapolation_mse.png`` for the latent models),
NFE-F / NFE-B per epoch (ODE models) and, for runs with a checkpoint, a flow's ``density.png`` and a
latent model's ``latent.png`` (``<name>-<run folder>.png`` for each of several)."""


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


def _task(run: dict[str, Any]) -> Task:
    """The run's task: from its results or checkpointed config, else what its metrics hold."""
    results = run["results"] or {}
    name = results.get("task") or results.get("config", {}).get("task")
    if name is None:  # an unfinished run: the task whose primary metric its lines hold
        tasks = [task for task in TASKS.values() if any(task.primary in m for m in run["metrics"])]
        return tasks[0] if tasks else get_task("classify")
    return get_task(str(name))


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


def _parameters(value: Any) -> str:
    """``0.21M (208,266)``; a count alone below 10,000 (the flows and latent models)."""
    if not isinstance(value, int):
        return "—"
    return f"{value:,}" if value < 10_000 else f"{value / 1e6:.2f}M ({value:,})"


def _nfe(value: Any, ode: bool) -> str:
    return f"{value:.1f}" if ode and isinstance(value, (int, float)) else "—"


def _is_ode(run: dict[str, Any]) -> bool:
    return any(m.get("nfe_forward", 0) > 0 for m in run["metrics"]) or bool(
        run["results"] and (run["results"].get("nfe_forward") or 0) > 0
    )


# Columns after the fixed ones, where any run of the table has the metric: heading and format of the
# last epoch's value. An image flow's bits per dimension; the regularisers' unweighted means per batch.
_EXTRA_COLUMNS = {
    "test_bits_per_dim": ("Bits/dim", "{:.3f}"),
    **{name: (name.replace("_", " ").capitalize(), "{:.4g}") for name in REGULARIZERS},
}


def _extra_columns(runs: list[dict[str, Any]]) -> list[str]:
    """The metrics of :data:`_EXTRA_COLUMNS` any of the runs has, in its order."""
    return [name for name in _EXTRA_COLUMNS if any(name in m for run in runs for m in run["metrics"])]


def _row(run: dict[str, Any], label: str, extra: list[str]) -> str:
    results = run["results"]
    last = run["metrics"][-1] if run["metrics"] else {}
    ode = _is_ode(run)
    task = _task(run)

    def primary(value: Any) -> str:
        return task.format_primary(value) if isinstance(value, (int, float)) else "—"

    if results is None:  # unfinished: what the metrics say so far
        cells = [
            f"{label} (epoch {last.get('epoch', 0)}, unfinished)",
            primary(last.get(task.primary)),
            "—",
            _bytes(last.get("peak_memory_bytes")),
            _seconds(sum(m.get("epoch_time_s", 0.0) for m in run["metrics"])),
            _nfe(last.get("nfe_forward"), ode),
            _nfe(last.get("nfe_backward"), ode),
        ]
    else:
        cells = [
            label,
            primary(results.get(task.primary)),
            _parameters(results.get("params")),
            _bytes(results.get("peak_memory_bytes")),
            _seconds(results.get("wall_time_s")),
            _nfe(results.get("nfe_forward"), ode),
            _nfe(results.get("nfe_backward"), ode),
        ]
    for name in extra:
        value = last.get(name)
        cells.append(_EXTRA_COLUMNS[name][1].format(value) if isinstance(value, (int, float)) else "—")
    return "| " + " | ".join(cells) + " |"


def _figure(size: tuple[float, float]) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib is a dependency
        raise ImportError("report: the plots need matplotlib (pip install matplotlib)") from exc
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _integer_epochs(axes: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.grid(alpha=0.3)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _primary_plot(task: Task, runs: list[dict[str, Any]], labels: list[str], path: Path) -> None:
    figure = _figure((6, 4))
    axes = figure.add_subplot()
    scale = 100.0 if task.name == "classify" else 1.0  # the error in percent
    for run, label in zip(runs, labels):
        epochs = [m["epoch"] for m in run["metrics"]]
        axes.plot(epochs, [scale * m[task.primary] for m in run["metrics"]], marker=".", label=label)
    unit = " (%)" if task.name == "classify" else ""
    axes.set(xlabel="epoch", ylabel=task.primary_label.lower() + unit, title=task.primary_label)
    _integer_epochs(axes)
    axes.legend()
    figure.savefig(path, dpi=120)


def _nfe_plot(runs: list[dict[str, Any]], labels: list[str], path: Path) -> None:
    figure = _figure((10, 4))
    forward, backward = figure.subplots(1, 2)
    for run, label in zip(runs, labels):
        epochs = [m["epoch"] for m in run["metrics"]]
        forward.plot(epochs, [m["nfe_forward"] for m in run["metrics"]], marker=".", label=label)
        backward.plot(epochs, [m["nfe_backward"] for m in run["metrics"]], marker=".", label=label)
    forward.set(xlabel="epoch", ylabel="NFE per batch", title="NFE-F (forward)")
    backward.set(xlabel="epoch", ylabel="NFE per batch", title="NFE-B (backward)")
    for axes in (forward, backward):
        _integer_epochs(axes)
        axes.legend()
    figure.savefig(path, dpi=120)


DENSITY_GRID = 96
"""Points per side of the grid on which :func:`write_plots` draws a flow's density."""
_DENSITY_EXTENT = 4.5


def _density_plot(run: dict[str, Any], label: str, path: Path) -> bool:
    """The true density, the flow's on a grid, and the flow's samples; ``False`` without a checkpoint."""
    rebuilt = _rebuilt(run)
    if rebuilt is None:
        return False
    import torch

    from ._toy import toy_density

    model, config = rebuilt
    if config.dataset in IMAGE_DENSITIES:
        return _image_samples_plot(model, config, label, path)
    axis = torch.linspace(-_DENSITY_EXTENT, _DENSITY_EXTENT, DENSITY_GRID)
    grid = torch.cartesian_prod(axis, axis)  # x varies slowest: rows of the image are x, transposed below
    density = toy_density(config.dataset)
    with torch.no_grad():
        flow = model(grid).exp().reshape(DENSITY_GRID, DENSITY_GRID).T
    true = density.log_density(grid.double()).exp().reshape(DENSITY_GRID, DENSITY_GRID).T
    samples = model.sample(2000, torch.Generator().manual_seed(0))
    figure = _figure((12, 4))
    extent = (-_DENSITY_EXTENT, _DENSITY_EXTENT, -_DENSITY_EXTENT, _DENSITY_EXTENT)
    panels = figure.subplots(1, 3)
    panels[0].imshow(true.numpy(), origin="lower", extent=extent, cmap="magma")
    panels[0].set_title(f"{config.dataset}: true density")
    panels[1].imshow(flow.numpy(), origin="lower", extent=extent, cmap="magma")
    panels[1].set_title(f"{label}: the flow's density")
    panels[2].scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=1, alpha=0.5)
    panels[2].set(xlim=extent[:2], ylim=extent[2:], title="samples from the flow", aspect="equal")
    figure.savefig(path, dpi=120)
    return True


IMAGE_SAMPLES = 8
"""Images per side of the grids :func:`write_plots` draws for an image flow: test images, then samples."""


def _image_samples_plot(model: Any, config: Any, label: str, path: Path) -> bool:
    """Test images beside samples from the flow, each an ``IMAGE_SAMPLES`` x ``IMAGE_SAMPLES`` grid."""
    import torch

    _, test_set = get_task(config.task).load_data(config)
    count = min(IMAGE_SAMPLES**2, len(test_set))
    (real,) = test_set.batch(range(count))
    samples = model.sample(IMAGE_SAMPLES**2, torch.Generator().manual_seed(0))

    def grid(images: Any) -> Any:  # (n, 1, H, W) -> one (8 H, 8 W) picture, blank where n < 64
        height, width = images.shape[-2:]
        canvas = torch.ones(IMAGE_SAMPLES * height, IMAGE_SAMPLES * width)
        for index, image in enumerate(images[:, 0]):
            row, column = divmod(index, IMAGE_SAMPLES)
            canvas[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
        return canvas.numpy()

    figure = _figure((8, 4))
    panels = figure.subplots(1, 2)
    for axes, images, title in ((panels[0], real, "test images"), (panels[1], samples, f"{label}: samples")):
        axes.imshow(grid(images), cmap="gray", vmin=0.0, vmax=1.0)
        axes.set(title=f"{config.dataset}: {title}", xticks=[], yticks=[])
    figure.savefig(path, dpi=120)
    return True


def _rebuilt(run: dict[str, Any]) -> tuple[Any, Any] | None:
    """The run's trained model (eval mode) and config, from its checkpoint; ``None`` without one."""
    checkpoint_path = run["dir"] / CHECKPOINT
    if not checkpoint_path.is_file():
        return None
    from ._config import TrainConfig

    state = load_checkpoint(checkpoint_path)
    config = TrainConfig(**{**state["config"], "resume": False})
    model = get_task(config.task).build(config)
    model.load_state_dict(state["model"])
    model.eval()
    return model, config


LATENT_EXAMPLES = 4
"""Test spirals :func:`write_plots` draws for a latent run."""


def _latent_plot(run: dict[str, Any], label: str, path: Path) -> bool:
    """Test spirals: observed points, truth, interpolation, extrapolation; ``False`` without a checkpoint."""
    rebuilt = _rebuilt(run)
    if rebuilt is None:
        return False
    import torch

    model, config = rebuilt
    _, test_set = get_task(config.task).load_data(config)
    values, times, window, future = test_set.batch(range(LATENT_EXAMPLES))
    from ._latent import WINDOW, spiral_grid

    with torch.no_grad():
        predicted = model.predict(values, times, spiral_grid(values.dtype))
    figure = _figure((4 * LATENT_EXAMPLES, 4))
    for index, axes in enumerate(figure.subplots(1, LATENT_EXAMPLES)):
        truth = torch.cat((window[index], future[index]))
        axes.plot(truth[:, 0], truth[:, 1], color="0.7", linewidth=3, label="true")
        axes.plot(predicted[index, :WINDOW, 0], predicted[index, :WINDOW, 1], color="C0", label="interpolation")
        axes.plot(predicted[index, WINDOW:, 0], predicted[index, WINDOW:, 1], "--", color="C3", label="extrapolation")
        axes.scatter(values[index, :, 0], values[index, :, 1], s=8, color="k", label="observed", zorder=3)
        axes.set(aspect="equal", title=f"{label}: test spiral {index}")
    axes.legend(loc="lower right", fontsize="small")
    figure.savefig(path, dpi=120)
    return True


def write_plots(run_dirs: Sequence[str | os.PathLike[str]], plot_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the runs' plots (``test_error.png``, ``nfe.png``, ``density.png``... see ``PLOTS``) into ``plot_dir``.

    Parameters
    ----------
    run_dirs : sequence of path-like
        Output folders of ``ode-models train``.
    plot_dir : path-like
        Created if missing.

    Returns
    -------
    list of Path
    """
    runs, labels = _load(run_dirs)
    directory = Path(plot_dir)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for task, members in _by_task(runs, labels).items():
        path = directory / f"{task.primary}.png"
        _primary_plot(task, [runs[i] for i in members], [labels[i] for i in members], path)
        written.append(path)
    ode = [i for i, run in enumerate(runs) if _is_ode(run)]
    if ode:
        path = directory / "nfe.png"
        _nfe_plot([runs[i] for i in ode], [labels[i] for i in ode], path)
        written.append(path)
    for name, plot in (("density", _density_plot), ("latent", _latent_plot)):
        members = [i for i, run in enumerate(runs) if _task(run).name == name]
        for i in members:
            path = directory / (f"{name}.png" if len(members) == 1 else f"{name}-{runs[i]['dir'].name}.png")
            if plot(runs[i], labels[i], path):
                written.append(path)
    return written


def _load(run_dirs: Sequence[str | os.PathLike[str]]) -> tuple[list[dict[str, Any]], list[str]]:
    if not run_dirs:
        raise ValueError("run_dirs: expected at least one run folder")
    runs = [load_run(d) for d in run_dirs]
    counts: dict[str, int] = {}
    for run in runs:
        counts[_model(run)] = counts.get(_model(run), 0) + 1
    return runs, [_label(run, counts) for run in runs]


def _by_task(runs: list[dict[str, Any]], labels: list[str]) -> dict[Task, list[int]]:
    groups: dict[Task, list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(_task(run), []).append(index)
    return groups


def report(run_dirs: Sequence[str | os.PathLike[str]], *, plot_dir: str | os.PathLike[str] | None = None) -> str:
    """A Markdown table comparing runs (the paper's table 1), and optionally plots.

    Parameters
    ----------
    run_dirs : sequence of path-like
        Output folders of ``ode-models train`` (finished, or unfinished: then
        the row shows the last epoch's metrics).
    plot_dir : path-like, optional
        Where to write the plots (:func:`write_plots`: ``test_error.png``,
        the test error per epoch; ``nfe.png``, NFE-F and NFE-B per epoch of
        the ODE models, the paper's figure 3c; for flows ``test_nll.png``
        and ``density.png``); nothing is plotted if ``None``.

    Returns
    -------
    str
        One table per task, runs in the order given. Columns Model | Test
        error (a flow's: Test NLL (nats)) | # Params | Memory | Time | NFE-F
        | NFE-B: the last epoch's primary metric, parameters, peak memory
        (CUDA: max allocated; CPU: peak RSS of the process), training +
        testing time, and the mean evaluations per training batch in the
        last epoch; then, where a run has them, an image flow's test
        Bits/dim, and Kinetic energy and Jacobian norm (the regularisers'
        last epoch's unweighted mean per batch).

    Raises
    ------
    FileNotFoundError, ValueError
        A folder is not a run, or its files are not valid JSON.
    """
    runs, labels = _load(run_dirs)
    tables = []
    for task, members in _by_task(runs, labels).items():
        group = [runs[i] for i in members]
        extra = _extra_columns(group)
        headings = "".join(f" {_EXTRA_COLUMNS[name][0]} |" for name in extra)
        lines = [
            f"| Model | {task.primary_label} | # Params | Memory | Time | NFE-F | NFE-B |" + headings,
            "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(extra),
            *(_row(runs[i], labels[i], extra) for i in members),
        ]
        tables.append("\n".join(lines) + "\n")
    if plot_dir is not None:
        write_plots(run_dirs, plot_dir)
    return "\n".join(tables)
