"""Optimisers raced on the digits: same start, same batches, steps to a target accuracy."""

from __future__ import annotations

import pytest
import torch

from accel_lib import optim as O
from accel_lib.models import MLP


def test_race_gives_every_optimiser_the_same_start_and_batches(digits):
    runs = O.race({"sgd": lambda p: torch.optim.SGD(p, lr=0.1),
                   "sgd again": lambda p: O.SGD(p, lr=0.1),
                   "adam": lambda p: O.Adam(p, lr=3e-3)},
                  digits, steps=60, eval_every=20, target=0.9)
    assert runs["sgd"].losses == runs["sgd again"].losses  # same start, batches, rule
    assert runs["adam"].losses[0] == runs["sgd"].losses[0]  # same start, same first batch
    assert runs["adam"].losses[1] != runs["sgd"].losses[1]
    for run in runs.values():
        assert len(run.losses) == 60 and run.eval_steps == [20, 40, 60]
        assert 0 <= run.final_accuracy <= 1
    assert runs["adam"].steps_to_target is not None


def test_run_steps_stops_at_the_target(digits):
    torch.manual_seed(0)
    model = MLP()
    run = O.run_steps(model, O.Adam(model.parameters(), lr=3e-3), digits.train, digits.val,
                      steps=500, eval_every=5, target=0.9, stop_at_target=True)
    assert run.steps_to_target == run.eval_steps[-1] < 500
    assert run.val_accuracy[-1] >= 0.9 > max(run.val_accuracy[:-1], default=0)
    assert O.Run("x", 0.5, eval_steps=[10], val_accuracy=[0.4]).steps_to_target is None


def test_run_steps_errors(digits):
    model = MLP()
    opt = O.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="steps must be a positive int"):
        O.run_steps(model, opt, digits.train, digits.val, steps=0)
    with pytest.raises(ValueError, match="empty loader"):
        O.run_steps(model, opt, [], digits.val, steps=3)


def test_shuffled_batches_cover_each_epoch_once_in_a_seeded_order():
    x, y = torch.arange(10.0).reshape(10, 1), torch.arange(10)
    gen = O.shuffled_batches((x, y), 4, seed=3)
    epoch = [next(gen) for _ in range(3)]  # 4 + 4 + 2
    assert [len(b[1]) for b in epoch] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in epoch]).tolist()) == list(range(10))
    assert all(torch.equal(b[0][:, 0].long(), b[1]) for b in epoch)  # rows stay paired
    again = O.shuffled_batches((x, y), 4, seed=3)
    assert all(torch.equal(next(again)[1], b[1]) for b in epoch)
    with pytest.raises(ValueError, match="share their first dimension"):
        next(O.shuffled_batches((x, y[:5]), 4))
