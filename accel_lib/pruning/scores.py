"""Importance scores: which weights matter least.

Magnitude (``|w|`` or ``w^2``), first-order Taylor (``|w g|``) and second-order Optimal
Brain Damage (``0.5 w^2 H_ii``, the Hessian's diagonal by the empirical Fisher). Pure
tensor functions, then :func:`importance_scores` for every prunable layer of a model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from .._validate import check_choice, check_int, check_tensor
from ..nn_utils import eval_mode
from .layers import select_layers, weight_param

__all__ = [
    "SCORE_METHODS",
    "magnitude_scores",
    "taylor_scores",
    "obd_scores",
    "gradient_statistics",
    "importance_scores",
]


def magnitude_scores(weight: torch.Tensor, p: int = 1) -> torch.Tensor:
    """Per-weight magnitude importance ``|w|^p`` (p = 1: L1, p = 2: L2 / energy).

    For single weights both give the same ranking (``|w|`` and ``w^2`` are monotone in each
    other); they differ once summed over a group (a channel: see ``channel_scores``).

    Shapes: ``weight`` any shape; returns the same shape.
    """
    check_tensor(weight, "weight")
    check_choice(p, "p", (1, 2))
    return weight.detach().abs() if p == 1 else weight.detach().pow(2)


def _check_like_weight(weight: torch.Tensor, other: torch.Tensor, name: str) -> None:
    check_tensor(weight, "weight")
    check_tensor(other, name)
    if other.shape != weight.shape:
        raise ValueError(f"{name} must have the weight's shape {tuple(weight.shape)}, "
                         f"got {tuple(other.shape)}")


def taylor_scores(weight: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """First-order Taylor importance ``|w * g|``: the loss change predicted by setting w to 0.

    ``L(w - w) ~ L(w) - g w``, so removing ``w`` changes the loss by about ``|g w|``.

    Shapes: ``weight`` and ``grad`` the same shape; returns that shape.
    """
    _check_like_weight(weight, grad, "grad")
    return (weight.detach() * grad.detach()).abs()


def obd_scores(weight: torch.Tensor, hessian_diag: torch.Tensor) -> torch.Tensor:
    """Second-order (Optimal Brain Damage) importance ``0.5 * w^2 * H_ii``.

    At a minimum the gradient vanishes and the Taylor expansion's first non-zero term is
    ``0.5 dw^T H dw``; keeping only the diagonal of ``H`` and setting ``dw = -w`` gives the
    score. ``H_ii`` is usually estimated by the empirical Fisher ``E[g_i^2]``
    (see :func:`gradient_statistics`).

    Shapes: ``weight`` and ``hessian_diag`` the same shape; returns that shape.
    """
    _check_like_weight(weight, hessian_diag, "hessian_diag")
    return 0.5 * weight.detach().pow(2) * hessian_diag.detach()


def gradient_statistics(
    model: nn.Module, loader: Iterable, *, loss_fn: Callable | None = None,
    num_batches: int | None = None, layers: Iterable[str] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Mean gradient ``g = E_b[g_b]`` and empirical Fisher ``F = E_b[g_b^2]`` of each layer's
    weight over mini-batches ``b`` (the model is evaluated in eval mode; ``.grad`` is untouched).

    Returns:
        ``(mean_grad, fisher)``, two dicts from layer name to a tensor of the weight's shape.
    """
    chosen = select_layers(model, layers)
    if num_batches is not None:
        check_int(num_batches, "num_batches")
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [weight_param(m) for m in chosen.values()]
    device = params[0].device
    mean = [torch.zeros_like(p) for p in params]
    fisher = [torch.zeros_like(p) for p in params]
    seen = 0
    with eval_mode(model):
        for x, y in loader:
            if num_batches is not None and seen >= num_batches:
                break
            loss = loss_fn(model(x.to(device)), y.to(device))
            for acc, acc2, g in zip(mean, fisher, torch.autograd.grad(loss, params), strict=True):
                acc += g
                acc2 += g * g
            seen += 1
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got an empty loader")
    names = list(chosen)
    return ({n: a / seen for n, a in zip(names, mean, strict=True)},
            {n: a / seen for n, a in zip(names, fisher, strict=True)})


def _l1(weights: dict[str, torch.Tensor], stats: Callable) -> dict[str, torch.Tensor]:
    return {n: magnitude_scores(w, 1) for n, w in weights.items()}


def _l2(weights: dict[str, torch.Tensor], stats: Callable) -> dict[str, torch.Tensor]:
    return {n: magnitude_scores(w, 2) for n, w in weights.items()}


def _taylor(weights: dict[str, torch.Tensor], stats: Callable) -> dict[str, torch.Tensor]:
    mean, _ = stats()
    return {n: taylor_scores(w, mean[n]) for n, w in weights.items()}


def _obd(weights: dict[str, torch.Tensor], stats: Callable) -> dict[str, torch.Tensor]:
    _, fisher = stats()
    return {n: obd_scores(w, fisher[n]) for n, w in weights.items()}


# name -> (scores of every layer from its weights and a gradient-statistics thunk,
#          whether it needs data)
SCORE_METHODS: dict[str, tuple[Callable, bool]] = {
    "l1": (_l1, False),
    "l2": (_l2, False),
    "taylor": (_taylor, True),
    "obd": (_obd, True),
}


def importance_scores(
    model: nn.Module, method: str = "l1", loader: Iterable | None = None, *,
    loss_fn: Callable | None = None, num_batches: int | None = None,
    layers: Iterable[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-weight importance of every prunable layer by ``method``.

    ``"l1"``: ``|w|``; ``"l2"``: ``w^2``; ``"taylor"``: ``|w * E[g]|``; ``"obd"``:
    ``0.5 w^2 E[g^2]`` (diagonal Hessian by the empirical Fisher). The last two need ``loader``.

    Shapes: returns ``{layer name: tensor of that layer's weight shape}``.
    """
    check_choice(method, "method", SCORE_METHODS)
    score, needs_data = SCORE_METHODS[method]
    chosen = select_layers(model, layers)
    if needs_data and loader is None:
        raise ValueError(f"loader must be given for method={method!r} (it needs gradients)")

    def stats() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return gradient_statistics(model, loader, loss_fn=loss_fn, num_batches=num_batches,
                                   layers=list(chosen))

    return score({n: m.weight.detach() for n, m in chosen.items()}, stats)
