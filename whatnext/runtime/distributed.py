"""Data-parallel training over the GPUs of one node: the process group and what the ranks agree on.

A run of N processes is started by :mod:`whatnext.runtime.launch` (or ``torchrun``), which sets
``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``. Each rank drives one
device (``cuda:LOCAL_RANK``, or the CPU with the gloo backend, which the tests use) and trains a
``DistributedDataParallel`` copy of the model on its shard of every global batch
(:func:`rank_shard`): ``--batch-size`` stays the global batch, so N ranks see the clips of the
1-process run in the same order, and the averaged gradients are those of the whole batch.

What the ranks agree on, once per step: whether to stop (:func:`stop_together`: a deadline or signal
seen by any rank stops all of them at the same step, after rank 0 saved the state) and the batch's
mean loss (:func:`mean_over_ranks`). Only rank 0 (:attr:`Ranks.main`) writes files.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
import torch.distributed as dist

ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
TIMEOUT = datetime.timedelta(minutes=30)  # a collective waiting longer means a rank died


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that logs progress and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Ranks":
        """The launcher's ``RANK`` / ``LOCAL_RANK`` / ``WORLD_SIZE`` (one process when unset)."""
        if "WORLD_SIZE" not in environ:
            return cls()
        try:
            rank, local, world = (int(environ.get(key, "0")) for key in ENV_KEYS)
        except ValueError:
            raise ValueError(f"bad launcher environment: {', '.join(f'{k}={environ.get(k)!r}' for k in ENV_KEYS)}") from None
        if not (world >= 1 and 0 <= rank < world and local >= 0):
            raise ValueError(f"bad launcher environment: RANK={rank} LOCAL_RANK={local} WORLD_SIZE={world}")
        return cls(rank, world, local)


def current_ranks() -> Ranks:
    """The ranks of the initialised process group (one process when there is none)."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return Ranks()


def rank_device(name: str, ranks: Ranks = Ranks()) -> torch.device:
    """The device of this rank for ``--device name``: ``auto`` -> ``cuda:LOCAL_RANK`` (CUDA) or the CPU;
    a plain ``cuda`` also means this rank's card when there are several ranks."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None and ranks.distributed:
        device = torch.device("cuda", ranks.local_rank)
    return device


def init_process_group(device_name: str = "auto") -> Ranks:
    """Join the process group the launcher's environment describes (nothing for one process).

    NCCL on CUDA, gloo on the CPU; each CUDA rank is bound to its card first.
    """
    ranks = Ranks.from_env()
    if not ranks.distributed or dist.is_initialized():
        return ranks
    device = rank_device(device_name, ranks)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank, world_size=ranks.world,
                            timeout=TIMEOUT)
    return ranks


def close_process_group() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_shard(keys: Sequence, ranks: Ranks) -> list:
    """This rank's contiguous share of one global batch's keys (equal shares; the caller checks divisibility)."""
    size = len(keys) // ranks.world
    return list(keys[ranks.rank * size : (ranks.rank + 1) * size])


def check_shardable(batch_size: int, drop_last: bool, ranks: Ranks) -> None:
    """Every global batch must split into equal non-empty shards (equal shares keep the gradient the
    batch mean): ``batch_size`` divisible by the world size, and no short last batch."""
    if not ranks.distributed:
        return
    if batch_size % ranks.world:
        raise ValueError(f"--batch-size {batch_size} (the global batch) must be a multiple of the {ranks.world} processes")
    if not drop_last:
        raise ValueError(f"{ranks.world} processes need full batches only (drop_last); this stage keeps a short last batch")


def stop_together(reason: str | None, ranks: Ranks) -> str | None:
    """``reason`` if this rank must stop, another rank's cue if any rank must, else None (all ranks agree)."""
    if not ranks.distributed:
        return reason
    flag = torch.tensor([0 if reason is None else 1], dtype=torch.int32, device=_collective_device())
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    if flag.item() == 0:
        return None
    return reason or "another rank stopping"


def mean_over_ranks(value: float, ranks: Ranks) -> float:
    """The mean of a per-rank number over all ranks (the number itself for one process)."""
    if not ranks.distributed:
        return value
    total = torch.tensor([value], dtype=torch.float64, device=_collective_device())
    dist.all_reduce(total)
    return total.item() / ranks.world


def barrier(ranks: Ranks) -> None:
    """Wait for every rank (no-op for one process)."""
    if ranks.distributed:
        dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
