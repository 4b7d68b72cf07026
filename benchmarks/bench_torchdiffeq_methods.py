"""Every torchdiffeq method on one neural ODE, through torchdiffeq and through ``ode_adjoint.odeint``.

One process, one problem, the same ``func`` object on both sides:
``f(t, y) = Linear(64, 2)(tanh(Linear(2, 64)(y)))`` (``MLPField(hidden=64)``,
time ignored), batch 16, float64 on the CPU, one thread, outputs at
``t = linspace(0, 1, 11)``, ``rtol = 1e-5``, ``atol = 1e-7`` for every
method, and ``options = dict(step_size=0.05)`` for the fixed-step ones (the
implicit ones too). The outputs lie on the fixed-step grid, so neither side
needs extra steps or interpolation there: torchdiffeq interpolates outputs
between grid points linearly, ode-core steps onto them. Float64, so that the
differences between the two libraries' solutions show differences of
method, not of round-off.

Each torchdiffeq method (``torchdiffeq._impl.odeint.SOLVERS`` of the
torchdiffeq imported, without ``scipy_solver``) runs against the ode-adjoint
method of the same tableau, as the migration guide (docs/guide/adjoint.md)
names it: the same name, or an alias of ``ode_core.ALIASES``, except
torchdiffeq's ``dopri8`` (RK8(7)13M, our ``dopri87``) and ``rk4`` (the 3/8
rule, our ``rk38``). Extra rows: our ``dopri8`` (DOP853) and ``rk4``
(classical RK4), what the same names give here, other methods; and our
dopri5 with torchdiffeq's embedded weights (``TORCHDIFFEQ_DOPRI5`` of
``bench_adjoint_vs_peers.py``), the same method as torchdiffeq's dopri5 step
for step. A method torchdiffeq lacks (0.2.5 has no tsit5 and no implicit
methods) or that ode-adjoint rejects as unknown is reported as such, and the
other side still measured.

Columns: evaluations of ``f`` (NFE: calls of ``func``, counted by the module
itself, the same counter on both sides; forward and backward separately in
the second table), the median wall time (``time.perf_counter``) of a solve,
forward only under ``torch.no_grad``, and forward + backward of ``loss =
sum(y**2)`` over every output by backpropagation through the solver
(``torch.autograd.grad`` with respect to the parameters), the ratio ours /
theirs (the project's target: 0.5 or less), the floor (the ratio ours would
have at no cost beyond ``f``: our NFE times the best CPU time of one ``f``
alone, ``FieldCost`` of ``bench_adjoint_vs_peers.py``, forward, or of one
``f`` and its vector-Jacobian product, forward + backward, over theirs'
median time; a floor above 0.5 puts the target out of reach), the solver
cost ratio (each side's time less its NFE times that cost of ``f``, ours over
theirs: the two solvers' own work compared), the largest
absolute difference of the two solutions, and each side's largest absolute
error against a float64 torchdiffeq dopri5 solve at ``rtol = atol = 1e-12``
(the gradient's too: relative to its largest element). Each side warms up, then the two run
in turn (``_common.round_robin_times``) until each has run ``min_repeats``
times and the faster has run ``min_time`` seconds, or the case has taken
``max_case_time`` seconds.

Run from the repository root with ode-core and ode-adjoint installed and
torchdiffeq (torchode too: ``bench_adjoint_vs_peers.py``, imported for its
helpers, imports it)::

    python benchmarks/bench_torchdiffeq_methods.py [--torchdiffeq PATH] [--quick] [--json FILE]

``--torchdiffeq PATH`` imports torchdiffeq from ``PATH`` (the folder that
holds the ``torchdiffeq`` package, for example a checkout of its git HEAD,
which has tsit5 and the implicit methods) instead of the installed one.
"""

from __future__ import annotations

# First: importing the package pins BLAS and OpenMP to one thread before torch loads.
from benchmarks import _common  # isort: skip

import argparse
import importlib
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ode_adjoint
import ode_core
import torch
from benchmarks._fields import MLPField

torch.set_num_threads(1)

SEED = 0
DTYPE = torch.float64
BATCH = 16
HIDDEN = 64
TIMES = 11
RTOL, ATOL = 1e-5, 1e-7
STEP_SIZE = 0.05
RATIO_TARGET = 0.5
ADAPTIVE = ("dopri8", "dopri5", "tsit5", "bosh3", "fehlberg2", "adaptive_heun")
IMPLICIT = (
    "implicit_euler",
    "implicit_midpoint",
    "trapezoid",
    "radauIIA3",
    "gl4",
    "radauIIA5",
    "gl6",
    "sdirk2",
    "trbdf2",
)
# torchdiffeq HEAD's methods, in its order (scipy_solver left out: it is scipy's solve_ivp);
# any other the imported torchdiffeq has is added after them.
TORCHDIFFEQ_METHODS = (
    *ADAPTIVE,
    "euler",
    "midpoint",
    "heun2",
    "heun3",
    "rk4",
    "explicit_adams",
    "implicit_adams",
    *IMPLICIT,
)
NOT_COMPARED = ("scipy_solver", "fixed_adams")  # scipy's; an old name of implicit_adams
# Where a name means another tableau in ode-adjoint (docs/guide/adjoint.md, "Migrating from torchdiffeq").
SAME_METHOD = {"dopri8": "dopri87", "rk4": "rk38"}
OTHER_METHOD = {
    "dopri8": "another method: our dopri8 is DOP853",
    "rk4": "another method: our rk4 is classical RK4",
}

# Why the evaluation counts of a row may differ, where the two libraries are known to run the method
# differently (checked against torchdiffeq's source); a note is printed only for rows whose counts differ.
STALE_STAGE = (
    "torchdiffeq reuses its last stage's slope as the next step's first, as if the tableau were FSAL, "
    "which it is not ({what}): one evaluation a step fewer, another method than the tableau's; "
    "ode-adjoint evaluates f at the new solution"
)
NFE_REASONS = {
    "fehlberg2": STALE_STAGE.format(what="its last stage is f at the embedded first-order solution"),
    "adaptive_heun": STALE_STAGE.format(what="its last stage is f at Euler's predictor"),
    **dict.fromkeys(
        ("explicit_adams", "implicit_adams"),
        "torchdiffeq's Adams methods take two 3/8-rule steps, then raise the order by one a step up to 11 "
        "(the Moulton corrector: 12, at most 4 corrections); ode-core's are of order 4 after three 3/8-rule steps",
    ),
    **dict.fromkeys(
        IMPLICIT,
        "torchdiffeq solves the stage equations by Broyden's method from an identity Jacobian until the "
        "residual's 2-norm is below 1e-8 (float64); ode-core by simplified Newton with the autograd "
        "Jacobian (kept across steps), stopping in the tolerances' scaled norm",
    ),
}
CONTROLLER_REASON = (
    "step sizes: after an accepted step torchdiffeq never shrinks the step; ode-core's I controller "
    "(scipy's rule) may, and does not grow the step right after a rejection"
)


@dataclass(frozen=True)
class Pairing:
    """A torchdiffeq method and the ode-adjoint method it runs against."""

    theirs: str
    ours: Any  # a name, or a ButcherTableau
    label: str  # our method as the table names it
    note: str = ""

    @property
    def adaptive(self) -> bool:
        return self.theirs in ADAPTIVE


@dataclass
class Side:
    """One library's solve of a pairing: how to call it, and whether it exists."""

    name: str  # "theirs" or "ours"
    solve: Callable[[], torch.Tensor] | None  # None: the library lacks the method
    missing: str = ""  # why solve is None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Row:
    pairing: Pairing
    sides: dict[str, Side]
    results: dict[str, dict[str, Any]] = field(default_factory=dict)  # mode -> record


# --------------------------------------------------------------------------- set-up


def import_torchdiffeq(path: str | None) -> Any:
    """torchdiffeq, from ``path`` (first on ``sys.path``) when given, else the installed one."""
    if path is not None:
        folder = Path(path).resolve()
        if not (folder / "torchdiffeq" / "__init__.py").is_file():
            raise SystemExit(f"--torchdiffeq: {path} holds no torchdiffeq/__init__.py")
        sys.path.insert(0, str(folder))
    module = importlib.import_module("torchdiffeq")
    if path is not None and not Path(module.__file__).resolve().is_relative_to(Path(path).resolve()):
        raise SystemExit(f"--torchdiffeq: torchdiffeq was imported from {module.__file__}, not {path}")
    return module


def torchdiffeq_solvers(torchdiffeq: Any) -> list[str]:
    """The method names the imported torchdiffeq accepts."""
    return list(importlib.import_module("torchdiffeq._impl.odeint").SOLVERS)


def pairings(torchdiffeq: Any, same_dopri5: Any) -> list[Pairing]:
    extra = [m for m in torchdiffeq_solvers(torchdiffeq) if m not in TORCHDIFFEQ_METHODS and m not in NOT_COMPARED]
    rows = []
    for theirs in (*TORCHDIFFEQ_METHODS, *extra):
        ours = SAME_METHOD.get(theirs, theirs)
        alias = ode_core.ALIASES.get(ours)
        label = f"{ours} (= {alias})" if alias else ours
        rows.append(Pairing(theirs, ours, label, "same method, other name" if theirs in SAME_METHOD else ""))
        if theirs in OTHER_METHOD:
            rows.append(Pairing(theirs, theirs, theirs, OTHER_METHOD[theirs]))
        if theirs == "dopri5":
            rows.append(Pairing(theirs, same_dopri5, "dopri5, torchdiffeq's weights", "user tableau: the same method"))
    return rows


def _unknown_method(error: ValueError) -> bool:
    return "unknown method" in str(error)


def probe(side: Side) -> None:
    """One untimed forward solve: keeps the warnings it raised on ``side``; an unknown-method error
    marks the side missing."""
    assert side.solve is not None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.no_grad():
                side.solve()
        except ValueError as error:
            if side.name == "ours" and _unknown_method(error):
                side.solve, side.missing = None, "not in ode_adjoint"
                return
            raise
    side.warnings = sorted({f"{w.category.__name__}: {w.message}" for w in caught})


# --------------------------------------------------------------------------- measurement


def forward_call(func: MLPField, solve: Callable[[], torch.Tensor]) -> Callable[[], Any]:
    def run() -> Any:
        before = func.calls
        with torch.no_grad():
            ys = solve()
        return ys, func.calls - before, None, None

    return run


def backward_call(func: MLPField, solve: Callable[[], torch.Tensor]) -> Callable[[], Any]:
    parameters = list(func.parameters())

    def run() -> Any:
        before = func.calls
        ys = solve()
        middle = func.calls
        grads = torch.autograd.grad(ys.pow(2).sum(), parameters)
        return ys.detach(), middle - before, grads, func.calls - middle

    return run


def measure(row: Row, func: MLPField, mode: str, settings: dict[str, Any], reference: Any, cost: Any) -> None:
    """Time the pairing's available sides in turn; record counts, times, errors and their differences."""
    make = forward_call if mode == "forward" else backward_call
    calls = {name: make(func, side.solve) for name, side in row.sides.items() if side.solve is not None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded by the probe; not printed every run
        timings = _common.round_robin_times(
            calls,
            min_time=settings["min_time"],
            min_repeats=settings["min_repeats"],
            max_repeats=settings["max_repeats"],
            max_case_time=settings["max_case_time"],
        )
    ref_ys, ref_grads = reference
    grad_scale = max(float(g.abs().max()) for g in ref_grads)
    record: dict[str, Any] = {
        "mode": mode,
        "theirs_method": row.pairing.theirs,
        "ours_method": row.pairing.label,
        "note": row.pairing.note,
    }
    values = {}
    for name, side in row.sides.items():
        if side.solve is None:
            record[name] = {"missing": side.missing}
            continue
        ys, nfe, grads, nfe_backward = timings.results[name]
        values[name] = (ys, grads)
        entry: dict[str, Any] = {
            "nfe": int(nfe),
            "median_ms": 1e3 * statistics.median(timings.wall[name]),
            "min_ms": 1e3 * min(timings.wall[name]),
            "cpu_median_ms": 1e3 * statistics.median(timings.cpu[name]),
            "repeats": len(timings.wall[name]),
            "max_abs_err_y": float((ys - ref_ys).abs().max()),
            "warnings": side.warnings,
        }
        if grads is not None:
            entry["nfe_backward"] = int(nfe_backward)
            entry["rel_err_grad"] = _grad_difference(grads, ref_grads, grad_scale)
        record[name] = entry
    if len(values) == 2:
        (ys_theirs, grads_theirs), (ys_ours, grads_ours) = values["theirs"], values["ours"]
        record["ratio"] = record["ours"]["median_ms"] / record["theirs"]["median_ms"]
        # Ours at no cost beyond f: every evaluation (forward), or every evaluation and its
        # vector-Jacobian product (backprop through the solver differentiates each one once).
        per_evaluation = cost.f_ms if mode == "forward" else cost.fvjp_ms
        record["floor"] = record["ours"]["nfe"] * per_evaluation / record["theirs"]["median_ms"]
        # The solvers' own cost, each side's time less its evaluations of f at that price.
        own = {side: record[side]["median_ms"] - record[side]["nfe"] * per_evaluation for side in ("ours", "theirs")}
        if own["theirs"] > 0 and own["ours"] > 0:
            record["own_ratio"] = own["ours"] / own["theirs"]
        record["max_abs_diff_y"] = float((ys_ours - ys_theirs).abs().max())
        if grads_theirs is not None:
            record["rel_diff_grad"] = _grad_difference(grads_ours, grads_theirs, grad_scale)
    row.results[mode] = record


def _grad_difference(grads: Any, others: Any, scale: float) -> float:
    """Largest absolute difference of two gradients (tuples of tensors), over ``scale``."""
    return max(float((a - b).abs().max()) for a, b in zip(grads, others)) / scale


def build_rows(torchdiffeq: Any, func: MLPField, y0: torch.Tensor, t: torch.Tensor, same_dopri5: Any) -> list[Row]:
    available = set(torchdiffeq_solvers(torchdiffeq))
    version = torchdiffeq.__version__
    rows = []
    for pairing in pairings(torchdiffeq, same_dopri5):
        options = None if pairing.adaptive else {"step_size": STEP_SIZE}

        def theirs(method: str = pairing.theirs, options: Any = options) -> torch.Tensor:
            return torchdiffeq.odeint(func, y0, t, rtol=RTOL, atol=ATOL, method=method, options=options)

        def ours(method: Any = pairing.ours, options: Any = options) -> torch.Tensor:
            return ode_adjoint.odeint(func, y0, t, rtol=RTOL, atol=ATOL, method=method, options=options)

        sides = {
            "theirs": Side("theirs", theirs)
            if pairing.theirs in available
            else Side("theirs", None, f"not in torchdiffeq {version}"),
            "ours": Side("ours", ours),
        }
        for side in sides.values():
            if side.solve is not None:
                probe(side)
        rows.append(Row(pairing, sides))
    return rows


# --------------------------------------------------------------------------- report


def _ms(entry: dict[str, Any]) -> str:
    return f"{entry['median_ms']:.2f}" if "median_ms" in entry else "-"


def _nfe(entry: dict[str, Any], backward: bool) -> str:
    if "missing" in entry:
        return entry["missing"]
    return f"{entry['nfe']} / {entry['nfe_backward']}" if backward else str(entry["nfe"])


def _err(value: float | None) -> str:
    return "-" if value is None else f"{value:.1e}"


def markdown(rows: list[Row], mode: str) -> str:
    backward = mode != "forward"
    nfe = "NFE fwd / bwd" if backward else "NFE"
    columns = [
        "torchdiffeq",
        "ode_adjoint",
        f"{nfe} theirs",
        f"{nfe} ours",
        "ms theirs",
        "ms ours",
        "ours / theirs",
        "floor",
        "solver cost ours / theirs",
        "max abs diff y",
        "err y theirs",
        "err y ours",
    ]
    if backward:
        columns += ["rel diff grad", "err grad theirs", "err grad ours"]
    lines = []
    for row in rows:
        record = row.results[mode]
        theirs, ours = record["theirs"], record["ours"]
        label = row.pairing.label + (f" ({row.pairing.note})" if row.pairing.note else "")
        cells = [
            row.pairing.theirs,
            label,
            _nfe(theirs, backward),
            _nfe(ours, backward),
            _ms(theirs),
            _ms(ours),
            f"{record['ratio']:.2f}" if "ratio" in record else "-",
            f"{record['floor']:.2f}" if "floor" in record else "-",
            f"{record['own_ratio']:.2f}" if "own_ratio" in record else "-",
            _err(record.get("max_abs_diff_y")),
            _err(theirs.get("max_abs_err_y")),
            _err(ours.get("max_abs_err_y")),
        ]
        if backward:
            cells += [_err(value) for value in (record.get("rel_diff_grad"), theirs.get("rel_err_grad"))]
            cells.append(_err(ours.get("rel_err_grad")))
        lines.append(cells)
    return _common.markdown_table(columns, lines, first_numeric=2)


def summary(rows: list[Row], torchdiffeq_version: str, cost: Any) -> list[str]:
    """The notes under the tables: the target, the rows whose counts differ and why, the warnings."""
    lines = [
        f"floor: our NFE x the time of f alone ({cost.f_ms:.4f} ms; forward + backward: of f and its "
        f"vector-Jacobian product, {cost.fvjp_ms:.4f} ms; best CPU times) over theirs' median, the ratio "
        "ours / theirs would be if ode-adjoint cost nothing beyond f; solver cost: each side's time less its "
        "NFE x that time of f, ours over theirs (the solvers' own work, f's taken out)"
    ]
    for mode, title in (("forward", "forward"), ("forward+backward", "forward + backward")):
        both = [row.results[mode] for row in rows if "ratio" in row.results[mode]]
        met = [r for r in both if r["ratio"] <= RATIO_TARGET]
        if both:
            ratios = [r["ratio"] for r in both]
            lines.append(
                f"{title}: ours / theirs <= {RATIO_TARGET:g} in {len(met)} of {len(both)} rows measured on both "
                f"sides (median ratio {statistics.median(ratios):.2f}, range {min(ratios):.2f} to {max(ratios):.2f})"
            )
        out_of_reach = [
            f"{row.pairing.theirs} / {row.pairing.label}"
            for row in rows
            if row.results[mode].get("floor", 0.0) > RATIO_TARGET
        ]
        if out_of_reach:
            lines.append(
                f"{title}: floor above {RATIO_TARGET:g}, the target out of reach even if ode-adjoint cost nothing "
                f"beyond f: {', '.join(out_of_reach)}"
            )
    missing: dict[str, list[str]] = {}
    for row in rows:
        for side in row.sides.values():
            if side.solve is None:
                missing.setdefault(side.missing, []).append(row.pairing.theirs)
    for why, methods in missing.items():
        lines.append(f"{why}: {', '.join(dict.fromkeys(methods))}")
    differ: dict[str, list[str]] = {}
    for row in rows:
        record = row.results["forward"]
        if "ratio" not in record or record["theirs"]["nfe"] == record["ours"]["nfe"]:
            continue
        if row.pairing.note.startswith("another"):
            reason = "another method"
        else:
            reason = NFE_REASONS.get(row.pairing.theirs) or (
                CONTROLLER_REASON if row.pairing.adaptive else "reason not known"
            )
        differ.setdefault(reason, []).append(f"{row.pairing.theirs} / {row.pairing.label}")
    for reason, names in differ.items():
        lines.append(f"NFE differ for {', '.join(names)}: {reason}")
    lines.append(
        "max abs diff y and err y: between steps torchdiffeq's adaptive methods evaluate a fourth-order "
        "polynomial fitted through the step's ends and a midpoint; ode-core the method's dense output "
        "(dopri5, tsit5, dopri87, dopri8) or the cubic Hermite interpolant; torchdiffeq's last step overshoots "
        "t[-1], where ode-core's ends"
    )
    seen: dict[str, list[str]] = {}
    for row in rows:
        for side in row.sides.values():
            for text in side.warnings:
                who = f"torchdiffeq {torchdiffeq_version}" if side.name == "theirs" else "ode_adjoint"
                seen.setdefault(f"{who} warned ({text})", []).append(row.pairing.theirs)
    for text, methods in seen.items():
        lines.append(f"{text} for {', '.join(dict.fromkeys(methods))}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--torchdiffeq",
        metavar="PATH",
        help="import torchdiffeq from PATH (the folder holding the package; default: the installed one)",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run, noisier numbers)")
    parser.add_argument("--json", metavar="FILE", help="also write the machine, settings and tables as JSON")
    args = parser.parse_args(argv)

    torchdiffeq = import_torchdiffeq(args.torchdiffeq)
    # After torchdiffeq: this script's helpers import it, and must get the same one.
    from bench_adjoint_vs_peers import TORCHDIFFEQ_DOPRI5, FieldCost, float64_reference

    if args.quick:
        settings = {"min_time": 0.05, "min_repeats": 3, "max_repeats": 20, "max_case_time": 1.0, "field_budget": 0.2}
    else:
        settings = {"min_time": 0.5, "min_repeats": 7, "max_repeats": 300, "max_case_time": 5.0, "field_budget": 1.0}
    source = f" (imported from {args.torchdiffeq})" if args.torchdiffeq else ""
    machine = _common.machine_info(
        {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "torchdiffeq": torchdiffeq.__version__ + source,
            "ode_adjoint": ode_adjoint.__version__,
            "ode_core": ode_core.__version__,
            "device": "cpu",
        }
    )
    print(f"# every torchdiffeq method, torchdiffeq vs ode-adjoint {machine['ode_adjoint']} -- {machine['date']}")
    print(_common.machine_line(machine))
    print(f"# torchdiffeq {machine['torchdiffeq']}: {torchdiffeq.__file__}")
    print(
        f"# python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} thread); "
        f"MLP 2-{HIDDEN}-2 tanh, batch {BATCH}, float64, t = linspace(0, 1, {TIMES}), rtol = {RTOL:g}, "
        f"atol = {ATOL:g}, fixed steps step_size = {STEP_SIZE:g}"
    )
    print(
        f"# each side: warm-up, then in turn, >= {settings['min_repeats']} runs and >= {settings['min_time']:g} s "
        f"(or {settings['max_case_time']:g} s per case); median wall time",
        flush=True,
    )

    torch.manual_seed(SEED)
    func = MLPField(hidden=HIDDEN).to(DTYPE)
    y0 = torch.randn(BATCH, 2, dtype=DTYPE)
    t = torch.linspace(0.0, 1.0, TIMES, dtype=DTYPE)
    reference = float64_reference(func, y0, t)
    cost = FieldCost(func, torch.tensor(0.0, dtype=DTYPE), y0, block_f=64, block_vjp=16)
    cost.measure(settings["field_budget"])
    print(f"# f alone: {cost.f_ms:.4f} ms (no grad), f + vjp: {cost.fvjp_ms:.4f} ms (best CPU time)", flush=True)

    started = time.perf_counter()
    rows = build_rows(torchdiffeq, func, y0, t, TORCHDIFFEQ_DOPRI5)
    for row in rows:
        for mode in ("forward", "forward+backward"):
            measure(row, func, mode, settings, reference, cost)
        forward, both = row.results["forward"], row.results["forward+backward"]
        ratios = " / ".join(f"{r['ratio']:.2f}" if "ratio" in r else "-" for r in (forward, both))
        print(f"  {row.pairing.theirs:18s} {row.pairing.label:32s} ours/theirs fwd / fwd+bwd {ratios}", flush=True)
    total = time.perf_counter() - started

    tables = {
        "forward (no grad)": markdown(rows, "forward"),
        "forward + backward (backprop through the solver)": markdown(rows, "forward+backward"),
    }
    notes = summary(rows, torchdiffeq.__version__, cost)
    for title, table in tables.items():
        print(f"\n## {title}\n\n{table}")
    print("\n## notes\n")
    for line in notes:
        print(f"- {line}")
    print(f"\ntotal benchmark time: {total:.0f} s")

    if args.json:
        payload = {
            "machine": machine,
            "settings": settings,
            "problem": {
                "func": f"MLPField(hidden={HIDDEN})",
                "batch": BATCH,
                "dtype": str(DTYPE),
                "t": f"linspace(0, 1, {TIMES})",
                "rtol": RTOL,
                "atol": ATOL,
                "step_size": STEP_SIZE,
            },
            "field_cost_ms": {"f": cost.f_ms, "f+vjp": cost.fvjp_ms},
            "results": [record for row in rows for record in row.results.values()],
            "command": _common.command_line(),
            # The tables as printed, for benchmarks/tables.py to put in the docs.
            "markdown": tables,
            "summary": notes,
        }
        _common.write_json(args.json, payload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
