"""The run's checkpoint: its format, saved and loaded side by side, and its recovery after a kill.

``checkpoint.pt`` is a ``torch.save`` archive of one dict, readable with
``torch.load(path, weights_only=True)``::

    format      "ode-models-checkpoint"
    version     2 (1: the same without "digest"; both are read)
    epoch       epochs done
    config      the TrainConfig, as a dict
    model, optimizer, scheduler
                their state_dicts
    rng         torch, NumPy, Python (and CUDA) generator states
    metrics     the metrics.jsonl lines so far
    params, world_size
    digest      SHA-256 of everything above (tensors by dtype, shape, bytes)

The digest makes "it loads" mean "it is what was written": ``torch.load``
checks the archive's structure, not its tensors' bytes. It is what lets
``--resume`` trust a temporary file that a kill left between the write and
the rename (:func:`find_resume_checkpoint`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import random
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._config import RunError
from ._files import atomic_write, sync_folder, temporary_files

__all__ = [
    "CHECKPOINT",
    "FORMAT",
    "KILL_BEFORE_RENAME",
    "VERSION",
    "checkpoint_digest",
    "find_resume_checkpoint",
    "load_checkpoint",
    "promote",
    "restore",
    "resumable_temporaries",
    "rng_state",
    "save_checkpoint",
]

CHECKPOINT = "checkpoint.pt"
"""The checkpoint's file name in a run folder."""
FORMAT = "ode-models-checkpoint"
VERSION = 2
_READABLE_VERSIONS = (1, 2)
_KEYS = frozenset({"format", "version", "epoch", "config", "model", "optimizer", "scheduler", "rng", "metrics"})
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's archive is a zip file
_EXPECTED = (
    f"expected the torch.save archive that 'ode-models train' writes, a dict with format {FORMAT!r} "
    f"and version {' or '.join(map(str, _READABLE_VERSIONS))}"
)

KILL_BEFORE_RENAME = "ODE_MODELS_TEST_KILL_BEFORE_RENAME"
"""Test hook: with this variable set to ``N``, the process SIGKILLs itself once epoch N's checkpoint
is complete in its temporary file, before the rename; a kill at the worst moment, without a race."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` (the keys above, without ``digest``) to ``path`` atomically, with its digest."""
    full = {**state, "format": FORMAT, "version": VERSION}
    full["digest"] = checkpoint_digest(full)
    atomic_write(path, functools.partial(torch.save, full), before_rename=_kill_hook(int(state["epoch"])))


def _kill_hook(epoch: int) -> Callable[[Path], None] | None:
    if os.environ.get(KILL_BEFORE_RENAME) != str(epoch):
        return None

    def kill(temporary: Path) -> None:
        sigkill = getattr(signal, "SIGKILL", None)
        if sigkill is None:  # Windows
            os._exit(137)
        os.kill(os.getpid(), sigkill)

    return kill


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and check a checkpoint; :class:`RunError` with a plain message if it is not one of ours.

    Parameters
    ----------
    path : Path
        The file (never modified).

    Returns
    -------
    dict
        The checkpoint, tensors on the CPU.
    """
    if not path.is_file():
        raise RunError(f"{path}: no such checkpoint file")

    def not_ours(found: str) -> RunError:
        return RunError(f"{path}: not an ode-models checkpoint: {found}; {_EXPECTED}. It was left as it is")

    with path.open("rb") as handle:
        head = handle.read(16)
    if not head:
        raise not_ours("the file is empty")
    if not head.startswith(_ZIP_MAGIC):
        raise not_ours(f"not a torch archive (a zip file); it starts with {head!r}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's advice to pass weights_only=False does not apply here
        raise not_ours("a torch file with objects other than tensors, numbers, strings and containers") from exc
    except Exception as exc:  # truncated or damaged: OSError, RuntimeError from the zip reader
        raise RunError(
            f"{path}: not a readable checkpoint: a truncated or damaged torch archive "
            f"({type(exc).__name__}: {exc}); it was left as it is"
        ) from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        holds = f"keys {', '.join(map(repr, list(checkpoint)[:6]))}" if isinstance(checkpoint, dict) else "no dict"
        raise not_ours(f"a torch file without the checkpoint's format key (it holds {holds})")
    version = checkpoint.get("version")
    if version not in _READABLE_VERSIONS:
        raise RunError(
            f"{path}: checkpoint format version {version!r}; this ode-models reads versions "
            f"{' and '.join(map(str, _READABLE_VERSIONS))} (was it written by a newer one?); it was left as it is"
        )
    missing = _KEYS - checkpoint.keys()
    if missing:
        raise RunError(f"{path}: incomplete checkpoint (no {', '.join(sorted(missing))}); it was left as it is")
    if version >= 2 and checkpoint.get("digest") != checkpoint_digest(checkpoint):
        raise RunError(
            f"{path}: damaged checkpoint: its contents differ from the digest recorded when it was written; "
            "it was left as it is"
        )
    return checkpoint


def checkpoint_digest(state: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of ``state`` without its ``digest`` key: tensors by dtype, shape and bytes, the rest by repr."""
    hasher = hashlib.sha256()
    _feed(hasher, {key: value for key, value in state.items() if key != "digest"})
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, Mapping):
        hasher.update(f"dict {len(value)};".encode())
        for key, item in value.items():  # insertion order, which torch.save and torch.load keep
            _feed(hasher, key)
            _feed(hasher, item)
    elif isinstance(value, (list, tuple)):
        hasher.update(f"{type(value).__name__} {len(value)};".encode())
        for item in value:
            _feed(hasher, item)
    else:
        hasher.update(f"{type(value).__name__} {value!r};".encode())


def find_resume_checkpoint(path: Path) -> tuple[Path, dict[str, Any]]:
    """The checkpoint to resume from: ``path``, or a complete temporary one of a later epoch.

    A kill between a checkpoint's write and its rename leaves the new
    epoch complete in ``.checkpoint.pt.XXXXXXXX.tmp`` and ``path`` one
    epoch older (or missing, after the first epoch); such a file counts
    when it loads and its digest matches. Incomplete ones are skipped.

    Parameters
    ----------
    path : Path
        ``OUT/checkpoint.pt``.

    Returns
    -------
    (Path, dict)
        The file chosen and its checkpoint.

    Raises
    ------
    RunError
        No usable checkpoint, or ``path`` exists but is not one (left as it is).
    """
    best = (path, load_checkpoint(path)) if path.exists() else None
    temporaries = temporary_files(path)
    for temporary in temporaries:
        try:
            state = load_checkpoint(temporary)
        except RunError:
            continue
        if best is None or state["epoch"] > best[1]["epoch"]:
            best = (temporary, state)
    if best is None:
        found = f" (only {len(temporaries)} incomplete temporary file(s) beside it)" if temporaries else ""
        raise RunError(f"--resume: no checkpoint {str(path)!r} to resume from{found}")
    return best


def resumable_temporaries(path: Path) -> list[Path]:
    """The temporary files of ``path`` that hold a complete checkpoint (a run that ``--resume`` can continue)."""
    complete = []
    for temporary in temporary_files(path):
        try:
            load_checkpoint(temporary)
        except RunError:
            continue
        complete.append(temporary)
    return complete


def promote(temporary: Path, path: Path) -> None:
    """Finish the rename a kill interrupted: ``temporary`` becomes ``path`` (atomically)."""
    os.replace(temporary, path)
    sync_folder(path.parent)


def rng_state(device: torch.device) -> dict[str, Any]:
    """The global generators' states (torch, NumPy, ``random``, CUDA on a CUDA device), as tensors and numbers."""
    numpy_state: dict[str, Any] = np.random.get_state(legacy=False)  # noqa: NPY002 (the global RNG is seeded)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        {
            "bit_generator": numpy["bit_generator"],
            "state": {"key": numpy["key"].numpy().astype(np.uint32), "pos": int(numpy["pos"])},
            "has_gauss": int(numpy["has_gauss"]),
            "gauss": float(numpy["gauss"]),
        }
    )
    random.setstate(state["python"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def restore(
    checkpoint: Mapping[str, Any],
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    device: torch.device,
) -> None:
    """Load ``checkpoint`` into the run's objects and the global generators; :class:`RunError` if it does not fit."""
    try:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        _set_rng_state(checkpoint["rng"], device)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise RunError(f"{path}: does not fit this model ({exc}); it was left as it is") from exc
