"""Pruning: accuracy after pruning + fine-tuning on the digits, and what pruning does to speed.

Speedups are measured side by side in one process (accel_lib.bench.compare, interleaved) on
one thread: the ratios are per-core and steady on a shared machine.
"""

from __future__ import annotations

import copy
import warnings

import torch

from accel_lib.bench import compare
from accel_lib.data import digits_loaders
from accel_lib.models import SmallCNN
from accel_lib.pruning import (
    CubicSchedule,
    iterative_prune_,
    make_permanent_,
    prune_channels_,
    prune_unstructured_,
    topk_mask,
)
from accel_lib.runtime import set_seed
from accel_lib.train import TrainConfig, evaluate, train

from .record import Record

WIDE_CHANNELS = (64, 64, 128, 128, 256, 256)


def _trained(channels: tuple[int, ...], data) -> torch.nn.Module:  # noqa: ANN001
    set_seed(0)
    model = SmallCNN(channels=channels)
    train(model, data.train, TrainConfig(epochs=10, lr=1e-2, device="cpu", progress=False))
    return model


def _finetune(model: torch.nn.Module, data, epochs: int) -> None:  # noqa: ANN001
    train(model, data.train, TrainConfig(epochs=epochs, lr=1e-3, device="cpu", progress=False))


def _accuracy_records() -> list[Record]:
    data = digits_loaders(batch_size=64)
    out = []
    model = _trained((32, 64), data)
    base = evaluate(model, data.test)
    for target in (0.8, 0.9):
        pruned = copy.deepcopy(model)
        schedule = CubicSchedule(target, num_updates=3)
        iterative_prune_(pruned, data.train, schedule.sparsities()[1:], scope="global",
                         finetune=lambda m: _finetune(m, data, 2))
        acc = evaluate(pruned, data.test)
        out.append(Record(
            f"pruning/unstructured-accuracy-drop-pts@{target:.0%}", 100 * (base - acc), "pts",
            1.0 if target == 0.8 else None,
            f"SmallCNN(32, 64), digits test (1 image = 0.37 pts): {base:.2%} -> {acc:.2%}; "
            f"global magnitude, cubic schedule 3 updates x 2 epochs Adam 1e-3; baseline = target"))
    model = _trained((32, 64, 64), data)
    base = evaluate(model, data.test)
    slim = prune_channels_(copy.deepcopy(model), 0.5, next(iter(data.test))[0])
    _finetune(slim, data, 5)
    acc = evaluate(slim, data.test)
    out.append(Record(
        "pruning/structured-50%-accuracy-drop-pts", 100 * (base - acc), "pts", 2.0,
        f"SmallCNN(32, 64, 64) on digits test set: dense {base:.2%} -> {acc:.2%} after removing "
        f"50% of every conv's channels (L1) and 5 epochs Adam 1e-3; baseline = target"))
    return out


@torch.no_grad()
def _speed_records() -> list[Record]:
    set_seed(0)
    out = []
    wide = SmallCNN(channels=WIDE_CHANNELS).eval()
    for bs in (1, 64):
        x = torch.randn(bs, 1, 8, 8)
        slim = prune_channels_(copy.deepcopy(wide), 0.5, x)
        c = compare(lambda: wide(x), lambda: slim(x), repeats=15, verbose=False)  # noqa: B023
        out.append(Record(
            f"pruning/structured-50%-speedup-bs{bs}", c.speedup, "x", 1.0,
            f"SmallCNN{WIDE_CHANNELS} 8x8, batch {bs}: dense {c.baseline.median_ms:.2f} ms vs "
            f"50% channels removed {c.optimized.median_ms:.2f} ms; 1 thread"))
    x = torch.randn(64, 1, 8, 8)
    masked = make_permanent_(prune_unstructured_(copy.deepcopy(wide), 0.9))
    c = compare(lambda: wide(x), lambda: masked(x), repeats=15, verbose=False)
    out.append(Record(
        "pruning/dense-masked-90%-speedup", c.speedup, "x", 1.0,
        f"same CNN, batch 64, 90% of weights zero in a dense kernel: {c.baseline.median_ms:.2f} "
        f"vs {c.optimized.median_ms:.2f} ms (expected ~1.0x: zeros are multiplied too); 1 thread"))
    n = 4096
    weight = torch.randn(n, n)
    sparse_w = weight * topk_mask(weight.abs(), 0.99)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Sparse CSR tensor support is in beta"
        csr = sparse_w.to_sparse_csr()
    v = torch.randn(n, 1)
    c = compare(lambda: sparse_w @ v, lambda: csr @ v, repeats=15, verbose=False)
    out.append(Record(
        "pruning/csr-99%-speedup", c.speedup, "x", 1.0,
        f"{n}x{n} fp32 matrix-vector product, 99% zeros: dense {c.baseline.median_ms:.3f} ms vs "
        f"torch.sparse_csr {c.optimized.median_ms:.3f} ms; 1 thread"))
    return out


def records() -> list[Record]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _speed_records() + _accuracy_records()
    finally:
        torch.set_num_threads(threads)
