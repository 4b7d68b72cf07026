"""Host-device synchronisations per step of ``ode_adjoint`` solves on CUDA.

A synchronisation makes the host wait until the GPU has finished everything
queued so far, which stalls the kernel queue; a solver loop should take one
only where the host must decide something from the GPU's numbers (accept or
reject a step). This script counts them with torch's sync debug mode
(``torch.cuda.set_sync_debug_mode("warn")`` warns at every synchronising
call: ``.item()``, ``float(tensor)``, ``bool(tensor)``, device-to-host copies)
for each method and gradient engine, forward and backward, on workload (a) of
``bench_adjoint_vs_peers.py`` (the 2-50-2 MLP, batch 16, in float64 (the
tighter of the two tolerances below is under float32's resolution), t in
[0, 10] with 11 outputs, rtol 1e-6, atol 1e-8; fixed-step methods with
``step_size = 0.05``).

"per step" is the slope between two solves that differ only in tolerance
(or step size), so the syncs paid once per solve (checking the inputs, the
final finiteness check) drop out; "total" is the count of the first solve.

Run from the repository root on a machine with CUDA::

    python benchmarks/cuda_syncs.py [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from typing import Any

import ode_adjoint
import torch
from benchmarks._fields import MLPField

from benchmarks import _common

ADAPTIVE = ("dopri5", "tsit5", "bosh3", "dopri8", "dopri87", "kvaerno5", "radau5")
FIXED = ("euler", "rk4")
GRADIENTS = ("backprop", "adjoint", "checkpoint")
COLUMNS = ("steps", "syncs", "syncs_per_step", "backward_steps", "backward_syncs", "backward_syncs_per_step")


def count_synchronisations(call: Callable[[], Any]) -> tuple[Any, int]:
    """``call()``'s result and how many times it made the host wait for the GPU."""
    torch.cuda.synchronize()
    previous = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = call()
        finally:
            torch.cuda.set_sync_debug_mode(previous)
    return result, sum("synchroniz" in str(w.message) for w in caught)


def one_solve(method: str, gradient: str, accuracy: float) -> dict[str, int]:
    """Forward and backward counts of one solve; ``accuracy`` scales the tolerances or the step size."""
    torch.manual_seed(0)
    device = torch.device("cuda")
    # float64: the tight tolerances below are under float32's resolution.
    func = MLPField().to(device, torch.float64)
    y0 = torch.randn(16, 2).to(device, torch.float64)
    t = torch.linspace(0.0, 10.0, 11, device=device)
    if method in FIXED:
        settings: dict[str, Any] = {"options": {"step_size": 0.05 * accuracy}}
    else:
        settings = {"rtol": 1e-6 * accuracy, "atol": 1e-8 * accuracy}
    solution, forward = count_synchronisations(
        lambda: ode_adjoint.solve(func, y0, t, method=method, gradient=gradient, **settings)
    )
    loss = solution.ys.square().sum()
    _, backward = count_synchronisations(loss.backward)
    backward_stats = solution.backward_stats
    return {
        "steps": solution.stats.n_steps,
        "syncs": forward,
        "backward_steps": 0 if backward_stats is None else backward_stats.n_steps,
        "backward_syncs": backward,
    }


def measure(method: str, gradient: str) -> dict[str, Any]:
    """Counts at two accuracies, and the per-step slopes between them."""
    one_solve(method, gradient, 1.0)  # warm-up: lazy CUDA initialisation, cuBLAS handles
    coarse = one_solve(method, gradient, 1.0)
    fine = one_solve(method, gradient, 0.1 if method in FIXED else 1e-2)
    record: dict[str, Any] = {"method": method, "gradient": gradient, **coarse}
    for steps, syncs in (("steps", "syncs"), ("backward_steps", "backward_syncs")):
        extra_steps = fine[steps] - coarse[steps]
        record[f"{syncs}_per_step"] = (fine[syncs] - coarse[syncs]) / extra_steps if extra_steps else None
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        parser.error("needs CUDA: torch.cuda.is_available() is False")

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.2f}" if isinstance(value, float) else str(value)

    print(f"# host-device synchronisations, {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print("| method | gradient | steps | syncs | syncs/step | backward steps | backward syncs | backward syncs/step |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    rows = []
    for method in FIXED + ADAPTIVE:
        for gradient in GRADIENTS:
            try:
                row = measure(method, gradient)
            except (ValueError, NotImplementedError, RuntimeError) as error:
                row = {"method": method, "gradient": gradient, "error": str(error).splitlines()[0]}
                print(f"| {method} | {gradient} | {row['error']} ||||||", flush=True)
            else:
                cells = " | ".join(cell(row[key]) for key in COLUMNS)
                print(f"| {method} | {gradient} | {cells} |", flush=True)
            rows.append(row)
    if args.json:
        _common.write_json(args.json, {"device": torch.cuda.get_device_name(0), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
