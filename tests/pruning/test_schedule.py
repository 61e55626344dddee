"""The cubic schedule, iterative prune -> fine-tune, and sensitivity analysis."""

from __future__ import annotations

import copy

import pytest
import torch

from accel_lib.models import SmallCNN
from accel_lib.pruning import (
    CubicSchedule,
    cubic_sparsity,
    iterative_prune_,
    sensitivity_scan,
    sparsity_report,
)
from accel_lib.train import TrainConfig, evaluate, train

# ---------------------------------------------------------------- schedule and loops


def test_cubic_schedule_hand_computed():
    # s_t = 0.8 + (0 - 0.8)(1 - t/4)^3 with t0 = 0, n = 4, dt = 1
    assert cubic_sparsity(0, 0.8, num_updates=4) == 0.0
    assert cubic_sparsity(2, 0.8, num_updates=4) == pytest.approx(0.8 - 0.8 * 0.125)
    assert cubic_sparsity(4, 0.8, num_updates=4) == pytest.approx(0.8)
    assert cubic_sparsity(99, 0.8, num_updates=4) == pytest.approx(0.8)
    assert cubic_sparsity(-5, 0.8, initial_sparsity=0.1, num_updates=4) == pytest.approx(0.1)
    s = CubicSchedule(0.9, initial_sparsity=0.1, begin_step=10, num_updates=5, frequency=2)
    assert s.update_steps() == [10, 12, 14, 16, 18, 20]
    values = s.sparsities()
    assert values[0] == pytest.approx(0.1) and values[-1] == pytest.approx(0.9)
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    assert all(x > y for x, y in zip(steps, steps[1:], strict=False)), "prunes fast, then slow"


def test_iterative_prune_and_sensitivity(digits):
    model = SmallCNN(channels=(8, 16))
    train(model, digits.train, TrainConfig(epochs=2, device="cpu", progress=False))
    base = evaluate(model, digits.val)
    targets = CubicSchedule(0.8, num_updates=2).sparsities()[1:]
    history = iterative_prune_(model, digits.train, targets,
                               evaluate=lambda m: evaluate(m, digits.val))
    assert [s for s, _ in history] == pytest.approx([0.7, 0.8])
    assert abs(sparsity_report(model).overall - 0.8) < 1e-3
    assert history[-1][1] > base - 0.1
    fresh = SmallCNN(channels=(8, 16))
    train(fresh, digits.train, TrainConfig(epochs=2, device="cpu", progress=False))
    state = copy.deepcopy(fresh.state_dict())
    scan = sensitivity_scan(fresh, lambda m: evaluate(m, digits.val), [0.0, 0.5, 0.99])
    assert set(scan) == {"features.0", "features.3", "classifier.1"}
    for accs in scan.values():
        assert accs[0] == pytest.approx(evaluate(fresh, digits.val))
        assert accs[-1] < accs[0]
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[k]), f"sensitivity_scan changed {k}"


