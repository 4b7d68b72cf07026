"""Distributed helpers: the ranks torchrun sets, the process group, all-reduces, data sharding.

A run under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` in the
environment) trains on every process; without those variables it is one
process and every helper here is a no-op. :func:`process_group` joins the
group for the whole run and makes every rank leave it when the run ends,
also on errors, so that no rank outlives the others.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from ._config import RunError

__all__ = [
    "DistEnv",
    "all_max",
    "all_sum",
    "barrier",
    "dist_from_env",
    "epoch_batches",
    "eval_shard",
    "process_group",
    "rank_device",
    "seed_words",
]


@dataclasses.dataclass(frozen=True)
class DistEnv:
    """This process's place in the run: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """Whether there are several processes."""
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """Whether this is rank 0, the one that logs and writes files."""
        return self.rank == 0


def dist_from_env() -> DistEnv:
    """RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (single process without them)."""
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistEnv()
    try:
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError as exc:
        raise RunError(f"RANK, WORLD_SIZE, LOCAL_RANK: expected integers ({exc})") from exc
    return DistEnv(rank, world, local)


def rank_device(device: str, dist: DistEnv) -> torch.device:
    """The CPU, or the CUDA device of this rank's ``local_rank`` (made current)."""
    if device == "cuda":
        if not torch.cuda.is_available():
            raise RunError("--device cuda: no CUDA device is available")
        cuda = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(cuda)
        return cuda
    return torch.device("cpu")


@contextlib.contextmanager
def process_group(dist: DistEnv, device: torch.device) -> Iterator[None]:
    """Join the default process group for the body; every rank leaves it at the end.

    On success the ranks meet at a barrier first, so none leaves while
    rank 0 still writes the run's files, then each destroys the group. On
    an error a gloo rank destroys its group at once, closing its
    connections: the other ranks' next collective fails within seconds
    (instead of waiting for the group's timeout) and they leave too. An
    NCCL rank does not: destroying an NCCL group while the peers are inside
    a collective can hang (the abort is collective in some NCCL versions),
    and the process's exit frees it anyway. A group that someone else
    initialised is left to them.
    """
    if not dist.enabled or torch.distributed.is_initialized():
        yield
        return
    nccl = device.type == "cuda"
    torch.distributed.init_process_group("nccl" if nccl else "gloo")
    try:
        yield
    except BaseException:
        if not nccl:
            torch.distributed.destroy_process_group()
        raise
    try:
        barrier(dist, device)
    finally:
        torch.distributed.destroy_process_group()


def barrier(dist: DistEnv, device: torch.device) -> None:
    """Wait until every rank gets here (no-op for one process)."""
    if dist.enabled:
        torch.distributed.barrier(device_ids=[device.index] if device.type == "cuda" else None)


def all_sum(values: list[float], dist: DistEnv, device: torch.device) -> list[float]:
    """``values`` summed element-wise over the ranks (float64)."""
    if not dist.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor)
    return [float(v) for v in tensor.tolist()]


def all_max(value: float, dist: DistEnv, device: torch.device) -> float:
    """The largest ``value`` over the ranks."""
    if not dist.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
    return float(tensor.item())


def seed_words(*words: int) -> int:
    """A 63-bit seed mixed from ``words`` (NumPy's SeedSequence): one independent stream per tuple."""
    return int(np.random.SeedSequence([w & 0xFFFFFFFF for w in words]).generate_state(1, np.uint64)[0] >> 1)


def epoch_batches(n: int, batch_size: int, epoch: int, seed: int, dist: DistEnv) -> list[torch.Tensor]:
    """This rank's batches of epoch ``epoch``: a permutation seeded by (seed, epoch), sharded like DistributedSampler.

    The permutation is padded (by wrapping around) to a multiple of the world
    size, rank ``r`` takes every world-size-th index from ``r``, and splits
    its shard into batches of ``batch_size // world_size``; every rank gets
    the same number of batches, so their collectives pair up.
    """
    generator = torch.Generator().manual_seed(seed_words(seed, epoch))
    order = torch.randperm(n, generator=generator)
    world = dist.world_size
    total = math.ceil(n / world) * world
    if total > n:
        order = torch.cat((order, order[: total - n]))
    shard = order[dist.rank : total : world]
    return list(torch.split(shard, batch_size // world))


def eval_shard(n: int, dist: DistEnv) -> torch.Tensor:
    """This rank's test indices: every world-size-th from ``rank`` (no padding: each image counts once)."""
    return torch.arange(dist.rank, n, dist.world_size)
