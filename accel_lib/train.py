"""Training and evaluation loops shared by every notebook."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ._validate import check_choice, check_fraction, check_int, check_module, check_real
from .nn_utils import eval_mode, model_device
from .runtime import get_device

__all__ = ["TrainConfig", "History", "StepFn", "make_optimizer", "train", "evaluate",
           "OPTIMIZERS"]

def _sgd(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay)


def _adam(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def _adamw(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


# The optimizers a TrainConfig can name, built from torch.optim.
OPTIMIZERS = {"adam": _adam, "adamw": _adamw, "sgd": _sgd}

# One optimisation step on a batch (x, y) already on the device: returns the batch's loss
# as a float and the model's logits (detached), from which the loop counts accuracy.
StepFn = Callable[[torch.Tensor, torch.Tensor], tuple[float, torch.Tensor]]


@dataclass(frozen=True)
class TrainConfig:
    """How to train: checked when built, so a typo fails before any work is done."""

    epochs: int = 10
    lr: float = 1e-2
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        check_int(self.epochs, "epochs")
        check_real(self.lr, "lr", low=0, low_open=True)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_real(self.weight_decay, "weight_decay", low=0)
        check_fraction(self.momentum, "momentum")


@dataclass
class History:
    """Per-epoch records of a training run."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, from ``torch.optim``."""
    return OPTIMIZERS[config.optimizer](params, config)


@torch.no_grad()
def evaluate(model: nn.Module, loader: Iterable, device: torch.device | str | None = None) -> float:
    """Top-1 accuracy of ``model`` on ``loader`` (a fraction in [0, 1]), in eval mode."""
    check_module(model)
    device = torch.device(device) if device is not None else model_device(model)
    correct = total = 0
    with eval_mode(model):
        for x, y in loader:
            pred = model(x.to(device)).argmax(dim=1)
            correct += (pred == y.to(device)).sum().item()
            total += y.numel()
    if total == 0:
        raise ValueError("loader must yield at least one example, got an empty loader")
    return correct / total


def train(
    model: nn.Module,
    loader: Iterable,
    config: TrainConfig | None = None,
    *,
    val_loader: Iterable | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    step: StepFn | None = None,
) -> History:
    """Train ``model`` in place with a tqdm progress bar; returns loss and accuracy per epoch.

    Args:
        model: moved to ``config.device`` (``"auto"``: cuda -> mps -> cpu).
        loader: yields ``(x, y)`` batches.
        config: epochs, optimizer, learning rate (defaults: :class:`TrainConfig`).
        val_loader: if given, validation accuracy is recorded after every epoch.
        loss_fn: defaults to cross-entropy.
        optimizer: overrides the one ``config`` names (e.g. a from-scratch optimizer).
        step: replaces the default step (forward, ``loss_fn``, backward, ``optimizer``)
            for objectives that need more than the logits, e.g. distillation.
    """
    check_module(model)
    config = config or TrainConfig()
    device = get_device(config.device)
    model.to(device)
    if step is None:
        loss_fn = loss_fn or nn.functional.cross_entropy
        optimizer = optimizer or make_optimizer(model.parameters(), config)

        def step(x: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
            optimizer.zero_grad(set_to_none=True)
            logits = model(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimizer.step()
            return loss.item(), logits.detach()

    history = History()
    bar = tqdm(range(config.epochs), desc="epochs", disable=not config.progress, leave=False)
    for _ in bar:
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss, logits = step(x, y)
            total_loss += loss * y.numel()
            correct += (logits.argmax(dim=1) == y).sum().item()
            seen += y.numel()
        if seen == 0:
            raise ValueError("loader must yield at least one batch, got an empty loader")
        history.loss.append(total_loss / seen)
        history.train_accuracy.append(correct / seen)
        if val_loader is not None:
            history.val_accuracy.append(evaluate(model, val_loader, device))
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}")
    model.eval()
    return history
