"""Run the documented training runs and keep what they measured, for benchmarks/tables.py.

    python benchmarks/reproduce.py quickstart    # the README's main job (about 2 minutes)
    python benchmarks/reproduce.py mnist-full    # full MNIST, 5 epochs, four models (about 40 minutes)
    python benchmarks/reproduce.py mnist-full --only odenet-regularised resnet6   # some of them again
    python benchmarks/reproduce.py density       # a CNF on eight Gaussians (about 5 minutes)
    python benchmarks/reproduce.py density-mnist # a CNF on MNIST, one epoch (about 40 minutes)
    python benchmarks/reproduce.py solver-choice # one ODE-Net's solver options (about 25 minutes)
    python benchmarks/reproduce.py latent        # the latent ODE and its RNN baseline on spirals

Each run goes into ``benchmarks/measured/<name>/`` (one folder per model for
``mnist-full``) through ``python -m ode_models train`` with the options the
documentation shows, and gets ``command.json`` beside its ``results.json``
and ``metrics.jsonl``: the command as a user would type it and the machine.
Checkpoints are not kept. Run it on a quiet machine: the tables report the
runs' times.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "benchmarks" / "measured"
MNIST_RAW = "../shared/data/MNIST/raw"
"""Where the documentation's commands read MNIST: beside the repository's root."""


@dataclass(frozen=True)
class Run:
    """One documented ``ode-models train`` command and the folder its measurement is kept in."""

    folder: str
    options: str
    out: str

    @property
    def command(self) -> str:
        """The command as the documentation shows it."""
        return f"ode-models train {self.options} --out {self.out}"


QUICK_START = Run("quickstart", "--model odenet --epochs 10 --gradient checkpoint", "runs/quickstart")


def _mnist_full(name: str, model: str, extra: str = "") -> Run:
    options = f"--dataset mnist --model {model} --data-dir {MNIST_RAW} --epochs 5 --threads 2{extra}"
    return Run(f"mnist-full/{name}", options, f"runs/{name}")


# The regularised ODE-Net: the kinetic energy regulariser (Finlay et al. 2020) straightens the dynamics
# enough that one dopri5 step over [0, 1] passes the error test, which --first-step 1 lets the solver try
# (Hairer's first-step estimate would start at a quarter of it): 7 evaluations instead of 26; backprop,
# since with one step the graph is small and a replay would only add evaluations. The weight: 1e-3 gave
# the same 7 evaluations at 0.79% test error (measured 2026-12-02 by this command with 1e-3), 3e-4 0.60%.
REGULARISED = " --gradient backprop --kinetic-energy 3e-4 --first-step 1"

# The solver options of one ODE-Net, each changed alone from the default (dopri5, rtol = atol = 1e-3, the
# adjoint): one epoch of full MNIST at the learning rate 0.1 (the schedule's first decay comes after it). Not
# the embedded subset: 5 epochs of its 4,000 images leave an ODE-Net at 35% test error (measured
# 2026-12-02), too far from trained for the options' effects on the error to mean anything.
SOLVER_CHOICES = {
    "default": "",
    "rtol-1e-2": " --rtol 1e-2 --atol 1e-2",
    "rtol-1e-4": " --rtol 1e-4 --atol 1e-4",
    "bosh3": " --method bosh3",
    "seminorm": " --seminorm",
    "backprop": " --gradient backprop",
    "checkpoint": " --gradient checkpoint",
    "regularised": REGULARISED,
}

RUNS: dict[str, tuple[Run, ...]] = {
    "quickstart": (QUICK_START,),
    "density": (Run("density/eight-gaussians", "--task density --dataset eight-gaussians --epochs 8", "runs/cnf"),),
    "density-mnist": (
        Run(
            "density/mnist",
            f"--task density --dataset mnist --data-dir {MNIST_RAW} --epochs 1 --limit-test 2000 --threads 2",
            "runs/cnf-mnist",
        ),
    ),
    "solver-choice": tuple(
        Run(
            f"solver-choice/{name}",
            f"--dataset mnist --data-dir {MNIST_RAW} --epochs 1 --threads 2{extra}",
            f"runs/{name}",
        )
        for name, extra in SOLVER_CHOICES.items()
    ),
    "latent": (
        Run("latent/latent-ode", "--task latent --epochs 100", "runs/latent-ode"),
        Run("latent/rnn", "--task latent --model rnn --epochs 100", "runs/latent-rnn"),
    ),
    "mnist-full": (
        _mnist_full("odenet", "odenet", " --gradient checkpoint"),
        _mnist_full("odenet-regularised", "odenet", REGULARISED),
        _mnist_full("resnet1", "resnet1"),
        _mnist_full("resnet6", "resnet6"),
    ),
}


def measure(run: Run, data_dir: Path) -> None:
    """Train ``run`` into its folder under ``benchmarks/measured`` and record how."""
    out = MEASURED / run.folder
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    options = shlex.split(run.options)
    if "--data-dir" in options:  # the same files, wherever this checkout sits
        options[options.index("--data-dir") + 1] = str(data_dir)
    subprocess.run(
        [sys.executable, "-m", "ode_models", "train", *options, "--out", str(out), "--no-progress"],
        check=True,
        cwd=ROOT,
    )
    (out / "checkpoint.pt").unlink(missing_ok=True)
    # Only now: the benchmarks package pins threads on import, and the run must
    # use what a user's run would.
    import torch

    from benchmarks import _common

    machine = _common.machine_info({"torch": torch.__version__})
    _common.write_json(str(out / "command.json"), {"machine": machine, "command": run.command})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RUNS), help="which documented runs")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "MNIST" / "raw",
        help="MNIST's raw IDX files for mnist-full (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="RUN",
        help="measure only these runs of the set (their folder names), keeping the others' measurements",
    )
    args = parser.parse_args(argv)
    chosen = RUNS[args.name]
    if args.only is not None:
        names = {run.folder.rsplit("/", 1)[-1]: run for run in chosen}
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"--only: unknown runs {unknown}; {args.name} has {', '.join(names)}")
        chosen = tuple(names[name] for name in args.only)
    for run in chosen:
        print(f"{run.folder}: {run.command}", flush=True)
        measure(run, args.data_dir.resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
