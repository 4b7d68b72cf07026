"""``ode-models``: train the paper's classifiers and compare runs.

``ode-models train ...`` runs :func:`ode_models.train`; ``ode-models report
RUN_DIR...`` prints :func:`ode_models.report`'s table and writes its plots.
Errors go to stderr with a non-zero exit status: 2 for bad arguments, 1 for a
run that cannot start or continue, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from ode_adjoint import GRADIENTS
from ode_core import METHODS

from ._augmented import DIVERGENCES
from ._config import EMBEDDED, PAPER_EPOCHS, RunError, TrainConfig
from ._report import report, write_plots
from ._tasks import TASKS
from ._train import train

__all__ = ["main"]

PROG = "ode-models"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _weight(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def _choices(names: Sequence[str], default: str) -> str:
    return f"one of {', '.join(names)} (default: {default})"


def _all(groups: Iterable[Sequence[str]]) -> list[str]:
    """The names of every group, each once, in order."""
    return list(dict.fromkeys(name for group in groups for name in group))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Train the Neural ODE paper's models (classifiers, flows) and compare runs."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{train,report}")

    run = commands.add_parser(
        "train",
        help="train one model (metrics, checkpoints and results in --out)",
        description=(
            "Train one model. classify: the paper's schedule, SGD, momentum 0.9, lr 0.1 x batch/128, divided by 10 "
            f"at epochs 60, 100, 140 of {PAPER_EPOCHS} (rescaled to --epochs, rounded to the nearest epoch); "
            "density: maximum likelihood, Adam at a constant 1e-3 (FFJORD's); latent: the ELBO, Adam at 1e-2. "
            "Under torchrun, trains on every process with DistributedDataParallel."
        ),
    )
    run.add_argument(
        "--task",
        choices=list(TASKS),
        default="classify",
        help="what to train: classify (the paper's image classifiers), density (a continuous normalizing flow "
        "on a 2-D toy density) or latent (the latent ODE on irregularly sampled spirals) (default: %(default)s)",
    )
    run.add_argument(
        "--dataset",
        choices=_all(task.datasets for task in TASKS.values()),
        default="",
        metavar="DATASET",
        help="; ".join(f"{task.name}: {_choices(task.datasets, task.default_dataset)}" for task in TASKS.values()),
    )
    run.add_argument(
        "--model",
        choices=_all(task.models for task in TASKS.values()),
        default="",
        metavar="MODEL",
        help="; ".join(f"{task.name}: {_choices(task.models, task.default_model)}" for task in TASKS.values()),
    )
    run.add_argument(
        "--data-dir",
        default=None,
        help=(
            "folder with the raw MNIST IDX files (plain or .gz, or MNIST/raw/ below it) or CIFAR-10's "
            "cifar-10-batches-py; read offline, never written to (default: MNIST's "
            f"'{EMBEDDED}', the 4000/1000-image subset shipped with the package; CIFAR-10 needs one)"
        ),
    )
    run.add_argument(
        "--out", required=True, help="output folder: metrics.jsonl, checkpoint.pt, results.json (required, no default)"
    )
    run.add_argument(
        "--epochs",
        type=_positive_int,
        default=PAPER_EPOCHS,
        help="epochs; the milestones are rescaled (default: %(default)s, the paper's; on a CPU try 10 first)",
    )
    run.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="global batch size (default: "
        + ", ".join(f"{task.default_batch_size} for {task.name}" for task in TASKS.values())
        + ")",
    )
    run.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="initial learning rate (default: classify 0.1 x batch-size / 128, SGD; density 1e-3 and latent 1e-2, "
        "Adam)",
    )
    run.add_argument("--momentum", type=float, default=0.9, help="SGD momentum, classify (default: %(default)s)")
    run.add_argument("--weight-decay", type=float, default=0.0, help="weight decay (default: %(default)s)")
    run.add_argument(
        "--method",
        choices=METHODS,
        default=None,
        metavar="METHOD",
        help=f"ODE solver, one of {', '.join(METHODS)} (default: dopri5; rk4 for rknet)",
    )
    run.add_argument(
        "--rtol", type=_positive_float, default=1e-3, help="solver relative tolerance (default: %(default)s)"
    )
    run.add_argument(
        "--atol", type=_positive_float, default=1e-3, help="solver absolute tolerance (default: %(default)s)"
    )
    run.add_argument(
        "--gradient",
        choices=GRADIENTS,
        default=None,
        help=f"gradient of the ODE block, one of {', '.join(GRADIENTS)} "
        "(default: adjoint for odenet and odenet-notime, backprop for rknet)",
    )
    run.add_argument(
        "--step-size", type=_positive_float, default=None, help="fixed step of fixed-step methods (default: 0.25)"
    )
    run.add_argument(
        "--first-step",
        type=_positive_float,
        default=None,
        help="an adaptive method's first trial step, e.g. 1 for the whole interval (default: Hairer's estimate)",
    )
    run.add_argument(
        "--seminorm", action="store_true", help="adjoint seminorm error control (default: off, the full norm)"
    )
    run.add_argument(
        "--kinetic-energy",
        type=_weight,
        default=0.0,
        metavar="W",
        help="weight of the ODE block's kinetic energy regulariser, the integral of ||f||^2 (Finlay et al. 2020; "
        "default: 0, off)",
    )
    run.add_argument(
        "--jacobian-norm",
        type=_weight,
        default=0.0,
        metavar="W",
        help="weight of the ODE block's Jacobian Frobenius norm regulariser, Hutchinson's estimate (default: 0, off)",
    )
    run.add_argument(
        "--divergence",
        choices=DIVERGENCES,
        default=None,
        help="density: the flow's trace, exact or Hutchinson's estimate (default: exact for the toys, "
        "hutchinson for mnist)",
    )
    run.add_argument(
        "--observations",
        type=_positive_int,
        default=30,
        help="latent: observations per spiral, each at its own times, 2 to 100 (default: %(default)s)",
    )
    run.add_argument(
        "--download",
        action="store_true",
        help="fetch the dataset into --data-dir with torchvision if its files are missing (needs network and "
        "'ode-models[download]'; default: off, nothing is downloaded)",
    )
    run.add_argument(
        "--no-augment",
        dest="augment",
        action="store_false",
        help="no random crops / flips (default: augment; MNIST crops, CIFAR-10 crops and flips)",
    )
    run.add_argument(
        "--test-batch-size", type=_positive_int, default=1000, help="batch size of the test pass (default: %(default)s)"
    )
    run.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help=_choices(("cpu", "cuda"), "cpu"))
    run.add_argument(
        "--seed", type=int, default=0, help="seeds weights, data order, augmentation (default: %(default)s)"
    )
    run.add_argument(
        "--limit-train", type=_positive_int, default=None, help="first N training images only (default: all)"
    )
    run.add_argument("--limit-test", type=_positive_int, default=None, help="first N test images only (default: all)")
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue from --out's checkpoint with the same options (default: off, a fresh run in an empty --out)",
    )
    run.add_argument(
        "--threads", type=_positive_int, default=None, help="torch.set_num_threads (default: torch's, one per core)"
    )
    run.add_argument(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (default: tqdm's bar on a terminal, if installed; one line per epoch in any case)",
    )
    run.add_argument(
        "--stop-after",
        type=_positive_int,
        default=None,
        help="stop after N epochs in all, resumable with --resume (default: run all --epochs)",
    )

    compare = commands.add_parser(
        "report",
        help="compare runs: Markdown table and plots",
        description="Print a Markdown table of runs per task (Model | Test error or Test NLL | # Params | Memory | "
        "Time | NFE-F | NFE-B) and write the plots to --plot-dir: the test metric and NFE per epoch, and a flow's "
        "density and samples (from its checkpoint).",
    )
    compare.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output folders of 'ode-models train'")
    compare.add_argument(
        "--plot-dir",
        default=None,
        help="where to write the PNG plots (default: the run's folder, or the folder holding all the runs)",
    )
    compare.add_argument("--no-plots", action="store_true", help="print the table only (default: table and plots)")
    return parser


def _plot_dir(given: str | None, runs: Sequence[str]) -> Path:
    """``--plot-dir``, or by default the one run's folder, or the folder
    that holds all the runs (never the current directory by surprise)."""
    if given is not None:
        return Path(given)
    if len(runs) == 1:
        return Path(runs[0])
    return Path(os.path.commonpath([os.path.abspath(run) for run in runs]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            options = {k: v for k, v in vars(args).items() if k != "command"}
            train(TrainConfig(**options))
        else:
            sys.stdout.write(report(args.runs))
            if not args.no_plots:
                written = write_plots(args.runs, _plot_dir(args.plot_dir, args.runs))
                sys.stderr.write(f"plots: {', '.join(map(str, written))}\n")
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted (the last checkpoint is kept: continue with --resume)\n")
        return 130
    except (RunError, ValueError, OSError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return 1
    return 0
