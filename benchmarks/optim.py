"""Optimisers: steps to 95% accuracy on the digits, and what one step costs.

Steps: an MLP 64-128-64-10 on the digits (batch 64), validation accuracy every 5 steps;
each optimiser's learning rate is tuned on a grid (the one with the fewest mean steps over
three seeds wins; a seed that never reaches 95% in MAX_STEPS counts MAX_STEPS).
Step cost: Adam on 200 parameter tensors of 16x16 (many small tensors, where per-tensor
overhead dominates), every implementation timed side by side in one process.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Callable

import torch

from accel_lib import optim as O
from accel_lib.data import DataSplits, digits_loaders
from accel_lib.models import MLP

from .record import Record

SEEDS = (0, 1, 2)
TARGET = 0.95
MAX_STEPS = 1000
EVAL_EVERY = 5
# name -> (how to build it at a learning rate, the learning rates tried)
GRID = {
    "sgd": (lambda lr: lambda p: O.SGD(p, lr=lr), (0.1, 0.2, 0.4, 0.8, 1.6)),
    "momentum": (lambda lr: lambda p: O.SGD(p, lr=lr, momentum=0.9), (0.02, 0.05, 0.1, 0.2)),
    "nesterov": (lambda lr: lambda p: O.SGD(p, lr=lr, momentum=0.9, nesterov=True),
                 (0.02, 0.05, 0.1, 0.2)),
    "adam": (lambda lr: lambda p: O.Adam(p, lr=lr), (2e-3, 5e-3, 1e-2, 2e-2, 5e-2)),
    "adamw": (lambda lr: lambda p: O.AdamW(p, lr=lr, weight_decay=1e-2),
              (2e-3, 5e-3, 1e-2, 2e-2, 5e-2)),
}
N_TENSORS, SHAPE = 200, (16, 16)


def _steps(make: Callable, splits: DataSplits) -> list[int]:
    out = []
    for seed in SEEDS:
        run = O.race({"x": make}, splits, seed=seed, steps=MAX_STEPS, eval_every=EVAL_EVERY,
                     target=TARGET, stop_at_target=True)["x"]
        out.append(run.steps_to_target or MAX_STEPS)
    return out


def tuned_steps() -> dict[str, tuple[float, float, list[int]]]:
    """name -> (best learning rate, mean steps to TARGET, steps per seed)."""
    splits = digits_loaders(batch_size=64, seed=0)
    best = {}
    for name, (make, lrs) in GRID.items():
        results = []
        for lr in lrs:
            per_seed = _steps(make(lr), splits)
            results.append((statistics.fmean(per_seed), lr, per_seed))
        mean, lr, per_seed = min(results)
        best[name] = (lr, mean, per_seed)
    return best


def step_costs() -> dict[str, O.StepCost]:
    params = O.many_small_params(N_TENSORS, SHAPE)
    optimizers = O.step_variants(params, "adam", lr=1e-3)
    for label, cls in (("torch default", torch.optim.Adam), ("own default", O.Adam)):
        copies = [copy.deepcopy(p) for p in params]
        for c, p in zip(copies, params, strict=True):
            c.grad = p.grad.clone()
        optimizers[label] = cls(copies, lr=1e-3)
    return O.measure_steps(optimizers, rounds=25, repeats=2)


def records() -> list[Record]:
    out = []
    best = tuned_steps()
    setting = (f"MLP 64-128-64-10 on the digits, batch 64, val accuracy every {EVAL_EVERY} steps, "
               f"mean of seeds {SEEDS}")
    for name, (lr, mean, per_seed) in best.items():
        out.append(Record(f"optim/steps-to-95pct/{name}", mean, "steps",
                          best["sgd"][1] if name != "sgd" else None,
                          f"{setting}; tuned lr {lr:g} of {GRID[name][1]}; per seed {per_seed}"
                          + ("; baseline = sgd" if name != "sgd" else "")))
    out.append(Record("optim/adam-vs-sgd-steps-ratio", best["sgd"][1] / best["adam"][1], "x", None,
                      "steps to 95% of tuned SGD / tuned Adam (> 1: Adam needs fewer)"))
    costs = step_costs()
    ms = {name: c.timing.median_ms for name, c in costs.items()}
    where = f"Adam, {N_TENSORS} tensors of {SHAPE[0]}x{SHAPE[1]}, CPU, 1 thread"
    out.append(Record("optim/foreach-vs-loop-step-speedup", ms["torch loop"] / ms["torch foreach"],
                      "x", None, f"{where}: torch.optim.Adam foreach=False / foreach=True "
                      f"({ms['torch loop']:.2f} / {ms['torch foreach']:.2f} ms)"))
    if "torch fused" in ms:
        out.append(Record("optim/fused-vs-loop-step-speedup", ms["torch loop"] / ms["torch fused"],
                          "x", None, f"{where}: torch.optim.Adam foreach=False / fused=True "
                          f"({ms['torch loop']:.2f} / {ms['torch fused']:.2f} ms)"))
    out.append(Record("optim/own-adam-step-time-ratio", ms["own default"] / ms["torch default"],
                      "ratio", 1.5, f"{where}: accel_lib Adam (foreach ops) / torch.optim.Adam "
                      f"default ({ms['own default']:.2f} / {ms['torch default']:.2f} ms); "
                      "baseline = the goal"))
    param_total = N_TENSORS * SHAPE[0] * SHAPE[1] * 4
    out.append(Record("optim/foreach-step-temp-bytes-ratio",
                      costs["torch foreach"].peak_bytes / param_total, "ratio", None,
                      f"{where}: peak temporary bytes of one foreach step / parameter bytes "
                      f"(loop: {costs['torch loop'].peak_bytes} B"
                      + (f", fused: {costs['torch fused'].peak_bytes} B" if "torch fused" in costs
                         else "") + ")"))
    model = MLP()
    adam = torch.optim.Adam(model.parameters())
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    adam.step()
    out.append(Record("optim/adam-state-bytes-ratio", O.state_bytes_ratio(adam), "ratio", 2.0,
                      "torch.optim.Adam on the MLP 64-128-64-10: state bytes / parameter bytes "
                      "(exp_avg + exp_avg_sq, plus a 4-byte step per tensor); baseline = 2"))
    return out
