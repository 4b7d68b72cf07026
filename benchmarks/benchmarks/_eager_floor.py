"""A hand-written dopri5 solve in eager PyTorch: the floor the general solver is measured against.

It does the work of ``ode_adjoint.solve(func, y0, t, method="dopri5")`` on a
forward solve without autograd, and nothing else: the same tableau (read from
ode-core), Hairer's first step, scipy's step-size rule, outputs by the
tableau's interpolant, with the fewest torch operations we know for each
(one ``addmv`` per stage sum, the error ratio in five kernels and one read,
one ``addmm`` per step's block of outputs), and none of the general solver's
options, checks, statistics or failure handling. It takes the same steps and
evaluations as ``ode_adjoint.solve`` (``tests/test_eager_floor.py`` holds it
to that), so the ratio of the two times is what the general loop costs over
the least an eager explicit Runge--Kutta loop can do with the same kernels.

Benchmark-only code: a reference, never a second solver of the packages.
"""

from __future__ import annotations

import math

import ode_core
import torch

__all__ = ["hand_written_dopri5"]

_TABLEAU = ode_core.TABLEAUX["dopri5"]
_NODES = [float(c) for c in _TABLEAU.c]
_DENSE = [[float(v) for v in row] for row in _TABLEAU.dense]
_SAFETY, _MIN_FACTOR, _MAX_FACTOR = 0.9, 0.2, 10.0
_EXPONENT = -1.0 / (_TABLEAU.controller_order + 1)


def hand_written_dopri5(
    func: torch.nn.Module, y0: torch.Tensor, t: torch.Tensor, rtol: float, atol: float
) -> tuple[torch.Tensor, int]:
    """Outputs ``(len(t), *y0.shape)`` and the evaluations of ``func``; call under ``torch.no_grad``.

    Parameters
    ----------
    func : callable
        ``func(t, y)`` on states of ``y0``'s shape, ``t`` a Python float.
    y0 : Tensor
    t : Tensor, shape (m,)
        Increasing output times, m >= 2.
    rtol, atol : float

    Returns
    -------
    ys : Tensor, shape (m, *y0.shape)
    nfev : int
    """
    shape, dtype, device = y0.shape, y0.dtype, y0.device
    n = y0.numel()
    times = t.tolist()
    stages = torch.empty((_TABLEAU.n_stages, n), dtype=dtype, device=device)
    rows, shaped = list(stages.unbind(0)), [row.view(shape) for row in stages.unbind(0)]
    prefixes = [stages[:i].T for i in range(_TABLEAU.n_stages)]
    weights = [
        torch.tensor([float(a) for a in row[:i]], dtype=dtype, device=device) for i, row in enumerate(_TABLEAU.a)
    ]
    error_weights = torch.tensor([float(e) for e in _TABLEAU.error_weights], dtype=dtype, device=device)
    stages_t = stages.T

    def rms(v: torch.Tensor) -> float:
        return math.sqrt(float(torch.dot(v, v)) / n)

    y = y0.reshape(n)
    t_now, t_end = times[0], times[-1]
    f0 = func(t_now, y0).reshape(n)
    rows[0].copy_(f0)
    # Hairer, Norsett & Wanner, Solving ODEs I, II.4 (as ode-core's select_initial_step).
    scale = y.abs().mul_(rtol).add_(atol)
    d0, d1 = rms(y / scale), rms(f0 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, t_end - t_now)
    d2 = rms((func(t_now + h0, (y + h0 * f0).view(shape)).reshape(n) - f0) / scale) / h0
    order = _TABLEAU.controller_order + 1
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1.0 / order)
    h = min(100 * h0, h1, t_end - t_now)
    nfev = 2
    outputs = [y0.reshape(1, n)]
    next_output = 1
    abs_y = y.abs()
    rejected = False
    while t_now < t_end:
        landed = t_now + h >= t_end - 1e-12 * h
        if landed:
            h = t_end - t_now
        for i in range(1, 6):
            shaped[i].copy_(func(t_now + _NODES[i] * h, torch.addmv(y, prefixes[i], weights[i], alpha=h).view(shape)))
        y1 = torch.addmv(y, prefixes[6], weights[6], alpha=h)
        shaped[6].copy_(func(t_now + h, y1.view(shape)))
        nfev += 6
        abs_y1 = y1.abs()
        error = torch.mv(stages_t, error_weights).div_(torch.maximum(abs_y, abs_y1).add_(atol / rtol))
        ratio = abs(h / rtol) * rms(error)
        if ratio <= 1.0:
            t_new = t_end if landed else t_now + h
            block = []
            while next_output < len(times) and times[next_output] <= t_new:
                theta = (times[next_output] - t_now) / h
                powers = [h * theta ** (j + 1) for j in range(len(_DENSE[0]))]
                block.append([sum(c * p for c, p in zip(row, powers)) for row in _DENSE])
                next_output += 1
            if block:
                outputs.append(
                    torch.addmm(y.expand(len(block), n), torch.tensor(block, dtype=dtype, device=device), stages)
                )
            factor = _MAX_FACTOR if ratio == 0.0 else min(_MAX_FACTOR, _SAFETY * ratio**_EXPONENT)
            if rejected:
                factor = min(1.0, factor)
            t_now, y, abs_y, rejected = t_new, y1, abs_y1, False
            rows[0].copy_(rows[6])
        else:
            factor = max(_MIN_FACTOR, _SAFETY * ratio**_EXPONENT)
            rejected = True
        h *= factor
    return torch.cat(outputs).view(len(times), *shape), nfev
