"""The docs' and README's measured tables, from the benchmark scripts' output files.

Every figure the project publishes comes from a file a command wrote, kept in
``benchmarks/measured/``:

===========================  ====================================================================
file                         written by
===========================  ====================================================================
adjoint_vs_peers.json        ``python benchmarks/bench_adjoint_vs_peers.py --json ...``
core_vs_scipy.json           ``python benchmarks/bench_core_vs_scipy.py --json ...``
stiff_vs_scipy.json          ``python benchmarks/bench_stiff_vs_scipy.py --json ...``
memory.json                  ``python benchmarks/bench_memory.py --json ...``
heterogeneous.json           ``python benchmarks/bench_heterogeneous.py --json ...``
torchdiffeq_methods.json     ``python benchmarks/bench_torchdiffeq_methods.py --torchdiffeq PATH --json ...``
                             (optional: without it the page says so)
torchdiffeq_suite.json       ``python benchmarks/torchdiffeq_suite.py TESTS_DIR --source-commit SHA --json ...``,
                             and beside it ``torchdiffeq_suite_reference.json``: the same with ``--shim none
                             --torchdiffeq PATH``, torchdiffeq's own counts (optional, like the next)
torchdiffeq_examples.json    ``python benchmarks/torchdiffeq_examples.py EXAMPLES_DIR --niters 20 --json ...``
scipy_ivp_suite.json         ``python benchmarks/scipy_ivp_suite.py --json ...``
quickstart/                  ``python benchmarks/reproduce.py quickstart``: the README's quick
                             start run into that folder, with ``command.json`` saying how
mnist-full/{odenet,odenet-   ``python benchmarks/reproduce.py mnist-full``: full MNIST, 5 epochs,
regularised,resnet1,         the same layout
resnet6}/
density/eight-gaussians/     ``python benchmarks/reproduce.py density``: the CNF, the same layout
density/mnist/               ``python benchmarks/reproduce.py density-mnist``: the CNF on MNIST
solver-choice/<option>/      ``python benchmarks/reproduce.py solver-choice``: one ODE-Net, one solver
                             option changed per run (benchmarks/reproduce.py's SOLVER_CHOICES)
latent/{latent-ode,rnn}/     ``python benchmarks/reproduce.py latent``: the latent ODE and its baseline
cuda/adjoint_vs_peers.json   ``.ci/cuda-checks OUTDIR`` on a machine with a GPU: its
cuda/memory.json             ``adjoint-bench.json`` and ``memory-bench.json``, copied here
                             (optional: without them the GPU page says so)
===========================  ====================================================================

This script turns them into ``docs/_generated/<name>.md`` (which the docs
include) and rewrites the blocks between ``<!-- generated: NAME -->`` and
``<!-- end: NAME -->`` of the README and ode-models' README::

    python benchmarks/tables.py          # write them
    python benchmarks/tables.py --check  # exit 1 if any is out of date (tests/test_generated_tables.py)

To publish new figures: rerun the command of a file (the files name their
command and machine), then this script.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "benchmarks" / "measured"
GENERATED = ROOT / "docs" / "_generated"
README = ROOT / "README.md"
MODELS_README = ROOT / "packages" / "ode-models" / "README.md"


def _load(name: str) -> dict[str, Any]:
    with open(MEASURED / name, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _caption(data: dict[str, Any]) -> str:
    """Where, when and how a file was measured, in one sentence."""
    machine = data["machine"]
    gpu = machine.get("cuda") or (machine.get("device") if machine.get("device") not in (None, "cpu") else None)
    where = f"{gpu} and {machine['cpu']}" if gpu else machine["cpu"]
    versions = ", ".join(
        f"{name} {machine[name]}" for name in ("numpy", "scipy", "torch", "torchdiffeq", "torchode") if name in machine
    )
    return (
        f"Measured {machine['date'][:10]} on {where} ({machine['cpus_usable']} usable cores), "
        f"Python {machine['python']}{', ' + versions if versions else ''}, with `{data['command']}`."
    )


def _result(data: dict[str, Any], workload: str, mode: str, implementation: str) -> dict[str, Any]:
    for row in data["results"]:
        if row["workload"].startswith(workload) and row["mode"] == mode and row["impl"] == implementation:
            return row  # type: ignore[no-any-return]
    raise KeyError(f"{workload} {mode} {implementation}: no such row in adjoint_vs_peers.json")


def _titled_tables(data: dict[str, Any], unit: str = "") -> str:
    """The caption, then each of the file's Markdown tables under its title (``unit`` after it)."""
    parts = [_caption(data), ""]
    for title, table in data["markdown"].items():
        parts += [f"**{title}**{unit}", "", table, ""]
    return "\n".join(parts)


def adjoint_speed() -> str:
    """ode-adjoint against torchdiffeq and torchode (both workloads, forward and forward + backward)."""
    return _titled_tables(_load("adjoint_vs_peers.json"))


def _table_and_summary(name: str) -> str:
    data = _load(name)
    lines = [_caption(data), "", data["markdown"]["table"], ""]
    lines += [f"- {line}" for line in data["markdown"]["summary"].splitlines()]
    return "\n".join(lines) + "\n"


def explicit_vs_scipy() -> str:
    """ode-core's explicit methods against scipy's ``solve_ivp``."""
    return _table_and_summary("core_vs_scipy.json")


def stiff_vs_scipy() -> str:
    """ode-core's implicit methods against scipy's Radau and BDF."""
    return _table_and_summary("stiff_vs_scipy.json")


def memory() -> str:
    """Peak memory of forward + backward per engine."""
    return _titled_tables(_load("memory.json"), " (MiB)")


def heterogeneous() -> str:
    """Batches of independent ODEs: the per-sample mode, the joint solve and torchode's per-sample steps."""
    return _titled_tables(_load("heterogeneous.json"))


def torchdiffeq_methods() -> str:
    """Every torchdiffeq method through torchdiffeq and ode-adjoint, when the file is kept."""
    if not (MEASURED / "torchdiffeq_methods.json").exists():
        return (
            "Not measured yet for this checkout: run `python benchmarks/bench_torchdiffeq_methods.py "
            "--torchdiffeq PATH --json benchmarks/measured/torchdiffeq_methods.json` (`PATH` the folder holding "
            "a torchdiffeq checkout's package; without `--torchdiffeq`, the installed torchdiffeq), then "
            "`python benchmarks/tables.py`.\n"
        )
    data = _load("torchdiffeq_methods.json")
    return _titled_tables(data) + "\n" + "".join(f"- {line}\n" for line in data["summary"])


def _suite_caption(data: dict[str, Any]) -> str:
    machine, commit = data["machine"], data["source"]["commit"]
    tests = f"rtqichen/torchdiffeq at commit `{commit[:12]}`" if commit else "a torchdiffeq checkout, commit unknown"
    return (
        f"Measured {machine['date'][:10]} on {machine['cpu']} ({machine['cpus_usable']} usable cores), Python "
        f"{machine['python']}, torch {machine['torch']}: torchdiffeq's tests ({tests}) against {data['tested']}, "
        f"with `{data['command']}`"
    )


def _error_kind(message: str, width: int = 160) -> str:
    """An error's line without its long lists (``[…]``), cut at ``width`` characters: the key failures group by."""
    short = re.sub(r"\[[^\[\]]{24,}\]", "[…]", message)
    return short if len(short) <= width else short[: width - 1] + "…"


def _code(text: str) -> str:
    """``text`` as inline code, whatever backticks it holds."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def torchdiffeq_suite(names_per_error: int = 10) -> str:
    """torchdiffeq's own tests against ode-adjoint (and torchdiffeq itself, when that file is kept)."""
    if not (MEASURED / "torchdiffeq_suite.json").exists():
        return (
            "Not measured yet for this checkout: run `python benchmarks/torchdiffeq_suite.py TESTS_DIR --source-commit "
            "SHA --json benchmarks/measured/torchdiffeq_suite.json` (`TESTS_DIR` the `tests/` folder of a checkout of "
            "rtqichen/torchdiffeq, `SHA` its commit), the same with `--shim none --torchdiffeq PATH --json "
            "benchmarks/measured/torchdiffeq_suite_reference.json` (`PATH` the folder holding that checkout's "
            "package) for torchdiffeq's own counts, then `python benchmarks/tables.py`.\n"
        )
    ours = _load("torchdiffeq_suite.json")
    theirs = (
        _load("torchdiffeq_suite_reference.json") if (MEASURED / "torchdiffeq_suite_reference.json").exists() else None
    )
    lines = [_suite_caption(ours) + "."]
    if theirs is not None:
        lines[0] += f" The reference: the same tests against {theirs['tested']}, with `{theirs['command']}`."
        if theirs["source"]["sha256"] != ours["source"]["sha256"]:
            lines[0] += " **The two runs' test files differ**: rerun both on the same tests."
    columns = ["module", "passed", "failed", "total"]
    if theirs is not None:
        columns += ["torchdiffeq passed", "torchdiffeq total"]
    lines += ["", "| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    for module, counts in [*ours["modules"].items(), ("**all**", ours["totals"])]:
        cells = [module, str(counts["passed"]), str(counts["failed"]), str(counts["total"])]
        if theirs is not None:
            reference = theirs["totals"] if module == "**all**" else theirs["modules"].get(module)
            cells += [str(reference["passed"]), str(reference["total"])] if reference else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if theirs is not None:
        ours_passed = collections.Counter(ours["passed"])
        theirs_passed = collections.Counter(theirs["passed"])
        both = sum((ours_passed & theirs_passed).values())
        reference = sum(theirs_passed.values())
        only_ours = sum((ours_passed - theirs_passed).values())
        sentence = (
            f"ode-adjoint passes {both:,} of the {reference:,} subtests torchdiffeq itself passes "
            f"({both / reference:.1%})"
        )
        sentence += f", and {only_ours:,} that torchdiffeq fails." if only_ours else "."
        lines += [sentence, ""]
        if theirs["failures"]:
            lines += ["torchdiffeq itself fails:", ""]
            lines += [f"- {_code(row['name'])}: {_code(_error_kind(row['error']))}" for row in theirs["failures"]]
            lines.append("")
    groups: dict[str, list[str]] = {}
    for row in ours["failures"]:
        groups.setdefault(_error_kind(row["error"]), []).append(row["name"])
    if not groups:
        return "\n".join([*lines, "No subtest fails.", ""])
    lines += [f"The {len(ours['failures']):,} failing subtests, by error:", ""]
    for error, names in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        lines.append(f"- {len(names)} x {_code(error)}")
        lines += [f"  - {_code(name)}" for name in names[:names_per_error]]
        if len(names) > names_per_error:
            lines.append(f"  - and {len(names) - names_per_error} more (`benchmarks/measured/torchdiffeq_suite.json`)")
    return "\n".join(lines) + "\n"


def scipy_suite() -> str:
    """scipy's own solve_ivp tests against ode-core through the thin adapter (benchmarks/scipy_ivp_suite.py)."""
    if not (MEASURED / "scipy_ivp_suite.json").exists():
        return (
            "Not measured yet for this checkout: run `python benchmarks/scipy_ivp_suite.py --json "
            "benchmarks/measured/scipy_ivp_suite.json`, then `python benchmarks/tables.py`.\n"
        )
    data = _load("scipy_ivp_suite.json")
    machine, counts, source = data["machine"], data["counts"], data["source"]
    applicable = {name: o for name, o in data["outcomes"].items() if o["applicable"]}
    lines = [
        f"Measured {machine['date'][:10]} on {machine['cpu']}: scipy {source['scipy']}'s "
        f"`integrate/_ivp/tests/test_ivp.py` (sha256 `{source['sha256'][:12]}`) against ode-core through "
        f"`benchmarks/_scipy_adapter.py`, with `{data['command']}`. One pytest item per test or "
        "parametrisation; a test is applicable when it calls `solve_ivp` (the others test scipy's solver "
        "classes and helpers).",
        "",
        f"**{counts['passed']} of {counts['applicable']} applicable tests pass "
        f"({counts['passed'] / counts['applicable']:.1%})**; {counts['not_applicable']} not applicable.",
        "",
    ]
    failing = {name: o for name, o in applicable.items() if o["outcome"] != "passed"}
    if failing:
        lines += ["Failing:", ""]
        lines += [f"- `{name}`: {_code(_error_kind(o['error']))}" for name, o in sorted(failing.items())]
        lines.append("")
    return "\n".join(lines)


def torchdiffeq_examples() -> str:
    """torchdiffeq's published examples run with torchdiffeq and with ode-adjoint, when the file is kept."""
    if not (MEASURED / "torchdiffeq_examples.json").exists():
        return (
            "Not measured yet for this checkout: run `python benchmarks/torchdiffeq_examples.py EXAMPLES_DIR "
            "--niters 20 --json benchmarks/measured/torchdiffeq_examples.json` (`EXAMPLES_DIR` the `examples/` "
            "folder of a checkout of rtqichen/torchdiffeq), then `python benchmarks/tables.py`.\n"
        )
    data = _load("torchdiffeq_examples.json")
    settings = data["settings"]
    lines = [
        _caption(data),
        "",
        f"{settings['niters']} training iterations (`bouncing_ball.py`: {settings['nbounces']} bounces), seed "
        f"{settings['seed']}, {settings['threads']} thread(s), best of {settings['repeats']} run(s) each; time = the "
        "example's own code; ratio = ode_adjoint's time / torchdiffeq's (below 1: ode_adjoint is faster).",
        "",
        data["markdown"],
    ]
    errors = [
        f"- {row['example']} {row['variant']}, {library}: {_code(_error_kind(row[f'{library}_error']))}"
        for row in data["summary"]
        for library in ("torchdiffeq", "ode_adjoint")
        if row[f"{library}_status"] != "ok" and row.get(f"{library}_error")
    ]
    if errors:
        lines += ["", "Failed runs:", "", *errors]
    return "\n".join(lines) + "\n"


def cuda() -> str:
    """The same speed and memory benchmarks on a GPU, when a run of ``.ci/cuda-checks`` is kept."""
    speed, peak = MEASURED / "cuda" / "adjoint_vs_peers.json", MEASURED / "cuda" / "memory.json"
    if not speed.exists() and not peak.exists():
        return (
            "No GPU measurement is kept in `benchmarks/measured/cuda/` for this checkout: run "
            "`.ci/cuda-checks OUTDIR` on a machine with a GPU, copy its `adjoint-bench.json` and "
            "`memory-bench.json` there as `adjoint_vs_peers.json` and `memory.json`, and rerun "
            "`python benchmarks/tables.py`.\n"
        )
    parts = []
    if speed.exists():
        parts.append(_titled_tables(_load("cuda/adjoint_vs_peers.json")))
    if peak.exists():
        parts.append(_titled_tables(_load("cuda/memory.json"), " (MiB)"))
    return "\n".join(parts)


def _commands_block(records: list[dict[str, Any]], report_command: str) -> list[str]:
    """Lines of a set of runs' caption: where and when (the first run's machine), then their commands."""
    machine = records[0]["machine"]
    return [
        f"Measured {machine['date'][:10]} on {machine['cpu']} ({machine['cpus_usable']} usable cores), "
        f"Python {machine['python']}, torch {machine['torch']}, one run after the other:",
        "",
        "```bash",
        *(record["command"] for record in records),
        report_command,
        "```",
        "",
    ]


def _run_record(folder: str) -> dict[str, Any]:
    """``command.json`` of a run kept by ``benchmarks/reproduce.py``."""
    return _load(f"{folder}/command.json")


def quickstart() -> str:
    """The README's quick start, as its report prints it."""
    from ode_models import report

    return f"{_caption(_run_record('quickstart'))}\n\n{report([MEASURED / 'quickstart'])}"


MNIST_FULL_RUNS = ("odenet", "odenet-regularised", "resnet1", "resnet6")
SITTING_HOURS = 2


def mnist_full() -> str:
    """Full MNIST, 5 epochs, the four runs: the commands, the report of their runs and the time ratios."""
    from ode_models import report

    records = [_run_record(f"mnist-full/{name}") for name in MNIST_FULL_RUNS]
    dates = sorted({record["machine"]["date"][:10] for record in records})
    machine = records[0]["machine"]
    results = {name: _load(f"mnist-full/{name}/results.json") for name in MNIST_FULL_RUNS}
    baseline = results["resnet6"]["wall_time_s"]
    # Times compare only between runs of one sitting (finished within a few hours of each other): the shared
    # machine's speed varies between sessions (resnet6 took 4:23 one morning and 10:05 that night, with the
    # same command).
    finished = {
        name: datetime.datetime.fromisoformat(record["machine"]["date"])
        for name, record in zip(MNIST_FULL_RUNS, records)
    }
    sitting = datetime.timedelta(hours=SITTING_HOURS)
    same_day = [name for name in MNIST_FULL_RUNS if abs(finished[name] - finished["resnet6"]) <= sitting]
    other_days = [name for name in MNIST_FULL_RUNS if name not in same_day]
    day = {name: finished[name].strftime("%Y-%m-%d %H:%M UTC") for name in MNIST_FULL_RUNS}
    ratios = [
        f"| {name} | {results[name]['wall_time_s'] / baseline:.2f}x | {100 * results[name]['test_error']:.2f}% |"
        for name in same_day
    ]
    lines = [
        f"Measured {' to '.join(dict.fromkeys((dates[0], dates[-1])))} on {machine['cpu']} "
        f"({machine['cpus_usable']} usable cores), Python {machine['python']}, torch {machine['torch']}, "
        "one run after the other:",
        "",
        "```bash",
        *(record["command"] for record in records),
        f"ode-models report {' '.join(f'runs/{name}' for name in MNIST_FULL_RUNS)} --plot-dir runs",
        "```",
        "",
        report([MEASURED / "mnist-full" / name for name in MNIST_FULL_RUNS]),
        f"Training time against ResNet(6)'s, for the runs finished within {SITTING_HOURS} hours of it "
        f"({day['resnet6']}; the target for a regularised ODE-Net: at most 2.0x, at no more than 0.6% test error):",
        "",
        "| run | time / ResNet(6)'s | test error |",
        "|---|---:|---:|",
        *ratios,
    ]
    if other_days:
        lines += [
            "",
            f"{', '.join(f'{name} (finished {day[name]})' for name in other_days)}: measured in another sitting, "
            "when the machine ran at another speed; their times compare with each other only.",
        ]
    return "\n".join(lines) + "\n"


DENSITY_MARGIN_NATS = 0.1
"""How close to the true density's NLL the flow's test NLL should come (the acceptance's stated margin)."""


def density() -> str:
    """The CNF on eight Gaussians: the command, the report, and the gap to the true density's NLL."""
    from ode_models import report

    record = _run_record("density/eight-gaussians")
    results = _load("density/eight-gaussians/results.json")
    gap = results["nll_gap"]
    verdict = "within" if gap <= DENSITY_MARGIN_NATS else "outside"
    return "\n".join(
        [
            _caption(record),
            "",
            report([MEASURED / "density" / "eight-gaussians"]),
            f"Test NLL {results['test_nll']:.4f} nats against the true density's {results['true_nll']:.4f} on the "
            f"same 10,000 test points: a gap of {gap:.4f} nats, {verdict} the margin of {DENSITY_MARGIN_NATS} nats.",
            "",
        ]
    )


# Published bits per dimension on MNIST, for scale: FFJORD (Grathwohl et al. 2019, table 2) and RNODE
# (Finlay et al. 2020, table 1), each after days of GPU training with a multiscale flow.
PUBLISHED_MNIST_BITS = {"FFJORD": 0.99, "RNODE": 0.97}


def density_mnist() -> str:
    """The CNF on MNIST: the command, the report, and the published figures for scale."""
    from ode_models import report

    results = _load("density/mnist/results.json")
    published = ", ".join(f"{name} {bits}" for name, bits in PUBLISHED_MNIST_BITS.items())
    return "\n".join(
        [
            _caption(_run_record("density/mnist")),
            "",
            report([MEASURED / "density" / "mnist"]),
            f"Test bits per dimension after {results['epochs_completed']} epoch(s): "
            f"{results['test_bits_per_dim']:.3f} ({results['test_nll']:.1f} nats per image). For scale, the "
            f"published figures after days of GPU training with multiscale flows: {published}.",
            "",
        ]
    )


SOLVER_CHOICE_RUNS = ("default", "rtol-1e-2", "rtol-1e-4", "bosh3", "seminorm", "backprop", "checkpoint", "regularised")
"""benchmarks/reproduce.py's SOLVER_CHOICES, the default first (tests/test_generated_tables.py holds them equal)."""


def solver_choice() -> str:
    """One ODE-Net, one solver option changed per run: the commands, the report, and the effects as ratios."""
    from ode_models import report

    names = list(SOLVER_CHOICE_RUNS)
    records = [_run_record(f"solver-choice/{name}") for name in names]
    # Each run's option: its command past the default run's (they differ only there and in --out).
    default_command = records[0]["command"].split(" --out ")[0]
    choices = {
        name: record["command"].split(" --out ")[0].removeprefix(default_command).strip()
        for name, record in zip(names, records)
    }
    results = {name: _load(f"solver-choice/{name}/results.json") for name in names}

    def ratio(name: str, key: str) -> str:
        value, reference = results[name][key], results["default"][key]
        return f"{value / reference:.2f}x" if value and reference else "—"

    rows = [
        f"| {name} | `{choices[name] or '(none)'}` | {100 * results[name]['test_error']:.2f}% | "
        f"{ratio(name, 'wall_time_s')} | {ratio(name, 'nfe_forward')} | {ratio(name, 'nfe_backward')} | "
        f"{ratio(name, 'peak_memory_bytes')} |"
        for name in names
    ]
    lines = [
        *_commands_block(records, f"ode-models report {' '.join(f'runs/{name}' for name in names)}"),
        report([MEASURED / "solver-choice" / name for name in names]),
        "Each option against the default run's (dopri5, rtol = atol = 1e-3, the adjoint): training time, the "
        "last epoch's evaluations per batch forward (NFE-F) and backward (NFE-B), peak memory.",
        "",
        "| run | option | test error | time | NFE-F | NFE-B | memory |",
        "|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        # What one seed's test error is worth here: these two runs compute the same gradients up to rounding.
        f"The backprop and checkpoint runs compute the same gradients up to rounding and end at "
        f"{100 * results['backprop']['test_error']:.2f}% and {100 * results['checkpoint']['test_error']:.2f}% test "
        "error: after one epoch, differences of that size in the error column are noise, not the option's effect. "
        f"The seminorm's backward evaluations are {ratio('seminorm', 'nfe_backward')} the default's.",
        "",
    ]
    return "\n".join(lines)


def latent() -> str:
    """The latent ODE against its RNN baseline on the spirals: the commands and the report."""
    from ode_models import report

    names = ("latent-ode", "rnn")
    records = [_run_record(f"latent/{name}") for name in names]
    results = {name: _load(f"latent/{name}/results.json") for name in names}
    ode, rnn = results["latent-ode"], results["rnn"]
    ratio = ode["test_extrapolation_mse"] / rnn["test_extrapolation_mse"]
    lines = [
        *_commands_block(records, "ode-models report runs/latent-ode runs/latent-rnn"),
        report([MEASURED / "latent" / name for name in names]),
        f"The latent ODE's extrapolation MSE is {ratio:.2f} of the RNN baseline's "
        f"({ode['test_extrapolation_mse']:.4f} against {rnn['test_extrapolation_mse']:.4f}); "
        f"interpolation {ode['test_interpolation_mse']:.4f} against {rnn['test_interpolation_mse']:.4f}.",
        "",
    ]
    return "\n".join(lines)


def headline() -> str:
    """The README's one small table: a figure per package, each from a file above."""
    adjoint = _load("adjoint_vs_peers.json")
    forward = _result(adjoint, "(a)", "forward", "ode_adjoint.solve")["speedup_vs_torchdiffeq.odeint"]
    backward = _result(adjoint, "(a)", "forward+backward", "ours gradient='adjoint'")
    core = _load("core_vs_scipy.json")
    small = [row["ratio"] for row in core["results"] if row["n"] <= 4]
    stiff = _load("stiff_vs_scipy.json")
    radau = [row["ratio_Radau"] for row in stiff["results"] if row["method"] == "radau5"]
    cells = _load("memory.json")["records"]

    def mib(engine: str, steps: int, budget: Any = None) -> float:
        (cell,) = [c for c in cells if c["engine"] == engine and c["steps"] == steps and c.get("checkpoints") == budget]
        return float(cell["increment_mib"])

    heterogeneous = _load("heterogeneous.json")
    (vdp,) = [problem for title, problem in heterogeneous["problems"].items() if title.startswith("van der Pol")]
    per_sample = {row["implementation"]: row["time / torchode"] for row in vdp["rows"]}
    how = _run_record("quickstart")
    run = _load("quickstart/results.json")
    regularised = _load("mnist-full/odenet-regularised/results.json")
    resnet6 = _load("mnist-full/resnet6/results.json")
    flow = _load("density/eight-gaussians/results.json")
    latent_ode, latent_rnn = _load("latent/latent-ode/results.json"), _load("latent/rnn/results.json")
    minutes, seconds = divmod(round(run["wall_time_s"]), 60)
    rows = [
        (
            "ode-core: explicit methods against scipy's `solve_ivp` (time, geometric mean, small problems)",
            f"{_geometric_mean(small):.2f} of scipy's",
        ),
        ("ode-core: radau5 against scipy's Radau (time, geometric mean)", f"{_geometric_mean(radau):.2f} of Radau's"),
        ("ode-adjoint: MLP forward solve against torchdiffeq (dopri5)", f"{forward:.2f}x faster"),
        (
            "ode-adjoint: forward + adjoint backward against torchdiffeq's `odeint_adjoint`",
            f"{backward['speedup_vs_torchdiffeq.odeint_adjoint']:.2f}x faster",
        ),
        (
            "ode-adjoint: memory of the adjoint at 10 / 1000 steps (backprop's)",
            f"{mib('adjoint', 10):.1f} / {mib('adjoint', 1000):.1f} MiB "
            f"({mib('backprop', 10):.1f} / {mib('backprop', 1000):.0f})",
        ),
        (
            "ode-adjoint: per-sample steps on a heterogeneous batch against torchode "
            f"(van der Pol, {vdp['batch']} samples)",
            f"{per_sample['ode-adjoint, per sample']:.2f} of its time, "
            f"{per_sample['ode-adjoint, per sample, compiled']:.2f} compiled",
        ),
        (
            "ode-models: the quick start (odenet, 10 epochs)",
            f"{run['test_error']:.2%} test error, {minutes}:{seconds:02d}",
        ),
        (
            "ode-models: full MNIST, 5 epochs: the regularised ODE-Net's training time (ResNet(6)'s = 1)",
            f"{regularised['wall_time_s'] / resnet6['wall_time_s']:.2f}x at {regularised['test_error']:.2%} "
            f"test error ({resnet6['test_error']:.2%})",
        ),
        (
            "ode-models: a CNF on eight Gaussians, test NLL above the true density's",
            f"{flow['nll_gap']:.3f} nats",
        ),
        (
            "ode-models: the latent ODE's extrapolation MSE on irregular spirals (the RNN baseline's = 1)",
            f"{latent_ode['test_extrapolation_mse'] / latent_rnn['test_extrapolation_mse']:.2f}",
        ),
    ]
    lines = ["| measured | result |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)]
    records = (
        adjoint,
        core,
        stiff,
        heterogeneous,
        how,
        *map(_run_record, ("mnist-full/resnet6", "density/eight-gaussians")),
    )
    dates = sorted({data["machine"]["date"][:10] for data in records})
    when = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    cores = adjoint["machine"]["cpus_usable"]
    lines += ["", f"Measured {when} on the project's {cores}-core CPU machine; the commands and full tables are in the"]
    lines[-1] += " documentation's benchmarks page."
    return "\n".join(lines) + "\n"


def _geometric_mean(values: list[float]) -> float:
    product = 1.0
    for value in values:
        product *= value
    return product ** (1.0 / len(values))


DOCS_TABLES: dict[str, Callable[[], str]] = {
    "headline": headline,
    "adjoint-speed": adjoint_speed,
    "explicit-vs-scipy": explicit_vs_scipy,
    "stiff-vs-scipy": stiff_vs_scipy,
    "memory": memory,
    "heterogeneous": heterogeneous,
    "torchdiffeq-methods": torchdiffeq_methods,
    "torchdiffeq-suite": torchdiffeq_suite,
    "torchdiffeq-examples": torchdiffeq_examples,
    "scipy-suite": scipy_suite,
    "quickstart": quickstart,
    "mnist-full": mnist_full,
    "density": density,
    "density-mnist": density_mnist,
    "solver-choice": solver_choice,
    "latent": latent,
    "cuda": cuda,
}
"""docs/_generated/<name>.md, each from the files above."""


def readme_blocks() -> dict[Path, dict[str, Callable[[], str]]]:
    """The READMEs' generated blocks, by file and name."""
    return {README: {"headline": headline}, MODELS_README: {"mnist-full": mnist_full}}


def rendered() -> dict[Path, str]:
    """Every generated file's content, by path (the READMEs with their blocks rewritten)."""
    files = {GENERATED / f"{name}.md": make() for name, make in DOCS_TABLES.items()}
    for path, blocks in readme_blocks().items():
        text = path.read_text(encoding="utf-8")
        for name, make in blocks.items():
            pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end: {name} -->)", flags=re.DOTALL)
            if not pattern.search(text):
                raise ValueError(f"{path.name}: no <!-- generated: {name} --> ... <!-- end: {name} --> block")
            text = pattern.sub(lambda match, make=make: match.group(1) + "\n" + make() + "\n" + match.group(2), text)
        files[path] = text
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a generated file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, content in rendered().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
