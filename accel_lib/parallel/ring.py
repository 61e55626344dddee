"""Ring all-reduce from point-to-point messages: reduce-scatter, then all-gather.

The tensor is cut into ``p`` chunks (``torch.tensor_split``: sizes not divisible by ``p``
give chunks that differ by one element). In the reduce-scatter phase, at step ``s`` rank ``r``
sends chunk ``(r - s) mod p`` to rank ``r + 1`` and adds the chunk ``(r - s - 1) mod p`` it
receives from rank ``r - 1``; after ``p - 1`` steps rank ``r`` holds the full sum of chunk
``(r + 1) mod p``. The all-gather phase passes those finished chunks round the ring for
another ``p - 1`` steps: at step ``s`` rank ``r`` sends chunk ``(r + 1 - s) mod p`` and
receives (and overwrites) chunk ``(r - s) mod p``. Each rank sends ``2 (p - 1)`` chunks,
``2 (p - 1) / p * n`` elements in all, whatever ``p`` is: that is why the ring is
bandwidth-optimal.

Each step posts its send and its receive together (``isend`` + ``irecv``, then waits on
both), so no rank blocks in a send that its neighbour is not yet receiving.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist

from .._validate import check_int, check_tensor
from .launcher import worker_device

__all__ = ["ring_schedule", "ring_all_reduce_", "ring_bytes", "ring_check_worker",
           "allreduce_time_worker"]


def ring_schedule(world_size: int) -> list[list[tuple[int, int]]]:
    """The chunk each rank sends and receives at each of the ``2 (p - 1)`` steps.

    Returns ``steps[s][r] = (sent chunk, received chunk)`` for rank ``r`` at step ``s``:
    steps ``0 .. p-2`` are the reduce-scatter (the received chunk is added), steps
    ``p-1 .. 2p-3`` the all-gather (the received chunk is copied).
    """
    p = check_int(world_size, "world_size", minimum=1)
    steps = []
    for s in range(p - 1):
        steps.append([((r - s) % p, (r - s - 1) % p) for r in range(p)])
    for s in range(p - 1):
        steps.append([((r + 1 - s) % p, (r - s) % p) for r in range(p)])
    return steps


def ring_bytes(nbytes: float, world_size: int) -> float:
    """Bytes each rank sends in a ring all-reduce of ``nbytes``: ``2 (p - 1) / p * nbytes``."""
    p = check_int(world_size, "world_size", minimum=1)
    return 2.0 * (p - 1) / p * nbytes


def ring_all_reduce_(tensor: torch.Tensor, group: dist.ProcessGroup | None = None) -> int:
    """Sum ``tensor`` over every rank of ``group`` in place, by a ring of send/recv.

    Must be called by every rank with a tensor of the same shape and dtype (contiguous).
    Returns the number of bytes this rank sent.
    """
    check_tensor(tensor, "tensor")
    if not tensor.is_contiguous():
        raise ValueError("tensor must be contiguous (call .contiguous() first)")
    p = dist.get_world_size(group)
    r = dist.get_rank(group)
    if p == 1:
        return 0
    to_rank = dist.get_global_rank(group, (r + 1) % p) if group is not None else (r + 1) % p
    from_rank = dist.get_global_rank(group, (r - 1) % p) if group is not None else (r - 1) % p
    chunks = torch.tensor_split(tensor.view(-1), p)
    sent = 0
    for s, ranks in enumerate(ring_schedule(p)):
        send_i, recv_i = ranks[r]
        buf = torch.empty_like(chunks[recv_i])
        reqs = [dist.isend(chunks[send_i], to_rank, group=group),
                dist.irecv(buf, from_rank, group=group)]
        for req in reqs:
            req.wait()
        sent += chunks[send_i].numel() * chunks[send_i].element_size()
        if s < p - 1:
            chunks[recv_i].add_(buf)
        else:
            chunks[recv_i].copy_(buf)
    return sent


def ring_check_worker(rank: int, world_size: int, sizes: tuple[int, ...],
                      seed: int = 0) -> list[dict]:
    """Worker: ring all-reduce vs ``dist.all_reduce`` on random tensors of each size.

    Returns one dict per size: ``max_abs_diff``, ``bytes_sent`` (counted) and
    ``expected_bytes`` (the formula, exact when ``p`` divides the size).
    """
    out = []
    for n in sizes:
        gen = torch.Generator().manual_seed(seed + 1000 * rank + n)
        x = torch.randn(n, generator=gen, dtype=torch.float64).to(worker_device())
        mine, ref = x.clone(), x.clone()
        sent = ring_all_reduce_(mine)
        dist.all_reduce(ref)
        out.append({"size": n, "max_abs_diff": (mine - ref).abs().max().item(),
                    "bytes_sent": sent, "expected_bytes": ring_bytes(n * 8, world_size)})
    return out


def allreduce_time_worker(rank: int, world_size: int, numel: int, repeats: int = 10,
                          warmup: int = 2) -> dict:
    """Worker: time the ring and gloo's ``dist.all_reduce`` on ``numel`` float32, interleaved.

    Every rank runs the same fixed number of calls (a collective must be called by all), with a
    barrier before each sample. Returns per-call milliseconds of each (lists) on this rank.
    """
    device = worker_device()
    x = torch.randn(numel, device=device)
    ring_ms, lib_ms = [], []
    for i in range(warmup + repeats):
        for fn, store in ((ring_all_reduce_, ring_ms), (dist.all_reduce, lib_ms)):
            y = x.clone()
            dist.barrier()
            t0 = time.perf_counter()
            fn(y)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            dt = (time.perf_counter() - t0) * 1e3
            if i >= warmup:
                store.append(dt)
    return {"ring_ms": ring_ms, "gloo_ms": lib_ms, "numel": numel}
