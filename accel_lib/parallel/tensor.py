"""Tensor parallelism (Megatron-LM): one layer's weight matrix split across processes.

``Linear(x) = x W^T + b`` with ``W`` of shape (out, in).

* Column-parallel: rank ``r`` keeps rows ``r`` of ``W`` split along *out* (and that slice of
  ``b``) and computes its slice of the output features; no communication.
* Row-parallel: rank ``r`` keeps the columns of ``W`` split along *in* and reads the matching
  slice of the input features; the partial products are **summed** by an all-reduce, and
  the bias is added once, after the sum.

Megatron's MLP block ``fc2(gelu(fc1(x)))`` puts fc1 column-parallel and fc2 row-parallel:
the element-wise GELU works on each rank's feature slice, so the whole block needs exactly
one all-reduce in the forward pass.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_int, check_module
from .launcher import worker_device

__all__ = ["shard_linear", "megatron_partials", "ColumnParallelLinear", "RowParallelLinear",
           "MegatronMLP", "mlp_block", "tensor_parallel_worker"]


def shard_linear(linear: nn.Linear, dim: str, rank: int,
                 world_size: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """This rank's ``(weight, bias)`` shard of ``linear``: ``dim="column"`` splits the output
    features (weight rows and the bias), ``dim="row"`` the input features (weight columns;
    the bias is not split: ``None``, it is added once after the all-reduce)."""
    check_module(linear, "linear")
    if not isinstance(linear, nn.Linear):
        raise ValueError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    dim = check_choice(dim, "dim", ("column", "row"))
    world_size = check_int(world_size, "world_size", minimum=1)
    rank = check_int(rank, "rank", minimum=0, maximum=world_size - 1)
    axis = 0 if dim == "column" else 1
    size = linear.weight.shape[axis]
    feature = "out_features" if dim == "column" else "in_features"
    if size % world_size:
        raise ValueError(f"world_size must divide linear.{feature} ({size}) for a {dim} split, "
                         f"got world_size={world_size}")
    w = linear.weight.detach().chunk(world_size, dim=axis)[rank].clone()
    if dim == "row" or linear.bias is None:
        return w, None
    return w, linear.bias.detach().chunk(world_size)[rank].clone()


class ColumnParallelLinear(nn.Module):
    """This rank's slice of the output features of ``linear`` (no communication)."""

    def __init__(self, linear: nn.Linear, rank: int, world_size: int) -> None:
        super().__init__()
        w, b = shard_linear(linear, "column", rank, world_size)
        self.weight = nn.Parameter(w)
        self.bias = nn.Parameter(b) if b is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class RowParallelLinear(nn.Module):
    """Reads this rank's slice of the input features; all-reduces the partial outputs."""

    def __init__(self, linear: nn.Linear, rank: int, world_size: int) -> None:
        super().__init__()
        w, _ = shard_linear(linear, "row", rank, world_size)
        self.weight = nn.Parameter(w)
        self.bias = (nn.Parameter(linear.bias.detach().clone())
                     if linear.bias is not None else None)
        self.world_size = world_size
        self.all_reduces = 0

    def forward(self, x_slice: torch.Tensor) -> torch.Tensor:
        partial = F.linear(x_slice, self.weight)
        if self.world_size > 1:
            partial = partial.contiguous()
            dist.all_reduce(partial)
            self.all_reduces += 1
        return partial + self.bias if self.bias is not None else partial


def mlp_block(d_model: int = 32, d_hidden: int = 128, seed: int = 0) -> nn.Sequential:
    """The single-device reference: Linear(d, 4d) -> GELU -> Linear(4d, d)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_model, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_model))


class MegatronMLP(nn.Module):
    """``mlp_block`` split over ``world_size`` ranks: column-parallel fc1, row-parallel fc2."""

    def __init__(self, block: nn.Sequential, rank: int, world_size: int) -> None:
        super().__init__()
        self.fc1 = ColumnParallelLinear(block[0], rank, world_size)
        self.fc2 = RowParallelLinear(block[2], rank, world_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


def tensor_parallel_worker(rank: int, world_size: int, d_model: int = 32, d_hidden: int = 128,
                           batch: int = 8, seed: int = 0) -> dict:
    """Worker: the Megatron MLP over ``world_size`` ranks vs the single-device block.

    Returns ``max_abs_diff`` of the outputs, the number of ``all_reduces`` in the forward
    pass, and this rank's parameter count vs the full block's.
    """
    device = worker_device()
    block = mlp_block(d_model, d_hidden, seed).to(device)
    tp = MegatronMLP(block, rank, world_size)
    x = torch.randn(batch, d_model, generator=torch.Generator().manual_seed(seed + 1)).to(device)
    with torch.no_grad():
        ref = block(x)
        out = tp(x)
    return {"max_abs_diff": (out - ref).abs().max().item(),
            "all_reduces": tp.fc2.all_reduces,
            "params": sum(p.numel() for p in tp.parameters()),
            "full_params": sum(p.numel() for p in block.parameters())}


def megatron_partials(block: nn.Sequential, x: torch.Tensor,
                      world_size: int) -> list[torch.Tensor]:
    """Each rank's output of the Megatron MLP *before* the all-reduce, computed in one process:
    ``gelu(x W1_r^T + b1_r) W2[:, r]^T`` (no fc2 bias). Their sum plus fc2's bias is
    ``block(x)``."""
    world_size = check_int(world_size, "world_size", minimum=1)
    out = []
    for r in range(world_size):
        w1, b1 = shard_linear(block[0], "column", r, world_size)
        w2, _ = shard_linear(block[2], "row", r, world_size)
        out.append(F.linear(F.gelu(F.linear(x, w1, b1)), w2))
    return out
