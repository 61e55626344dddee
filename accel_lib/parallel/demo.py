"""Workers that batch several measurements into one launch (each launch costs a process
start and a torch import per rank): the notebook's and the benchmarks' runs."""

from __future__ import annotations

from .pipeline import bubble_worker, pipeline_worker
from .ring import allreduce_time_worker, ring_check_worker
from .tensor import tensor_parallel_worker

__all__ = ["ring_demo_worker", "model_parallel_demo_worker"]


def ring_demo_worker(rank: int, world_size: int, sizes: tuple[int, ...], time_numel: int,
                     repeats: int = 10) -> dict:
    """:func:`ring_check_worker` on ``sizes``, then :func:`allreduce_time_worker`."""
    return {"check": ring_check_worker(rank, world_size, sizes),
            "timing": allreduce_time_worker(rank, world_size, time_numel, repeats)}


def model_parallel_demo_worker(rank: int, world_size: int, micro_batches: int = 4,
                               batch: int = 16, bubble_micro_counts: tuple[int, ...] = ()) -> dict:
    """:func:`pipeline_worker` (GPipe step), :func:`tensor_parallel_worker`, and with
    ``bubble_micro_counts`` :func:`bubble_worker` over those micro-batch counts."""
    out = {"pipeline": pipeline_worker(rank, world_size, micro_batches, batch),
           "tensor": tensor_parallel_worker(rank, world_size)}
    if bubble_micro_counts:
        out["bubble"] = bubble_worker(rank, world_size, bubble_micro_counts)
    return out
