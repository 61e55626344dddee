"""Mixed-precision training with ``torch.autocast``: accuracy against fp32.

Inside ``autocast`` PyTorch runs matmuls and convolutions in the low-precision dtype and
keeps precision-sensitive ops (softmax, losses, norms' statistics) in fp32; the weights
stay fp32 (they *are* the master weights). fp16 needs a loss scaler (its range is small),
bf16 does not (it has fp32's exponent).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .._validate import check_int, check_module, check_real
from ..runtime import set_seed
from ..train import evaluate
from ._device import AUTOCAST_DTYPES, check_device, check_dtype

__all__ = ["MixedResult", "train_mixed", "compare_precisions"]


@dataclass
class MixedResult:
    """One training run: its dtype, device, test accuracy, per-epoch loss and the scales."""

    dtype: str
    device: str
    accuracy: float
    loss: list[float] = field(default_factory=list)
    skipped_steps: int = 0
    scales: list[float] = field(default_factory=list)


def train_mixed(model: nn.Module, loaders: object, dtype: torch.dtype | None = torch.bfloat16,
                device: torch.device | str = "cpu", *, epochs: int = 5, lr: float = 1e-2,
                seed: int = 0) -> MixedResult:
    """Train ``model`` (in place) on ``loaders.train`` with Adam, under ``torch.autocast(dtype)``
    (``None`` or ``torch.float32``: plain fp32), with a ``torch.amp.GradScaler`` for fp16;
    returns the accuracy on ``loaders.test``."""
    check_module(model)
    check_int(epochs, "epochs")
    check_real(lr, "lr", low=0, low_open=True)
    dev = check_device(device)
    if dtype is not None and dtype != torch.float32:
        check_dtype(dtype, AUTOCAST_DTYPES[dev.type], where=f" for autocast on {dev.type}")
    mixed = dtype is not None and dtype != torch.float32
    set_seed(seed)
    model.to(dev).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    result = MixedResult(str(dtype or torch.float32).replace("torch.", ""), dev.type, 0.0)
    for _ in range(epochs):
        total, count = 0.0, 0
        for x, y in loaders.train:
            x, y = x.to(dev), y.to(dev)
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=mixed):
                loss = nn.functional.cross_entropy(model(x), y)
            scale = scaler.get_scale() if scaler.is_enabled() else 1.0
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            if scaler.is_enabled():
                result.scales.append(scale)
                result.skipped_steps += int(scaler.get_scale() < scale)
            total += loss.item() * len(y)
            count += len(y)
        result.loss.append(total / count)
    model.eval()
    with torch.autocast(dev.type, dtype=dtype or torch.float32, enabled=mixed):
        result.accuracy = evaluate(model, loaders.test, dev)
    return result


def compare_precisions(model: nn.Module, loaders: object,
                       dtypes: tuple[torch.dtype | None, ...] = (None, torch.bfloat16),
                       device: torch.device | str = "cpu", **kwargs: object,
                       ) -> dict[str, MixedResult]:
    """Train a fresh copy of ``model`` once per dtype (same seed, same data order)."""
    check_module(model)
    out = {}
    for dt in dtypes:
        r = train_mixed(copy.deepcopy(model), loaders, dt, device, **kwargs)
        out[r.dtype] = r
    return out
