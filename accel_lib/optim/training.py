"""Optimisers raced on a real model: loss per step and steps to a target accuracy.

"Faster training" by a better optimiser means fewer steps to the same accuracy; each
optimiser gets the same model initialisation and the same batches in the same order, so
the only difference is the update rule (and its learning rate).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import TensorDataset

from .._validate import check_fraction, check_int, check_module
from ..data import DataSplits
from ..models import MLP
from ..runtime import set_seed
from ..train import evaluate

__all__ = ["Run", "run_steps", "shuffled_batches", "race"]

MakeOptimizer = Callable[[Iterable[nn.Parameter]], Optimizer]


@dataclass
class Run:
    """What one training run recorded: the loss of every step, accuracy every few steps."""

    name: str
    target: float
    losses: list[float] = field(default_factory=list)  # training loss of step 1, 2, ...
    eval_steps: list[int] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)

    @property
    def steps_to_target(self) -> int | None:
        """The first evaluated step with validation accuracy >= ``target`` (None: never)."""
        for step, acc in zip(self.eval_steps, self.val_accuracy, strict=True):
            if acc >= self.target:
                return step
        return None

    @property
    def final_accuracy(self) -> float:
        return self.val_accuracy[-1] if self.val_accuracy else float("nan")


def _batches(loader: Iterable) -> Iterator:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("loader must yield at least one batch, got an empty loader")


def run_steps(model: nn.Module, optimizer: Optimizer, loader: Iterable, val_loader: Iterable, *,
              steps: int, eval_every: int = 10, target: float = 0.95,
              stop_at_target: bool = False, name: str = "",
              scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
              loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> Run:
    """Train ``model`` in place for ``steps`` optimiser steps (cycling through ``loader``).

    Records every step's training loss and, every ``eval_every`` steps, the validation
    accuracy; ``stop_at_target`` ends the run at the first evaluation that reaches
    ``target``. ``scheduler.step()`` (if given) follows each ``optimizer.step()``.
    """
    check_module(model)
    check_int(steps, "steps")
    check_int(eval_every, "eval_every")
    check_fraction(target, "target", one=True)
    loss_fn = loss_fn or nn.functional.cross_entropy
    run = Run(name, target)
    batches = _batches(loader)
    for step in range(1, steps + 1):
        model.train()
        x, y = next(batches)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        run.losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            run.eval_steps.append(step)
            run.val_accuracy.append(evaluate(model, val_loader))
            if stop_at_target and run.val_accuracy[-1] >= target:
                break
    model.eval()
    return run


def shuffled_batches(tensors: Sequence[torch.Tensor], batch_size: int, *,
                     seed: int = 0) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless shuffled mini-batches of ``tensors`` (e.g. ``(x, y)``), epoch after epoch.

    Each epoch is a fresh permutation from a generator seeded with ``seed``; batches are
    taken by indexing the tensors, without a ``DataLoader``'s per-example collation (many
    times faster for small in-memory data sets).

    Shapes: every tensor has the same first dimension N; a batch has ``batch_size`` rows
    (the last one of an epoch fewer).
    """
    check_int(batch_size, "batch_size")
    n = len(tensors[0])
    if n == 0 or any(len(t) != n for t in tensors):
        raise ValueError(f"tensors must be non-empty and share their first dimension, got "
                         f"{[tuple(t.shape) for t in tensors]}")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            index = order[start:start + batch_size]
            yield tuple(t[index] for t in tensors)


def race(optimizers: Mapping[str, MakeOptimizer], splits: DataSplits, *, seed: int = 0,
         steps: int = 300, eval_every: int = 10, target: float = 0.95,
         stop_at_target: bool = False, hidden_sizes: Sequence[int] = (128, 64),
         batch_size: int = 64) -> dict[str, Run]:
    """Train one MLP per optimiser on ``splits`` (the digits), all from the same
    initialisation (``seed``) on the same batches in the same order
    (:func:`shuffled_batches` of the training split, seeded with ``seed``).

    ``optimizers`` maps a name to a function building the optimiser from the model's
    parameters, e.g. ``{"adam": lambda p: torch.optim.Adam(p, lr=3e-3)}``.
    """
    check_int(seed, "seed", minimum=0)
    check_int(batch_size, "batch_size")
    dataset = splits.train.dataset
    if not isinstance(dataset, TensorDataset):
        raise TypeError(f"race needs splits whose training set is a TensorDataset (the digits), "
                        f"got {type(dataset).__name__}")
    val = list(splits.val)  # collated once, evaluated many times
    runs = {}
    for name, make in optimizers.items():
        set_seed(seed)
        model = MLP(math.prod(splits.input_shape), hidden_sizes, splits.num_classes)
        batches = shuffled_batches(dataset.tensors, batch_size, seed=seed)
        runs[name] = run_steps(model, make(model.parameters()), batches, val, steps=steps,
                               eval_every=eval_every, target=target,
                               stop_at_target=stop_at_target, name=name)
    return runs
