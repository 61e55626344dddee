"""Data parallelism: every rank holds the whole model and a shard of each batch.

By hand: each rank computes the gradient of its shard's mean loss, the gradients are summed
with an all-reduce and divided by the world size, and every rank takes the same step, so the
replicas stay identical. With equal shards this is exactly the gradient of the mean loss over
the concatenated batch, so ``p`` ranks with batch ``B / p`` each train like one process with
batch ``B`` (:func:`single_process_train`). ``DistributedDataParallel`` does the same, with the
all-reduce overlapped with the backward pass (gradient buckets).

Each rank reads its shard through ``DistributedSampler``: one shared permutation per epoch
(seeded), rank ``r`` takes positions ``r, r + p, r + 2p, ...``, so step ``t``'s shards together
are the permutation's positions ``t B .. (t + 1) B - 1``, the single process's batch ``t``.
"""

from __future__ import annotations

import time

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

from .._validate import check_choice, check_int, check_module, check_real
from ..data import load_digits_arrays
from ..models import MLP
from .launcher import worker_device

__all__ = ["average_gradients_", "check_batch", "digits_dataset", "make_model", "mean_over_ranks",
           "data_parallel_worker", "data_parallel_modes_worker", "single_process_train", "MODES"]

MODES = ("manual", "ddp")


def check_batch(batch_size: int, world_size: int) -> int:
    """The per-rank batch; ``batch_size`` must be >= and divisible by ``world_size``."""
    world_size = check_int(world_size, "world_size", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if batch_size < world_size:
        raise ValueError(f"batch_size must be >= world_size (one example per rank at least), "
                         f"got batch_size={batch_size} with world_size={world_size}")
    if batch_size % world_size:
        raise ValueError(f"batch_size must be a multiple of world_size (equal shards), got "
                         f"batch_size={batch_size} with world_size={world_size}")
    return batch_size // world_size


def average_gradients_(model: nn.Module, group: dist.ProcessGroup | None = None) -> None:
    """All-reduce every parameter's gradient over ``group`` and divide by its size (in place)."""
    check_module(model)
    p = dist.get_world_size(group)
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad, group=group)
            param.grad.div_(p)


def digits_dataset() -> TensorDataset:
    """All 1,797 digits as a TensorDataset (x: (N, 1, 8, 8) float32, y: (N,) int64)."""
    x, y = load_digits_arrays()
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(y))


def make_model(seed: int = 0, hidden: tuple[int, ...] = (64,)) -> nn.Module:
    """The small digits MLP every rank (and the single process) builds from the same seed."""
    torch.manual_seed(seed)
    return MLP(64, hidden, 10)


def _loader(world_size: int, rank: int, per_rank: int, seed: int) -> DataLoader:
    data = digits_dataset()
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True,
                                 seed=seed, drop_last=True)
    return DataLoader(data, batch_size=per_rank, sampler=sampler, drop_last=True)


def _train(model: nn.Module, loader: DataLoader, steps: int, lr: float, sync: nn.Module | None,
           device: torch.device | None = None) -> tuple[nn.Module, list[float], list[float]]:
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    losses, step_ms = [], []
    done, epoch = 0, 0
    while done < steps:
        loader.sampler.set_epoch(epoch)
        for x, y in loader:
            if device is not None and device.type != "cpu":
                x, y = x.to(device), y.to(device)
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            if sync is not None:
                average_gradients_(sync)
            opt.step()
            if device is not None and device.type == "cuda":
                torch.cuda.synchronize(device)
            step_ms.append((time.perf_counter() - t0) * 1e3)
            losses.append(loss.item())
            done += 1
            if done == steps:
                break
        epoch += 1
    return model, losses, step_ms


def data_parallel_worker(rank: int, world_size: int, mode: str = "manual", steps: int = 20,
                         batch_size: int = 64, lr: float = 0.1, seed: int = 0,
                         hidden: tuple[int, ...] = (64,)) -> dict:
    """Worker: train the digits MLP data-parallel for ``steps`` steps of global ``batch_size``.

    ``mode="manual"`` all-reduces and averages the gradients by hand; ``"ddp"`` wraps the model
    in ``DistributedDataParallel``. Returns the final ``state`` (the plain model's state dict),
    this rank's ``losses`` and per-step ``step_ms``.
    """
    mode = check_choice(mode, "mode", MODES)
    per_rank = check_batch(batch_size, world_size)
    steps = check_int(steps, "steps")
    device = worker_device()
    model = make_model(seed, hidden).to(device)
    loader = _loader(world_size, rank, per_rank, seed)
    if mode == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        _, losses, step_ms = _train(ddp, loader, steps, lr, None, device)
    else:
        _, losses, step_ms = _train(model, loader, steps, lr, model, device)
    return {"state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "losses": losses, "step_ms": step_ms, "rank": rank}


def single_process_train(steps: int = 20, batch_size: int = 64, lr: float = 0.1, seed: int = 0,
                         hidden: tuple[int, ...] = (64,)) -> dict:
    """The reference: one process, the concatenated batch (same sampler permutation)."""
    steps = check_int(steps, "steps")
    check_real(lr, "lr", low=0.0, low_open=True)
    model = make_model(seed, hidden)
    loader = _loader(1, 0, check_batch(batch_size, 1), seed)
    _, losses, step_ms = _train(model, loader, steps, lr, None)
    return {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "losses": losses, "step_ms": step_ms}


def data_parallel_modes_worker(rank: int, world_size: int, modes: tuple[str, ...] = MODES,
                               steps: int = 20, batch_size: int = 64, lr: float = 0.1,
                               seed: int = 0, timing_steps: int = 0,
                               timing_batch: int = 32) -> dict:
    """Worker: :func:`data_parallel_worker` for each mode in one launch (one process start).

    With ``timing_steps > 0``, also times DDP steps with ``timing_batch`` examples *per rank*
    (weak scaling: each rank does the work one process would) under ``"timing"``.
    """
    out = {mode: data_parallel_worker(rank, world_size, mode, steps, batch_size, lr, seed)
           for mode in modes}
    if timing_steps:
        out["timing"] = data_parallel_worker(rank, world_size, "ddp", timing_steps,
                                             timing_batch * world_size, lr, seed)
    return out


def mean_over_ranks(per_rank: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    """What the gradient all-reduce + divide computes, in one process: ``per_rank[r][i]`` is
    rank ``r``'s gradient of parameter ``i``; returns each parameter's mean over the ranks."""
    if not per_rank:
        raise ValueError("per_rank must hold at least one rank's gradients, got an empty list")
    if len({len(g) for g in per_rank}) != 1:
        raise ValueError("per_rank: every rank must hold one gradient per parameter, got "
                         f"lengths {[len(g) for g in per_rank]}")
    return [torch.stack(list(grads)).mean(dim=0) for grads in zip(*per_rank, strict=True)]
