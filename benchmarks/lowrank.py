"""Low-rank: Linear(1024, 1024) vs its rank-128 factorisation, and a factorised MLP.

The speedup is measured side by side (accel_lib.bench.compare, interleaved samples) in one
process. The model figures follow notebook 05: an MLP 64-256-256-10 trained on the digits,
every layer factorised at the smallest rank keeping 70% of its spectral energy (layers
where that saves no FLOPs are left alone), then fine-tuned for two epochs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from accel_lib.bench import compare
from accel_lib.data import digits_loaders
from accel_lib.lowrank import choose_ranks, factorize_, factorize_linear
from accel_lib.models import MLP
from accel_lib.runtime import set_seed
from accel_lib.stats import count_flops
from accel_lib.train import TrainConfig, evaluate, train

from .record import Record

ENERGY = 0.7


def _speedup_record() -> Record:
    set_seed(0)
    layer = nn.Linear(1024, 1024).eval()
    low = factorize_linear(layer, 128)
    x = torch.randn(64, 1024)
    with torch.no_grad():
        result = compare(lambda: layer(x), lambda: low(x), names=("Linear 1024", "rank 128"),
                         warmup=5, repeats=40, verbose=False)
    return Record("lowrank/linear-1024-rank128-speedup-bs64", result.speedup, "x", 4.0,
                  f"Linear(1024, 1024) vs Linear(1024, 128) + Linear(128, 1024) at batch 64, "
                  f"fp32 CPU, {torch.get_num_threads()} threads, median of 40 interleaved "
                  f"samples ({result.baseline.median_ms:.3f} vs {result.optimized.median_ms:.3f}"
                  f" ms); baseline = FLOP ratio")


def _model_records() -> list[Record]:
    splits = digits_loaders(batch_size=64, seed=0, flatten=True)
    set_seed(0)
    model = MLP(hidden_sizes=(256, 256))
    train(model, splits.train, TrainConfig(epochs=10, lr=3e-3, device="cpu", progress=False))
    base = evaluate(model, splits.test)
    ranks = choose_ranks(model, ENERGY)
    low = factorize_(copy.deepcopy(model), ranks)
    cut = evaluate(low, splits.test)
    train(low, splits.train, TrainConfig(epochs=2, lr=1e-3, device="cpu", progress=False))
    tuned = evaluate(low, splits.test)
    x = torch.randn(64, 64)
    ratio = count_flops(model, x).flops / count_flops(low, x).flops
    return [
        Record("lowrank/model-accuracy-drop-pts", 100 * (base - tuned), "pts", None,
               f"MLP 64-256-256-10 on digits: {base:.3f} -> {cut:.3f} factorised -> "
               f"{tuned:.3f} after 2 epochs fine-tuning; ranks {ranks} (energy {ENERGY}); "
               "negative = better than the original"),
        Record("lowrank/model-flops-ratio", ratio, "x", None,
               f"forward FLOPs original / factorised, ranks {ranks}"),
    ]


def records() -> list[Record]:
    return [_speedup_record(), *_model_records()]
