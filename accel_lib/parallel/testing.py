"""Small workers for showing (and testing) what the launcher does with failures."""

from __future__ import annotations

import os
import time

import torch.distributed as dist

__all__ = ["fail_worker", "hang_worker", "spin_worker"]


def spin_worker(rank: int, world_size: int) -> dict:
    """Report who and where this worker is (rank, world size, backend, pid)."""
    return {"rank": rank, "world_size": world_size, "backend": dist.get_backend(),
            "pid": os.getpid()}


def fail_worker(rank: int, world_size: int, bad_rank: int = 1) -> int:
    """Rank ``bad_rank`` raises a ValueError; the others return their rank."""
    dist.barrier()  # every rank has joined the group: the failure is fn's, not the setup's
    if rank == bad_rank:
        raise ValueError(f"rank {rank} was told to fail")
    return rank


def hang_worker(rank: int, world_size: int, seconds: float = 600.0) -> int:
    """Every rank sleeps ``seconds`` (a stand-in for a deadlocked collective)."""
    time.sleep(seconds)
    return rank
