"""Pruning: importance scores and unstructured (layer-wise and global) masks.

Two tiers, like torchao. Pure tensor functions (``magnitude_scores``, ``taylor_scores``,
``obd_scores``, ``topk_mask``, ``global_masks``) compute scores and masks; model-level calls
(``prune_unstructured_``, ``make_permanent_``; trailing ``_`` = in place, returning the
model) attach the masks as ``torch.nn.utils.parametrize`` parametrizations,
so the layer computes with ``weight = original * mask``: the pruned weights get zero
gradient and stay zero through any number of optimizer steps, until ``make_permanent_``
bakes the mask in.

Siblings: :mod:`accel_lib.pruning_structured` (removing channels by surgery),
:mod:`accel_lib.pruning_nm` (2:4 semi-structured sparsity), and
:mod:`accel_lib.pruning_schedule` (the cubic schedule, iterative prune -> fine-tune,
sensitivity analysis).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from .bench import markdown_table

__all__ = [
    "PRUNABLE_TYPES",
    "SCORE_METHODS",
    "check_sparsity",
    "magnitude_scores",
    "taylor_scores",
    "obd_scores",
    "topk_mask",
    "global_masks",
    "prunable_layers",
    "gradient_statistics",
    "importance_scores",
    "prune_unstructured_",
    "masks",
    "make_permanent_",
    "SparsityReport",
    "sparsity_report",
]

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
SCORE_METHODS = ("l1", "l2", "taylor", "obd")
SCOPES = ("layer", "global")


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as a float, or raise ValueError unless it is a number in [0, 1)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)) \
            or not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1) (the fraction of weights "
                         f"removed), got {sparsity!r}")
    return float(sparsity)


def _check_tensor(value: object, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    return value


# --------------------------------------------------------------------------- scores


def magnitude_scores(weight: torch.Tensor, p: int = 1) -> torch.Tensor:
    """Per-weight magnitude importance ``|w|^p`` (p = 1: L1, p = 2: L2 / energy).

    For single weights both give the same ranking (``|w|`` and ``w^2`` are monotone in each
    other); they differ once summed over a group (a channel: see ``channel_scores``).

    Shapes: ``weight`` any shape; returns the same shape.
    """
    _check_tensor(weight, "weight")
    if p not in (1, 2):
        raise ValueError(f"p must be 1 (L1) or 2 (L2), got {p!r}")
    return weight.detach().abs() if p == 1 else weight.detach().pow(2)


def _check_like_weight(weight: torch.Tensor, other: torch.Tensor, name: str) -> None:
    _check_tensor(weight, "weight")
    _check_tensor(other, name)
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


# --------------------------------------------------------------------------- masks


def topk_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean keep-mask that removes the ``round(sparsity * n)`` lowest-scoring entries.

    The same rule as ``torch.nn.utils.prune.l1_unstructured`` with ``scores = |w|``
    (``k`` from Python's ``round``, the ``k`` smallest found with ``torch.topk``).

    Shapes: ``scores`` any shape; returns a bool tensor of the same shape.
    """
    _check_tensor(scores, "scores")
    sparsity = check_sparsity(sparsity)
    k = round(sparsity * scores.numel())
    mask = torch.ones(scores.numel(), dtype=torch.bool, device=scores.device)
    if k > 0:
        drop = torch.topk(scores.detach().flatten(), k, largest=False).indices
        mask[drop] = False
    return mask.view_as(scores)


def global_masks(scores: Mapping[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """One threshold for all layers: remove the ``round(sparsity * N)`` lowest scores of the
    ``N`` weights pooled together (``torch.nn.utils.prune.global_unstructured``'s rule).

    Layers whose scores are small overall (often the wide middle layers) lose more than
    ``sparsity``; small sensitive ones (the first conv, the classifier) lose less.

    Shapes: ``scores`` maps names to tensors of any shapes; returns bool masks of those shapes.
    """
    if not scores:
        raise ValueError("scores must map at least one layer name to a tensor, got none")
    flat = torch.cat([_check_tensor(s, f"scores[{n!r}]").detach().flatten()
                      for n, s in scores.items()])
    keep = topk_mask(flat, sparsity)
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start:start + s.numel()].view_as(s)
        start += s.numel()
    return out


# --------------------------------------------------------------------------- model level


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear / Conv layer of ``model`` by qualified name (what pruning masks)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    layers = {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE_TYPES)}
    if not layers:
        raise ValueError(f"model must contain at least one of "
                         f"{[t.__name__ for t in PRUNABLE_TYPES]}, got none in "
                         f"{type(model).__name__}")
    return layers


def _select(model: nn.Module, layers: Iterable[str] | None) -> dict[str, nn.Module]:
    available = prunable_layers(model)
    if layers is None:
        return available
    chosen = {}
    for name in layers:
        if name not in available:
            raise ValueError(f"layers must name Linear/Conv layers of the model "
                             f"({sorted(available)}), got {name!r}")
        chosen[name] = available[name]
    return chosen


def _weight_param(module: nn.Module) -> nn.Parameter:
    """The trainable tensor behind ``module.weight`` (the original under a parametrization)."""
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight


def gradient_statistics(
    model: nn.Module, loader: Iterable, *, loss_fn: Callable | None = None,
    num_batches: int | None = None, layers: Iterable[str] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Mean gradient ``g = E_b[g_b]`` and empirical Fisher ``F = E_b[g_b^2]`` of each layer's
    weight over mini-batches ``b`` (the model is evaluated in eval mode; ``.grad`` is untouched).

    Returns:
        ``(mean_grad, fisher)``, two dicts from layer name to a tensor of the weight's shape.
    """
    chosen = _select(model, layers)
    if num_batches is not None and (not isinstance(num_batches, int) or num_batches < 1):
        raise ValueError(f"num_batches must be None (all) or a positive int, got {num_batches!r}")
    loss_fn = loss_fn or nn.functional.cross_entropy
    params = [_weight_param(m) for m in chosen.values()]
    device = params[0].device
    mean = [torch.zeros_like(p) for p in params]
    fisher = [torch.zeros_like(p) for p in params]
    was_training, seen = model.training, 0
    model.eval()
    try:
        for x, y in loader:
            if num_batches is not None and seen >= num_batches:
                break
            loss = loss_fn(model(x.to(device)), y.to(device))
            for acc, acc2, g in zip(mean, fisher, torch.autograd.grad(loss, params), strict=True):
                acc += g
                acc2 += g * g
            seen += 1
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("loader must yield at least one batch, got an empty loader")
    names = list(chosen)
    return ({n: a / seen for n, a in zip(names, mean, strict=True)},
            {n: a / seen for n, a in zip(names, fisher, strict=True)})


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
    if method not in SCORE_METHODS:
        raise ValueError(f"method must be one of {SCORE_METHODS}, got {method!r}")
    chosen = _select(model, layers)
    weights = {n: m.weight.detach() for n, m in chosen.items()}
    if method in ("l1", "l2"):
        return {n: magnitude_scores(w, 1 if method == "l1" else 2) for n, w in weights.items()}
    if loader is None:
        raise ValueError(f"loader must be given for method={method!r} (it needs gradients)")
    mean, fisher = gradient_statistics(model, loader, loss_fn=loss_fn, num_batches=num_batches,
                                       layers=list(chosen))
    if method == "taylor":
        return {n: taylor_scores(w, mean[n]) for n, w in weights.items()}
    return {n: obd_scores(w, fisher[n]) for n, w in weights.items()}


class _WeightMask(nn.Module):
    """The parametrization ``weight = original * mask`` (mask kept as a bool buffer)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def _mask_module(module: nn.Module) -> _WeightMask | None:
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if isinstance(p, _WeightMask):
                return p
    return None


def _apply_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Attach (or tighten) the mask: once pruned, a weight stays pruned."""
    mask = mask.to(device=_weight_param(module).device, dtype=torch.bool)
    existing = _mask_module(module)
    if existing is None:
        parametrize.register_parametrization(module, "weight", _WeightMask(mask))
    else:
        existing.mask.copy_(existing.mask & mask)


def prune_unstructured_(
    model: nn.Module, sparsity: float, *, scope: str = "layer",
    scores: Mapping[str, torch.Tensor] | None = None, layers: Iterable[str] | None = None,
) -> nn.Module:
    """Mask the lowest-scoring weights of each layer (``scope="layer"``: every layer at
    ``sparsity``) or of all layers pooled (``scope="global"``: one threshold). In place.

    Args:
        model: its Linear / Conv weights get a ``weight = original * mask`` parametrization;
            an existing mask is tightened (pruned weights stay pruned).
        sparsity: fraction of weights removed, in [0, 1).
        scope: ``"layer"`` or ``"global"``.
        scores: ``{layer name: importance}`` (default ``|w|``, see :func:`importance_scores`).
        layers: names of the layers to prune (default: all Linear / Conv layers).
    """
    sparsity = check_sparsity(sparsity)
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    chosen = _select(model, layers if layers is not None else
                     (list(scores) if scores is not None else None))
    if scores is None:
        scores = importance_scores(model, "l1", layers=list(chosen))
    missing = set(chosen) - set(scores)
    if missing:
        raise ValueError(f"scores must hold every pruned layer, missing {sorted(missing)}")
    for name, module in chosen.items():
        if scores[name].shape != module.weight.shape:
            raise ValueError(f"scores[{name!r}] must have shape {tuple(module.weight.shape)}, "
                             f"got {tuple(scores[name].shape)}")
    picked = {n: scores[n] for n in chosen}
    new = global_masks(picked, sparsity) if scope == "global" else \
        {n: topk_mask(s, sparsity) for n, s in picked.items()}
    for name, module in chosen.items():
        _apply_mask(module, new[name])
    return model


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current keep-masks of every masked layer, by layer name."""
    return {name: p.mask for name, mod in model.named_modules()
            if (p := _mask_module(mod)) is not None}


def make_permanent_(model: nn.Module) -> nn.Module:
    """Bake every mask into its weight and remove the parametrizations. In place.

    Afterwards the model is an ordinary dense model whose pruned weights are exact zeros
    (``torch.nn.utils.prune.remove``'s equivalent).
    """
    for module in model.modules():
        if _mask_module(module) is not None:
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    return model


@dataclass(frozen=True)
class SparsityReport:
    """Zero counts per prunable layer: ``{name: (zeros, total)}``."""

    per_layer: dict[str, tuple[int, int]]

    @property
    def layer_sparsity(self) -> dict[str, float]:
        return {n: z / t for n, (z, t) in self.per_layer.items()}

    @property
    def overall(self) -> float:
        """Zeros / weights over all prunable layers."""
        zeros = sum(z for z, _ in self.per_layer.values())
        return zeros / sum(t for _, t in self.per_layer.values())

    def table(self) -> str:
        rows = [[n, t, z, z / t] for n, (z, t) in self.per_layer.items()]
        rows.append(["overall", sum(t for _, t in self.per_layer.values()),
                     sum(z for z, _ in self.per_layer.values()), self.overall])
        return markdown_table(["layer", "weights", "zeros", "sparsity"], rows)


@torch.no_grad()
def sparsity_report(model: nn.Module) -> SparsityReport:
    """Fraction of exactly-zero weights in each Linear / Conv layer and overall."""
    return SparsityReport({n: (int((m.weight == 0).sum()), m.weight.numel())
                           for n, m in prunable_layers(model).items()})
