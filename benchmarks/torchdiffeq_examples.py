"""Run torchdiffeq's published examples unchanged, against torchdiffeq and against ode_adjoint through a shim.

    python benchmarks/torchdiffeq_examples.py EXAMPLES_DIR [--niters N] [--only NAME[:VARIANT]] [--json FILE]

``EXAMPLES_DIR`` holds torchdiffeq's ``examples/ode_demo.py``, ``latent_ode.py``,
``bouncing_ball.py``, ``cnf.py`` and ``learn_physics.py`` (for example ``git show
HEAD:examples/ode_demo.py`` from a clone of rtqichen/torchdiffeq, kept outside
this repository: their code is not part of the project). Each example runs in a
fresh subprocess, twice per variant: once with the installed ``torchdiffeq``
and once with a temporary package named ``torchdiffeq`` whose ``__init__.py`` is
``from ode_adjoint import *``, first on ``PYTHONPATH``. Only that import
differs; the example file is run as it is, with its own command-line flags:
backprop (no ``--adjoint``) and ``--adjoint`` where the example uses the flag
(``bouncing_ball.py`` parses ``--adjoint`` but never uses it, so it has one
variant); no plots unless ``--viz`` (then the examples' own ``--viz`` /
``--visualize True``: slow, ``cnf.py``'s most); ``MPLBACKEND=Agg``; in a
temporary working directory for the files it writes. The sizes are the
examples' own: ``--niters`` training iterations (``ode_demo.py`` also gets
``--test_freq niters // 2``), ``bouncing_ball.py`` ``--nbounces`` bounces
(its positional argument, with its gradient check), ``learn_physics.py``
``--num_iterations niters`` with events (its default).

The examples do not seed themselves: a small wrapper seeds ``random``, NumPy
and torch the same way for both, sets ``torch.set_num_threads`` (and the
OpenMP/BLAS variables) to ``--threads``, hides CUDA unless ``--cuda``, imports
numpy, torch, ``torchdiffeq`` and the example's other heavy modules, and then
times only the example's own code (run as ``__main__``, as ``python
example.py`` would). Its result comes back as JSON on the last line of the
output.

Reported for each (example, variant, library): the exit status (or the
error's last line), the wall time of the example's code, the last loss the
example printed (``bouncing_ball.py`` prints none: its last event time
instead), a few values read from the example's globals afterwards (final
loss at full precision, function evaluations where the example counts them),
then a Markdown table with ``loss like torchdiffeq's`` (relative difference
within ``--loss-rtol``), ``ratio`` = ode_adjoint time / torchdiffeq time
(below 1: ode_adjoint is faster; the two need not do the same number of
function evaluations) and ``CPU ratio``, the same for the process CPU time
of the example's code (steadier than wall time on a shared machine when
``--threads`` is 1). ``--json`` writes the command, the machine, the
settings, the per-pair summary and the rows. Exit status 1 when an
ode_adjoint run fails.
"""

from __future__ import annotations

# First: importing the package pins BLAS and OpenMP to one thread (the children get --threads).
from benchmarks import _common  # isort: skip

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHIM = "from ode_adjoint import *  # noqa: F403  (torchdiffeq's examples, run against ode_adjoint)\n"
LIBRARIES = ("torchdiffeq", "ode_adjoint")
RESULT_MARK = "@@torchdiffeq_examples@@ "

# The child: seeds, threads and imports, then the example's code as __main__, timed; the result as JSON
# on the last line of stdout. Written to a folder of its own (its sys.path[0] must not be the shim's).
CHILD = r"""
import importlib, json, os, random, sys, time, traceback, types

spec = json.loads(sys.argv[1])
result = {}
start = time.perf_counter()
import numpy
import torch

torch.set_num_threads(spec["threads"])
import torchdiffeq

for name in spec["preimport"]:
    importlib.import_module(name)
result["import_s"] = time.perf_counter() - start
result["torchdiffeq_file"] = torchdiffeq.__file__
result["torch_threads"] = torch.get_num_threads()
random.seed(spec["seed"])
numpy.random.seed(spec["seed"])
torch.manual_seed(spec["seed"])

path = spec["example"]
sys.argv = [path, *spec["argv"]]
sys.path[0] = os.path.dirname(path)  # what `python example.py` puts first
module = types.ModuleType("__main__")
module.__file__ = path
module.__builtins__ = __builtins__
sys.modules["__main__"] = module
with open(path, encoding="utf-8") as handle:
    code = compile(handle.read(), path, "exec")
start, start_cpu = time.perf_counter(), time.process_time()
try:
    exec(code, module.__dict__)
    result["status"] = 0
except SystemExit as stop:
    result["status"] = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
except BaseException as error:
    traceback.print_exc()
    result["status"] = 1
    result["error"] = (type(error).__name__ + ": " + str(error)).strip().splitlines()[0]
result["wall_s"] = time.perf_counter() - start
result["cpu_s"] = time.process_time() - start_cpu
extras = {}
for key, expression in spec["extras"].items():
    try:
        value = eval(expression, module.__dict__)
        value = value.reshape(-1)[-1] if hasattr(value, "reshape") else value
        extras[key] = float(value)
    except Exception:
        extras[key] = None
result["extras"] = extras
sys.stderr.flush()
sys.stdout.flush()
print("\n" + spec["mark"] + json.dumps(result), flush=True)
sys.exit(0 if result["status"] == 0 else 1)
"""


@dataclass(frozen=True)
class Example:
    """One example file: its variants' flags, how to size it, and what to read from its output."""

    name: str
    variants: dict[str, tuple[str, ...]]
    sizing: str  # "niters" or "nbounces"
    metric: str  # what the loss column shows
    pattern: str | None  # regex whose last match (group 1) is that metric, in the printed output
    extras: dict[str, str] = field(default_factory=dict)  # name -> expression in the example's globals
    preimport: tuple[str, ...] = ()
    viz: tuple[str, ...] = ()  # the example's own flags for its plots (--viz)

    @property
    def file(self) -> str:
        return self.name + ".py"

    def argv(self, variant: str, niters: int, nbounces: int, viz: bool = False) -> list[str]:
        if self.name == "ode_demo":  # --test_freq: report the whole-trajectory loss at the end and halfway
            sized = ["--niters", str(niters), "--test_freq", str(max(1, niters // 2))]
        elif self.name == "bouncing_ball":
            sized = [str(nbounces)]
        elif self.name == "learn_physics":
            sized = ["--num_iterations", str(niters), "--save", "figs"]
        else:
            sized = ["--niters", str(niters)]
        return [*sized, *self.variants[variant], *(self.viz if viz else ())]


EXAMPLES = {
    example.name: example
    for example in (
        Example(
            "ode_demo",
            {"backprop": (), "adjoint": ("--adjoint",)},
            "niters",
            "test loss",
            r"Total Loss\s+([-+0-9.eE]+|nan|inf)",
            {"final_loss": "loss"},
            (),
            ("--viz",),
        ),
        Example(
            "latent_ode",
            {"backprop": ("--adjoint", "False"), "adjoint": ("--adjoint", "True")},
            "niters",
            "running avg elbo",
            r"running avg elbo:\s+([-+0-9.eE]+|nan|inf)",
            {"final_loss": "loss", "nfe": "func.nfe"},
            ("matplotlib.pyplot",),
            ("--visualize", "True"),
        ),
        Example(
            "bouncing_ball",
            {"backprop": ()},  # its --adjoint flag is parsed and never used
            "nbounces",
            "last event time",
            None,
            {"metric": "event_times[-1]"},
            ("matplotlib.pyplot",),
        ),
        Example(
            "learn_physics",
            # Its --no_events model's training at lr 0.1 amplifies round-off: its gradients here agree
            # with torchdiffeq's to 6e-8 (relative, first iteration), its losses part by iteration 10.
            {"events": ()},
            "niters",
            "loss",
            r"(?m)^\d+ ([-+0-9.eE]+|nan|inf) \d+$",
            {"final_loss": "loss"},
            ("matplotlib.pyplot",),
        ),
        Example(
            "cnf",
            {"backprop": (), "adjoint": ("--adjoint",)},
            "niters",
            "running avg loss",
            r"running avg loss:\s+([-+0-9.eE]+|nan|inf)",
            {"final_loss": "loss"},
            ("matplotlib.pyplot", "sklearn.datasets", "PIL.Image"),
            ("--viz",),
        ),
    )
}


def parse_losses(text: str, pattern: str | None) -> list[float]:
    """Every value the example printed that ``pattern`` (group 1) matches, in order."""
    if pattern is None:
        return []
    return [float(match) for match in re.findall(pattern, text)]


def parse_result(stdout: str) -> dict[str, Any] | None:
    """The child's JSON result: the last line starting with the marker, or None (it died before)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return parsed
    return None


def relative_difference(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or not (math.isfinite(ours) and math.isfinite(theirs)):
        return None
    return abs(ours - theirs) / max(abs(theirs), 1e-12)


def child_environment(library: str, shim_root: str, threads: int, cuda: bool) -> dict[str, str]:
    env = dict(os.environ)
    for variable in _common.SINGLE_THREAD_VARIABLES:
        env[variable] = str(threads)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONHASHSEED"] = "0"
    if not cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != shim_root]
    if library == "ode_adjoint":
        paths.insert(0, shim_root)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    if not paths:
        del env["PYTHONPATH"]
    return env


def run_once(
    example: Example,
    variant: str,
    library: str,
    examples_dir: Path,
    roots: dict[str, str],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """One run of one example in a fresh interpreter and working directory."""
    argv = example.argv(variant, settings["niters"], settings["nbounces"], settings["viz"])
    spec = {
        "example": str((examples_dir / example.file).resolve()),
        "argv": argv,
        "seed": settings["seed"],
        "threads": settings["threads"],
        "preimport": list(example.preimport),
        "extras": example.extras,
        "mark": RESULT_MARK,
    }
    env = child_environment(library, roots["shim"], settings["threads"], settings["cuda"])
    row: dict[str, Any] = {"example": example.name, "variant": variant, "library": library, "argv": argv}
    with tempfile.TemporaryDirectory(prefix=f"{example.name}-") as workdir:
        started = time.perf_counter()
        try:
            done = subprocess.run(
                [sys.executable, roots["child"], json.dumps(spec)],
                cwd=workdir,
                env=env,
                capture_output=True,
                text=True,
                timeout=settings["timeout"],
                check=False,
            )
            stdout, stderr, returncode = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as expired:
            stdout = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            stderr = expired.stderr.decode() if isinstance(expired.stderr, bytes) else (expired.stderr or "")
            returncode = None
        row["process_s"] = time.perf_counter() - started
    result = parse_result(stdout) or {}
    row["returncode"] = returncode
    row["status"] = (
        "timeout" if returncode is None else ("ok" if returncode == 0 and result.get("status") == 0 else "error")
    )
    row["wall_s"] = result.get("wall_s")
    row["cpu_s"] = result.get("cpu_s")
    row["import_s"] = result.get("import_s")
    row["torchdiffeq_file"] = result.get("torchdiffeq_file")
    row["extras"] = result.get("extras", {})
    losses = parse_losses(stdout, example.pattern)
    row["losses"] = losses
    row["loss"] = losses[-1] if losses else row["extras"].get("metric")
    if row["status"] != "ok":
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        if returncode is None:
            row["error"] = f"timed out after {settings['timeout']:g} s"
        else:
            row["error"] = result.get("error") or (lines[-1] if lines else f"exit status {returncode}")
        row["stderr_tail"] = "\n".join(lines[-25:])
    return row


def _loss(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


def pair_rows(rows: list[dict[str, Any]], loss_rtol: float) -> list[dict[str, Any]]:
    """One summary per (example, variant): both libraries' status, loss, best time, and the comparisons."""
    pairs: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        pairs.setdefault((row["example"], row["variant"]), {name: [] for name in LIBRARIES})[row["library"]].append(row)
    summaries = []
    for (name, variant), runs in pairs.items():
        summary: dict[str, Any] = {"example": name, "variant": variant, "metric": EXAMPLES[name].metric}
        for library, library_runs in runs.items():
            ok = [run for run in library_runs if run["status"] == "ok"]
            summary[f"{library}_status"] = "ok" if library_runs and len(ok) == len(library_runs) else "FAIL"
            summary[f"{library}_loss"] = library_runs[-1]["loss"] if library_runs else None
            times = [run["wall_s"] for run in ok if run["wall_s"] is not None]
            summary[f"{library}_s"] = min(times) if times else None
            cpu = [run["cpu_s"] for run in ok if run.get("cpu_s") is not None]
            summary[f"{library}_cpu_s"] = min(cpu) if cpu else None
            errors = [run["error"] for run in library_runs if run.get("error")]
            summary[f"{library}_error"] = errors[0] if errors else None
        both_ok = all(summary[f"{library}_status"] == "ok" for library in LIBRARIES)
        difference = relative_difference(summary["ode_adjoint_loss"], summary["torchdiffeq_loss"]) if both_ok else None
        summary["loss_rel_diff"] = difference
        finals = [runs[library][-1]["extras"].get("final_loss") if both_ok else None for library in LIBRARIES]
        summary["final_loss_rel_diff"] = relative_difference(finals[1], finals[0])
        summary["loss_like_torchdiffeqs"] = None if difference is None else difference <= loss_rtol
        ours, theirs = summary["ode_adjoint_s"], summary["torchdiffeq_s"]
        summary["ratio"] = ours / theirs if ours is not None and theirs else None
        ours, theirs = summary["ode_adjoint_cpu_s"], summary["torchdiffeq_cpu_s"]
        summary["cpu_ratio"] = ours / theirs if ours is not None and theirs else None
        summaries.append(summary)
    return summaries


def markdown_table(summaries: list[dict[str, Any]]) -> str:
    columns = [
        "example",
        "variant",
        "reported",
        "torchdiffeq",
        "ode_adjoint",
        "loss like torchdiffeq's",
        "torchdiffeq loss",
        "ode_adjoint loss",
        "rel. diff",
        "final loss rel. diff",
        "torchdiffeq s",
        "ode_adjoint s",
        "ratio",
        "CPU ratio",
    ]
    cells = []
    for s in summaries:
        like = s["loss_like_torchdiffeqs"]
        cells.append(
            [
                s["example"],
                s["variant"],
                s["metric"],
                s["torchdiffeq_status"],
                s["ode_adjoint_status"],
                "-" if like is None else ("yes" if like else "NO"),
                _loss(s["torchdiffeq_loss"]),
                _loss(s["ode_adjoint_loss"]),
                "-" if s["loss_rel_diff"] is None else f"{s['loss_rel_diff']:.1e}",
                "-" if s["final_loss_rel_diff"] is None else f"{s['final_loss_rel_diff']:.1e}",
                "-" if s["torchdiffeq_s"] is None else f"{s['torchdiffeq_s']:.2f}",
                "-" if s["ode_adjoint_s"] is None else f"{s['ode_adjoint_s']:.2f}",
                "-" if s["ratio"] is None else f"{s['ratio']:.2f}",
                "-" if s["cpu_ratio"] is None else f"{s['cpu_ratio']:.2f}",
            ]
        )
    return _common.markdown_table(columns, cells, first_numeric=6)


def _version(distribution: str) -> str:
    """The version the runs import: the module's ``__version__`` (an editable install's metadata can lag), else
    the distribution's."""
    try:
        return str(importlib.import_module(distribution.replace("-", "_")).__version__)
    except (ImportError, AttributeError):
        pass
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def selected(only: list[str] | None) -> list[tuple[Example, str]]:
    cases = [(example, variant) for example in EXAMPLES.values() for variant in example.variants]
    if not only:
        return cases
    return [(e, v) for e, v in cases if any(item in (e.name, f"{e.name}:{v}") for item in only)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples_dir", type=Path, help="folder with torchdiffeq's example files")
    parser.add_argument("--niters", type=int, default=10, help="training iterations per run (default: 10)")
    parser.add_argument("--nbounces", type=int, default=10, help="bouncing_ball.py's bounces (default: 10)")
    parser.add_argument("--only", action="append", metavar="NAME[:VARIANT]", help="only these (repeatable)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per library, alternating; best time kept")
    parser.add_argument("--threads", type=int, default=1, help="torch/OpenMP/BLAS threads in each run (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run (default: 600)")
    parser.add_argument("--loss-rtol", type=float, default=1e-2, help="'loss like torchdiffeq's' tolerance")
    parser.add_argument("--cuda", action="store_true", help="let the examples see CUDA (default: hidden)")
    parser.add_argument("--viz", action="store_true", help="with the examples' plotting flags (slow; cnf's the most)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write command, machine and rows as JSON")
    args = parser.parse_args(argv)

    names = {item.split(":", 1)[0] for item in args.only or ()}
    unknown = names - set(EXAMPLES)
    if unknown:
        parser.error(f"--only: unknown example(s) {sorted(unknown)}; choose from {sorted(EXAMPLES)}")
    cases = selected(args.only)
    if not cases:
        parser.error("--only: no such variant (backprop, adjoint)")
    missing = sorted({e.file for e, _ in cases if not (args.examples_dir / e.file).is_file()})
    if missing:
        parser.error(f"examples_dir: {args.examples_dir} lacks {', '.join(missing)}; expected torchdiffeq's examples/")

    settings = {
        "niters": args.niters,
        "nbounces": args.nbounces,
        "repeats": args.repeats,
        "threads": args.threads,
        "seed": args.seed,
        "timeout": args.timeout,
        "loss_rtol": args.loss_rtol,
        "cuda": args.cuda,
        "viz": args.viz,
    }
    machine = _common.machine_info(
        {
            "torch": _version("torch"),
            "torch_threads": args.threads,
            "torchdiffeq": _version("torchdiffeq"),
            "ode_adjoint": _version("ode-adjoint"),
            "ode_core": _version("ode-core"),
            "device": "default" if args.cuda else "cpu",
        }
    )
    print(f"# torchdiffeq's examples: ode-adjoint {machine['ode_adjoint']} vs torchdiffeq -- {machine['date']}")
    print(_common.machine_line(machine))
    print(
        f"# python {machine['python']}, torch {machine['torch']} ({args.threads} thread(s)), "
        f"torchdiffeq {machine['torchdiffeq']}; --niters {args.niters}, bouncing_ball {args.nbounces} bounces, "
        f"seed {args.seed}{', with plots' if args.viz else ''}; time = the example's own code, "
        f"best of {args.repeats}; ratio = ode_adjoint / torchdiffeq"
    )
    print(flush=True)

    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tdq-shim-") as shim_root, tempfile.TemporaryDirectory() as child_root:
        package = Path(shim_root) / "torchdiffeq"
        package.mkdir()
        (package / "__init__.py").write_text(SHIM, encoding="utf-8")
        child = Path(child_root) / "run_example.py"
        child.write_text(CHILD, encoding="utf-8")
        roots = {"shim": shim_root, "child": str(child)}
        for example, variant in cases:
            for _ in range(args.repeats):
                for library in LIBRARIES:
                    row = run_once(example, variant, library, args.examples_dir, roots, settings)
                    expected_shim = library == "ode_adjoint"
                    if row["torchdiffeq_file"] and row["torchdiffeq_file"].startswith(shim_root) != expected_shim:
                        raise RuntimeError(f"{library} run imported torchdiffeq from {row['torchdiffeq_file']}")
                    rows.append(row)
                    wall = "-" if row["wall_s"] is None else f"{row['wall_s']:.2f} s"
                    print(
                        f"  {example.name:<14} {variant:<9} {library:<12} {row['status']:<7} {wall:>9}  "
                        f"{example.metric} {_loss(row['loss'])}"
                        + "".join(f"  {key} {_loss(value)}" for key, value in row["extras"].items() if key != "metric")
                        + (f"  {row['error']}" if row.get("error") else ""),
                        flush=True,
                    )
    total = time.perf_counter() - started
    summaries = pair_rows(rows, args.loss_rtol)
    table = markdown_table(summaries)
    print()
    print(table)
    print()
    failed = [s for s in summaries if s["ode_adjoint_status"] != "ok"]
    for s in failed:
        print(f"ode_adjoint FAILED {s['example']} {s['variant']}: {s['ode_adjoint_error']}")
    for row in rows:
        if row["status"] != "ok" and row.get("stderr_tail"):
            print(
                f"\n--- {row['example']} {row['variant']} {row['library']} (stderr, last lines)\n{row['stderr_tail']}"
            )
    print(f"total time: {total:.0f} s")
    if args.json:
        payload = {
            "command": _common.command_line(),
            "machine": machine,
            "settings": settings,
            "summary": summaries,
            "rows": rows,
            "markdown": table,
        }
        _common.write_json(str(args.json), payload)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
