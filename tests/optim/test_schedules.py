"""Learning-rate schedules against torch.optim.lr_scheduler, step by step."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler as S

from accel_lib import optim as O


def _torch_values(make, steps: int, base_lr: float = 0.1) -> list[float]:
    """The lr each of ``steps`` optimizer steps uses under a torch scheduler."""
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = make(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def _ours(fn, steps: int) -> list[float]:
    return [fn(t) for t in range(steps)]


def _same(ours: list[float], theirs: list[float]) -> None:
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15)


def test_step_lr():
    _same(_ours(lambda t: O.step_lr(t, 0.1, step_size=7, gamma=0.5), 40),
          _torch_values(lambda o: S.StepLR(o, step_size=7, gamma=0.5), 40))


def test_exponential_lr():
    _same(_ours(lambda t: O.exponential_lr(t, 0.1, gamma=0.93), 60),
          _torch_values(lambda o: S.ExponentialLR(o, gamma=0.93), 60))


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_lr_within_its_length_then_held(min_lr):
    _same(_ours(lambda t: O.cosine_lr(t, 0.1, total_steps=30, min_lr=min_lr), 31),
          _torch_values(lambda o: S.CosineAnnealingLR(o, T_max=30, eta_min=min_lr), 31))
    assert O.cosine_lr(45, 0.1, total_steps=30, min_lr=min_lr) == min_lr  # torch rises again


@pytest.mark.parametrize("warmup,total,start,min_lr", [(5, 30, 0.1, 0.0), (1, 10, 0.5, 0.01),
                                                       (10, 50, 1 / 3, 0.02), (3, 4, 0.2, 0.0)])
def test_warmup_cosine_equals_linear_then_cosine_in_sequence(warmup, total, start, min_lr):
    theirs = _torch_values(lambda o: S.SequentialLR(o, [
        S.LinearLR(o, start_factor=start, end_factor=1.0, total_iters=warmup),
        S.CosineAnnealingLR(o, T_max=total - warmup, eta_min=min_lr)], milestones=[warmup]),
        total + 1)
    _same(_ours(lambda t: O.warmup_cosine_lr(t, 0.1, warmup, total, min_lr, start_factor=start),
                total + 1), theirs)


def test_warmup_cosine_hand_computed():
    # from 0 (the default start): 0, 1/4, 1/2, 3/4 of base over 4 steps, base at t = 4
    assert [O.warmup_cosine_lr(t, 1.0, 4, 12) for t in range(5)] == [0, 0.25, 0.5, 0.75, 1.0]
    assert O.warmup_cosine_lr(8, 1.0, 4, 12) == pytest.approx(0.5)  # half way down the cosine
    assert O.warmup_cosine_lr(12, 1.0, 4, 12, 0.1) == pytest.approx(0.1)
    assert O.warmup_cosine_lr(99, 1.0, 4, 12, 0.1) == pytest.approx(0.1)
    assert O.warmup_cosine_lr(0, 1.0, 0, 10) == 1.0  # no warm-up: plain cosine


@pytest.mark.parametrize("kwargs", [{}, {"pct_start": 0.25, "anneal": "linear"},
                                    {"three_phase": True, "div_factor": 10.0},
                                    {"pct_start": 0.5, "final_div_factor": 100.0}])
def test_one_cycle(kwargs):
    torch_kwargs = {("anneal_strategy" if k == "anneal" else k): v for k, v in kwargs.items()}
    _same(_ours(lambda t: O.one_cycle_lr(t, 0.1, total_steps=40, **kwargs), 40),
          _torch_values(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=40,
                                               cycle_momentum=False, **torch_kwargs), 40))


def test_make_schedule_and_attach_schedule_drive_an_optimizer():
    schedule = O.make_schedule("warmup_cosine", 0.1, warmup_steps=3, total_steps=10)
    assert O.schedule_values(schedule, 4) == pytest.approx([0.0, 0.1 / 3, 0.2 / 3, 0.1])
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p, nn.Parameter(torch.zeros(1))], lr=0.1)
    opt.add_param_group({"params": [nn.Parameter(torch.zeros(1))], "lr": 0.05})
    sched = O.attach_schedule(opt, schedule)
    seen = []
    for _ in range(10):
        seen.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    assert [s[0] for s in seen] == pytest.approx(O.schedule_values(schedule, 10))
    assert [s[1] for s in seen] == pytest.approx([v / 2 for v in O.schedule_values(schedule, 10)])
    one_cycle = O.make_schedule("one_cycle", 0.1, total_steps=20)
    assert max(O.schedule_values(one_cycle, 20)) == pytest.approx(0.1)
    assert O.make_schedule("constant", 0.3)(50) == 0.3


def test_schedule_errors():
    with pytest.raises(ValueError, match="name must be one of"):
        O.make_schedule("cosine_with_restarts", 0.1, total_steps=10)
    with pytest.raises(TypeError, match="total_steps"):
        O.make_schedule("cosine", 0.1)
    with pytest.raises(ValueError, match="base_lr must be"):
        O.cosine_lr(0, -0.1, total_steps=10)
    with pytest.raises(ValueError, match="step must be a non-negative int"):
        O.step_lr(-1, 0.1, step_size=3)
    with pytest.raises(TypeError, match="step must be"):
        O.exponential_lr(1.5, 0.1, gamma=0.9)
    with pytest.raises(ValueError, match="total_steps must be an int >= 6"):
        O.warmup_cosine_lr(0, 0.1, 5, 5)
    with pytest.raises(ValueError, match="anneal must be one of"):
        O.one_cycle_lr(0, 0.1, total_steps=10, anneal="cosine")
    with pytest.raises(TypeError, match="optimizer must be"):
        O.attach_schedule("sgd", lambda t: 0.1)


def test_cosine_is_smooth_and_monotone():
    values = [O.cosine_lr(t, 1.0, total_steps=100) for t in range(101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[50] == pytest.approx(0.5) and values[25] == pytest.approx(
        (1 + math.cos(math.pi / 4)) / 2)
