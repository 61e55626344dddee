"""When and how much to prune: the cubic schedule (Zhu & Gupta), iterative
prune -> fine-tune, and per-layer sensitivity analysis."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .._validate import check_int, check_real
from ..nn_utils import model_device
from .layers import select_layers
from .unstructured import check_sparsity, make_permanent_, prune_unstructured_, topk_mask

__all__ = ["cubic_sparsity", "CubicSchedule", "iterative_prune_", "sensitivity_scan"]


def cubic_sparsity(step: float, final_sparsity: float, *, initial_sparsity: float = 0.0,
                   begin_step: float = 0, num_updates: int = 10, frequency: float = 1) -> float:
    """Zhu & Gupta (2017) gradual pruning schedule.

    ``s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt))^3``, clamped to ``s_i`` before
    ``t0`` and to ``s_f`` after ``t0 + n dt``: it prunes fast while many redundant weights
    remain, then slowly as the network has fewer left to lose.
    """
    check_sparsity(final_sparsity, "final_sparsity")
    check_sparsity(initial_sparsity, "initial_sparsity")
    check_int(num_updates, "num_updates")
    check_real(frequency, "frequency", low=0, low_open=True, meaning="steps")
    progress = min(max((step - begin_step) / (num_updates * frequency), 0.0), 1.0)
    return final_sparsity + (initial_sparsity - final_sparsity) * (1.0 - progress) ** 3


@dataclass(frozen=True)
class CubicSchedule:
    """The cubic schedule as a config: pruning happens at ``t0, t0 + dt, ..., t0 + n dt``."""

    final_sparsity: float
    initial_sparsity: float = 0.0
    begin_step: int = 0
    num_updates: int = 10
    frequency: int = 1

    def __post_init__(self) -> None:
        cubic_sparsity(self.begin_step, self.final_sparsity, initial_sparsity=self.initial_sparsity,
                       num_updates=self.num_updates, frequency=self.frequency)  # validates
        if self.initial_sparsity > self.final_sparsity:
            raise ValueError(f"initial_sparsity must be <= final_sparsity, got "
                             f"{self.initial_sparsity} > {self.final_sparsity}")

    def __call__(self, step: float) -> float:
        return cubic_sparsity(step, self.final_sparsity, initial_sparsity=self.initial_sparsity,
                              begin_step=self.begin_step, num_updates=self.num_updates,
                              frequency=self.frequency)

    def update_steps(self) -> list[int]:
        """The steps at which the mask is recomputed (``n + 1`` of them, ``t0`` first)."""
        return [self.begin_step + i * self.frequency for i in range(self.num_updates + 1)]

    def sparsities(self) -> list[float]:
        """Target sparsity at each update step, ending at ``final_sparsity``."""
        return [self(t) for t in self.update_steps()]


def iterative_prune_(
    model: nn.Module, loader: Iterable, sparsities: Sequence[float], *,
    finetune: Callable[[nn.Module], object] | None = None,
    evaluate: Callable[[nn.Module], float] | None = None,
    scope: str = "global",
    score_fn: Callable[[nn.Module], Mapping[str, torch.Tensor]] | None = None,
) -> list[tuple[float, float | None]]:
    """Prune -> fine-tune, once per target sparsity (e.g. ``CubicSchedule.sparsities()``).

    Each round tightens the masks to the next (non-decreasing) target, then calls
    ``finetune(model)`` (masks persist through it) and records ``evaluate(model)``.
    ``loader`` feeds the default ``finetune``: one epoch of Adam (lr 1e-3) on the CPU.

    Returns:
        ``[(sparsity, accuracy or None), ...]`` after each round.
    """
    targets = [check_sparsity(s) for s in sparsities]
    if not targets:
        raise ValueError("sparsities must hold at least one target, got none")
    if any(b < a for a, b in zip(targets, targets[1:], strict=False)):
        raise ValueError(f"sparsities must be non-decreasing, got {targets}")
    if finetune is None:
        from ..train import TrainConfig, train

        def finetune(m: nn.Module) -> object:
            device = str(model_device(m))
            return train(m, loader, TrainConfig(epochs=1, lr=1e-3, device=device,
                                                progress=False))
    history = []
    for target in targets:
        prune_unstructured_(model, target, scope=scope,
                            scores=score_fn(model) if score_fn is not None else None)
        finetune(model)
        history.append((target, evaluate(model) if evaluate is not None else None))
    return history


@torch.no_grad()
def sensitivity_scan(
    model: nn.Module, evaluate: Callable[[nn.Module], float], sparsities: Sequence[float], *,
    layers: Iterable[str] | None = None,
) -> dict[str, list[float]]:
    """Prune one layer at a time (L1 magnitude, no fine-tuning) and record ``evaluate``.

    The model itself is not changed (a copy is pruned and restored layer by layer).

    Returns:
        ``{layer name: [evaluate(model with that layer at s) for s in sparsities]}``.
    """
    targets = [check_sparsity(s) for s in sparsities]
    work = make_permanent_(copy.deepcopy(model))
    chosen = select_layers(work, layers)
    out: dict[str, list[float]] = {}
    for name, module in chosen.items():
        original = module.weight.detach().clone()
        out[name] = []
        for s in targets:
            module.weight.copy_(original * topk_mask(original.abs(), s))
            out[name].append(float(evaluate(work)))
        module.weight.copy_(original)
    return out


