"""Unstructured pruning: keep-masks that zero single weights, layer-wise or global.

Pure tensor functions (``topk_mask``, ``global_masks``) compute masks from scores; model
calls (``prune_unstructured_``, ``make_permanent_``; trailing ``_`` = in place, returning
the model) attach them as ``torch.nn.utils.parametrize`` parametrizations, so the layer
computes with ``weight = original * mask``: the pruned weights get zero gradient and stay
zero through any number of optimizer steps, until ``make_permanent_`` bakes the mask in.

Sparsity is an absolute target: pruning a model at 0.5 and then again at 0.5 leaves it at
0.5 (the second call keeps the masks it finds and tightens nothing), where
``torch.nn.utils.prune``'s ``PruningContainer`` compounds the two to 0.75 (the second
amount applies to the weights the first left).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validate import check_choice, check_fraction, check_module, check_tensor
from ..bench import markdown_table
from .layers import prunable_layers, select_layers, weight_param
from .scores import importance_scores

__all__ = [
    "SCOPES",
    "check_sparsity",
    "num_pruned",
    "topk_mask",
    "global_masks",
    "WeightMask",
    "mask_of",
    "attach_mask",
    "prune_unstructured_",
    "masks",
    "make_permanent_",
    "SparsityReport",
    "sparsity_report",
]

SCOPES = ("layer", "global")


def check_sparsity(sparsity: float, name: str = "sparsity") -> float:
    """Return ``sparsity`` as a float if it is a real number in [0, 1).

    Raises TypeError for a non-number, ValueError outside [0, 1).
    """
    return check_fraction(sparsity, name, meaning="(the fraction of weights removed)")


def num_pruned(n: int, sparsity: float) -> int:
    """How many of ``n`` weights (or channels) a ``sparsity`` removes: ``round(sparsity * n)``.

    Python's ``round`` (half to even), the rule of ``torch.nn.utils.prune``.
    """
    return round(check_sparsity(sparsity) * n)


def topk_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Boolean keep-mask that removes the ``round(sparsity * n)`` lowest-scoring entries.

    The same rule as ``torch.nn.utils.prune.l1_unstructured`` with ``scores = |w|``
    (``k`` from Python's ``round``, the ``k`` smallest found with ``torch.topk``).

    Shapes: ``scores`` any shape; returns a bool tensor of the same shape.
    """
    check_tensor(scores, "scores")
    k = num_pruned(scores.numel(), sparsity)
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
    flat = torch.cat([check_tensor(s, f"scores[{n!r}]").detach().flatten()
                      for n, s in scores.items()])
    keep = topk_mask(flat, sparsity)
    out, start = {}, 0
    for name, s in scores.items():
        out[name] = keep[start:start + s.numel()].view_as(s)
        start += s.numel()
    return out


class WeightMask(nn.Module):
    """The parametrization ``weight = original * mask`` (mask kept as a bool buffer)."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.to(torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask.to(weight.dtype)


def mask_of(module: nn.Module) -> WeightMask | None:
    """The :class:`WeightMask` on ``module.weight``, or ``None`` when it has none."""
    check_module(module, "module")
    if parametrize.is_parametrized(module, "weight"):
        for p in module.parametrizations.weight:
            if isinstance(p, WeightMask):
                return p
    return None


def attach_mask(module: nn.Module, mask: torch.Tensor) -> None:
    """Attach ``mask`` to ``module.weight``, or tighten the mask already there (``old & new``):
    once pruned, a weight stays pruned."""
    check_module(module, "module")
    mask = mask.to(device=weight_param(module).device, dtype=torch.bool)
    existing = mask_of(module)
    if existing is None:
        parametrize.register_parametrization(module, "weight", WeightMask(mask))
    else:
        existing.mask.copy_(existing.mask & mask)


def prune_unstructured_(
    model: nn.Module, sparsity: float, *, scope: str = "layer",
    scores: Mapping[str, torch.Tensor] | None = None, layers: Iterable[str] | None = None,
) -> nn.Module:
    """Mask the lowest-scoring weights of each layer (``scope="layer"``: every layer at
    ``sparsity``) or of all layers pooled (``scope="global"``: one threshold). In place.

    ``sparsity`` is an absolute target, not an increment: pruning at 0.5 and then again at
    0.5 leaves the model at 0.5 (the scores see the masked weights, so with magnitude scores
    the new mask removes the weights already removed). ``torch.nn.utils.prune`` compounds: its
    ``PruningContainer`` applies the second amount to the weights the first left, so
    ``l1_unstructured`` at 0.5 twice gives 0.75.

    Args:
        model: its Linear / Conv weights get a ``weight = original * mask`` parametrization;
            an existing mask is tightened (pruned weights stay pruned).
        sparsity: fraction of weights removed, in [0, 1) (of all of them, masked or not).
        scope: ``"layer"`` or ``"global"``.
        scores: ``{layer name: importance}`` (default ``|w|``, see :func:`importance_scores`).
        layers: names of the layers to prune (default: all Linear / Conv layers).
    """
    sparsity = check_sparsity(sparsity)
    check_choice(scope, "scope", SCOPES)
    chosen = select_layers(model, layers if layers is not None else
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
        attach_mask(module, new[name])
    return model


def masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """The current keep-masks of every masked layer, by layer name."""
    check_module(model)
    return {name: p.mask for name, mod in model.named_modules()
            if (p := mask_of(mod)) is not None}


def make_permanent_(model: nn.Module) -> nn.Module:
    """Bake every mask into its weight and remove the parametrizations. In place.

    Afterwards the model is an ordinary dense model whose pruned weights are exact zeros
    (``torch.nn.utils.prune.remove``'s equivalent).
    """
    check_module(model)
    for module in model.modules():
        if mask_of(module) is not None:
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
