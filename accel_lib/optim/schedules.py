"""Learning-rate schedules as pure functions of the step: ``lr = schedule(t)``, t = 0, 1, ...

Each function equals the matching ``torch.optim.lr_scheduler`` value at every step ``t``
(the learning rate used by the ``t``-th ``optimizer.step()``, after ``t`` calls of
``scheduler.step()``), within the schedule's length; beyond it they hold their final value
(PyTorch's cosine rises again after ``T_max``). ``attach_schedule`` drives any optimizer
with one, through the framework's own ``LambdaLR``.

========================  =====================================================
``step_lr``               ``StepLR(step_size, gamma)``
``exponential_lr``        ``ExponentialLR(gamma)``
``cosine_lr``             ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)``
``warmup_cosine_lr``      ``SequentialLR([LinearLR(start_factor, total_iters=W),
                          CosineAnnealingLR(T_max=T - W, eta_min)], milestones=[W])``
``one_cycle_lr``          ``OneCycleLR(max_lr, total_steps, pct_start, ...)``
========================  =====================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from .._validate import check_choice, check_fraction, check_int, check_real

__all__ = ["constant_lr", "step_lr", "exponential_lr", "cosine_lr", "warmup_cosine_lr",
           "one_cycle_lr", "SCHEDULES", "make_schedule", "schedule_values", "attach_schedule"]

Schedule = Callable[[int], float]


def _check_step(step: object) -> int:
    return check_int(step, "step", minimum=0)


def _check_lr(value: object, name: str = "base_lr") -> float:
    return check_real(value, name, low=0.0, meaning="(a learning rate)")


def constant_lr(step: int, base_lr: float) -> float:
    """``base_lr`` at every step."""
    _check_step(step)
    return _check_lr(base_lr)


def step_lr(step: int, base_lr: float, *, step_size: int, gamma: float = 0.1) -> float:
    """``base_lr * gamma ** floor(t / step_size)``: a drop by ``gamma`` every ``step_size``
    steps."""
    t, base = _check_step(step), _check_lr(base_lr)
    check_int(step_size, "step_size")
    check_real(gamma, "gamma", low=0.0)
    return base * gamma ** (t // step_size)


def exponential_lr(step: int, base_lr: float, *, gamma: float) -> float:
    """``base_lr * gamma ** t``: a decay by ``gamma`` every step."""
    t, base = _check_step(step), _check_lr(base_lr)
    check_real(gamma, "gamma", low=0.0)
    return base * gamma**t


def _cosine(progress: float, high: float, low: float) -> float:
    """Half a cosine from ``high`` (progress 0) to ``low`` (progress 1)."""
    return low + (high - low) * (1 + math.cos(math.pi * progress)) / 2


def cosine_lr(step: int, base_lr: float, *, total_steps: int, min_lr: float = 0.0) -> float:
    """``min_lr + (base_lr - min_lr) * (1 + cos(pi * t / T)) / 2``, held at ``min_lr`` after
    ``T = total_steps`` (Loshchilov & Hutter's SGDR without restarts)."""
    t, base = _check_step(step), _check_lr(base_lr)
    check_int(total_steps, "total_steps")
    return _cosine(min(t, total_steps) / total_steps, base, _check_lr(min_lr, "min_lr"))


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int,
                     min_lr: float = 0.0, *, start_factor: float = 0.0) -> float:
    """Linear warm-up for ``W = warmup_steps`` steps, then a cosine down to ``min_lr`` at
    ``T = total_steps``; ``min_lr`` afterwards.

    ``t < W``: ``base_lr * (s + (1 - s) * t / W)`` (``s = start_factor``: 0 starts from
    zero; ``base_lr`` is reached at ``t = W``). ``W <= t <= T``:
    ``min_lr + (base_lr - min_lr) * (1 + cos(pi * (t - W) / (T - W))) / 2``.

    Warm-up keeps the first steps small while Adam's second-moment estimate (and the
    network's activations) are still unreliable; the cosine then anneals.
    """
    t, base = _check_step(step), _check_lr(base_lr)
    check_int(warmup_steps, "warmup_steps", minimum=0)
    check_int(total_steps, "total_steps", minimum=warmup_steps + 1)
    low = _check_lr(min_lr, "min_lr")
    s = check_fraction(start_factor, "start_factor", one=True)
    if t < warmup_steps:
        return base * (s + (1 - s) * t / warmup_steps)
    return _cosine(min(t - warmup_steps, total_steps - warmup_steps)
                   / (total_steps - warmup_steps), base, low)


def one_cycle_lr(step: int, max_lr: float, *, total_steps: int, pct_start: float = 0.3,
                 div_factor: float = 25.0, final_div_factor: float = 1e4, anneal: str = "cos",
                 three_phase: bool = False) -> float:
    """Smith's one-cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR``.

    From ``max_lr / div_factor`` up to ``max_lr`` over the first ``pct_start`` of the steps
    (phase end ``pct_start * T - 1``), then down to ``max_lr / div_factor /
    final_div_factor`` at step ``T - 1`` (``three_phase``: back to the start first, over an
    equal number of steps, then down). ``anneal`` is ``"cos"`` or ``"linear"``.
    """
    t = _check_step(step)
    high = _check_lr(max_lr, "max_lr")
    check_int(total_steps, "total_steps", minimum=2)
    check_fraction(pct_start, "pct_start", zero=False)
    check_real(div_factor, "div_factor", low=0.0, low_open=True)
    check_real(final_div_factor, "final_div_factor", low=0.0, low_open=True)
    check_choice(anneal, "anneal", ("cos", "linear"))
    initial = high / div_factor
    final = initial / final_div_factor
    rise_end = float(pct_start * total_steps) - 1
    if three_phase:
        phases = [(rise_end, initial, high), (2 * rise_end, high, initial),
                  (total_steps - 1, initial, final)]
    else:
        phases = [(rise_end, initial, high), (total_steps - 1, high, final)]
    t = min(t, total_steps - 1)
    start = 0.0
    for i, (end, lr_from, lr_to) in enumerate(phases):
        if t <= end or i == len(phases) - 1:
            progress = (t - start) / (end - start)
            if anneal == "cos":
                return _cosine(progress, lr_from, lr_to)
            return (lr_to - lr_from) * progress + lr_from
        start = end
    raise AssertionError("unreachable")  # the last phase always returns


# The schedules by name: make_schedule(name, base_lr, **kwargs).
SCHEDULES: dict[str, Callable[..., float]] = {
    "constant": constant_lr, "step": step_lr, "exponential": exponential_lr,
    "cosine": cosine_lr, "warmup_cosine": warmup_cosine_lr, "one_cycle": one_cycle_lr,
}


def make_schedule(name: str, base_lr: float, **kwargs: Any) -> Schedule:
    """The schedule ``name`` as a function of the step alone, checked now (at step 0).

    ``make_schedule("warmup_cosine", 1e-3, warmup_steps=50, total_steps=500)(t)``. An
    unknown name raises a ValueError listing :data:`SCHEDULES`; a missing or wrong
    argument raises now, not in the middle of training.
    """
    check_choice(name, "name", SCHEDULES)
    schedule = partial(SCHEDULES[name], base_lr=base_lr, **kwargs) if name != "one_cycle" \
        else partial(one_cycle_lr, max_lr=base_lr, **kwargs)
    schedule(step=0)  # a missing, unknown or wrong argument raises here
    return lambda t: schedule(step=t)


def schedule_values(schedule: Schedule, steps: int) -> list[float]:
    """``[schedule(0), ..., schedule(steps - 1)]``, for plots and tables."""
    check_int(steps, "steps")
    return [schedule(t) for t in range(steps)]


def attach_schedule(optimizer: Optimizer, schedule: Schedule) -> LambdaLR:
    """Drive ``optimizer``'s learning rate by ``schedule``: call ``.step()`` on the returned
    scheduler after each ``optimizer.step()``.

    A ``torch.optim.lr_scheduler.LambdaLR`` with the factor ``schedule(t) / lr0`` (``lr0``
    the first group's learning rate): the first group's learning rate becomes
    ``schedule(t)``, the other groups keep their ratio to it.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    base = optimizer.param_groups[0]["lr"]
    if base <= 0:
        raise ValueError(f"the optimizer's lr must be > 0 to scale by a schedule, got {base}")
    return LambdaLR(optimizer, lambda t: schedule(t) / base)
