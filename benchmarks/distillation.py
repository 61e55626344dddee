"""Distillation: a small student trained from scratch vs distilled from a CNN teacher.

The setting of notebook 04: the teacher (SmallCNN 32-64) is trained on the whole digits
training split; two students (MLP 64-32-10) start from the same weights and train for the
same steps on the same 100-image subset, one on the labels, one on the distillation loss
(T = 10, alpha = 0.1). Accuracies are test-set means over three student seeds.
"""

from __future__ import annotations

import statistics

import torch
from torch.utils.data import DataLoader, Subset

from accel_lib.data import digits_loaders
from accel_lib.distillation import DistillConfig, distill
from accel_lib.models import MLP, SmallCNN
from accel_lib.runtime import set_seed
from accel_lib.stats import count_params
from accel_lib.train import TrainConfig, evaluate, train

from .record import Record

SEEDS = (0, 1, 2)
SUBSET = 100
KD = DistillConfig(temperature=10.0, alpha=0.1)


def records() -> list[Record]:
    splits = digits_loaders(batch_size=32, seed=0)
    set_seed(0)
    teacher = SmallCNN(channels=(32, 64))
    train(teacher, splits.train, TrainConfig(epochs=8, lr=3e-3, device="cpu", progress=False))
    teacher_acc = evaluate(teacher, splits.test)
    order = torch.randperm(len(splits.train.dataset), generator=torch.Generator().manual_seed(0))
    subset = Subset(splits.train.dataset, order[:SUBSET].tolist())
    config = TrainConfig(epochs=60, lr=1e-2, device="cpu", progress=False)
    scratch, distilled = [], []
    for seed in SEEDS:
        for kd, out in ((None, scratch), (KD, distilled)):
            set_seed(seed)
            student = MLP(hidden_sizes=(32,))
            loader = DataLoader(subset, batch_size=32, shuffle=True,
                                generator=torch.Generator().manual_seed(seed))
            if kd is None:
                train(student, loader, config)
            else:
                distill(student, teacher, loader, config, kd)
            out.append(evaluate(student, splits.test))
    scratch_acc, distilled_acc = statistics.fmean(scratch), statistics.fmean(distilled)
    gap = (distilled_acc - scratch_acc) / max(teacher_acc - scratch_acc, 1e-9)
    setting = (f"digits test set; students MLP 64-32-10 on a {SUBSET}-image subset, 60 epochs "
               f"at lr 1e-2, mean of seeds {SEEDS}")
    return [
        Record("distillation/student-params-ratio",
               count_params(teacher) / count_params(MLP(hidden_sizes=(32,))), "x", None,
               "teacher SmallCNN(32, 64) params / student MLP 64-32-10 params"),
        Record("distillation/teacher-accuracy", teacher_acc, "fraction", None,
               "SmallCNN(32, 64), 8 epochs on the full digits training split"),
        Record("distillation/scratch-student-accuracy", scratch_acc, "fraction", teacher_acc,
               f"{setting}; labels only; per seed {[round(a, 3) for a in scratch]}; "
               "baseline = teacher"),
        Record("distillation/distilled-student-accuracy", distilled_acc, "fraction", scratch_acc,
               f"{setting}; KD T={KD.temperature}, alpha={KD.alpha}; per seed "
               f"{[round(a, 3) for a in distilled]}; baseline = scratch student; "
               f"{gap:.0%} of the gap to the teacher closed"),
    ]
