"""Model fusion: several models' outputs combined into one prediction (ensembles).

With ``M`` members and member ``m``'s logits ``z_m`` (B, C):

* **hard fusion** by majority vote: each member votes for its top class,
  ``y = argmax_c #{m : argmax z_m = c}``, ties going to the lowest class index;
* **hard fusion** of features: the members' penultimate features concatenated,
  ``[h_1, ..., h_M]``, with a new linear head trained on top (:class:`FeatureConcat`);
* **soft fusion** by averaging probabilities, ``p = sum_m w_m softmax(z_m)`` with
  ``w_m >= 0`` summing to 1 (uniform by default). Not the softmax of averaged logits: that
  is a different (geometric-mean) combination;
* **learned fusion**: a layer trained to combine the members' logits,
  ``z = W [z_1, ..., z_M] + b`` (:class:`LearnedFusion`), fitted on held-out data, because
  members are over-confident on the data they were trained on.

An ensemble costs the sum of its members (params, FLOPs, latency). Weight averaging
(:mod:`accel_lib.fusion.soup`) and distillation (:mod:`accel_lib.distillation`) bring the
cost back to one model's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .._validate import check_choice, check_int, check_module, check_tensor

__all__ = [
    "FUSION_METHODS",
    "member_logits",
    "majority_vote",
    "soft_vote",
    "penultimate_features",
    "Ensemble",
    "FeatureConcat",
    "LearnedFusion",
]

FUSION_METHODS = ("soft", "hard")


def _check_members(members: Sequence[nn.Module]) -> list[nn.Module]:
    if isinstance(members, nn.Module) or not isinstance(members, Sequence):
        raise TypeError(f"members must be a list of nn.Modules, got {type(members).__name__}")
    if not members:
        raise ValueError("members must hold at least one model, got none")
    return [check_module(m, f"members[{i}]") for i, m in enumerate(members)]


def _stack(outputs: Sequence[torch.Tensor], what: str) -> torch.Tensor:
    shapes = [tuple(o.shape) for o in outputs]
    if len(set(shapes)) > 1:
        sizes = ", ".join(f"member {i}: {s}" for i, s in enumerate(shapes))
        raise ValueError(f"members must give {what} of the same shape to be fused, got {sizes}")
    return torch.stack(list(outputs))


def member_logits(members: Sequence[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Every member's output on ``x``, stacked (no gradients; members' modes unchanged).

    Shapes: ``x`` (B, ...) -> (M, B, C).

    Raises:
        ValueError: members that give outputs of different shapes (e.g. 10 and 5 classes).
    """
    members = _check_members(members)
    with torch.no_grad():
        return _stack([m(x) for m in members], "outputs")


def majority_vote(predictions: torch.Tensor, num_classes: int | None = None) -> torch.Tensor:
    """Hard voting: for each example the class most members predict, ties to the lowest class.

    ``votes[b, c] = #{m : predictions[m, b] = c}``, result ``argmax_c votes[b, c]`` (the first,
    i.e. lowest, of equal maxima).

    Shapes: ``predictions`` (M, B) integer class indices -> (B,) int64.
    """
    check_tensor(predictions, "predictions", ndim=2)
    if predictions.is_floating_point() or predictions.is_complex() or \
            predictions.dtype == torch.bool:
        raise TypeError(f"predictions must hold integer class indices (e.g. "
                        f"logits.argmax(-1)), got dtype {predictions.dtype}")
    if bool((predictions < 0).any()):
        raise ValueError("predictions must be class indices >= 0")
    top = int(predictions.max()) + 1
    if num_classes is None:
        num_classes = top
    check_int(num_classes, "num_classes")
    if top > num_classes:
        raise ValueError(f"predictions hold class {top - 1}, beyond num_classes={num_classes}")
    votes = F.one_hot(predictions.long(), num_classes).sum(dim=0)  # (B, C)
    return votes.argmax(dim=1)  # first maximum: the lowest class wins a tie


def _check_weights(weights: torch.Tensor | Sequence[float] | None, members: int,
                   like: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return torch.full((members,), 1.0 / members, dtype=like.dtype, device=like.device)
    w = torch.as_tensor(weights, dtype=like.dtype, device=like.device)
    if w.shape != (members,):
        raise ValueError(f"weights must hold one weight per member ({members}), got shape "
                         f"{tuple(w.shape)}")
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or float(w.sum()) <= 0:
        raise ValueError("weights must be finite, >= 0 and not all 0")
    return w / w.sum()


def soft_vote(logits: torch.Tensor, weights: torch.Tensor | Sequence[float] | None = None
              ) -> torch.Tensor:
    """Soft voting: the (weighted) average of the members' probabilities.

    ``p[b] = sum_m w_m softmax(logits[m, b])`` with ``w`` normalised to sum to 1 (uniform
    when ``None``). Each row of the result sums to 1.

    Shapes: ``logits`` (M, B, C) -> (B, C); ``weights`` (M,).
    """
    check_tensor(logits, "logits", ndim=3, finite=True)
    w = _check_weights(weights, logits.shape[0], logits)
    probs = torch.softmax(logits, dim=-1)  # (M, B, C)
    return torch.einsum("m,mbc->bc", w, probs)


def penultimate_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The input of ``model``'s last ``nn.Linear`` on ``x`` (what its classifier sees).

    Shapes: ``x`` (B, ...) -> (B, F) with F that Linear's ``in_features``.
    """
    check_module(model)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError(f"model ({type(model).__name__}) has no nn.Linear: no penultimate "
                         f"features to take")
    seen: list[torch.Tensor] = []
    handle = last[-1].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        model(x)
    finally:
        handle.remove()
    return seen[-1].flatten(1)


class _Frozen(nn.Module):
    """Holds frozen members that stay in eval mode, whatever mode the whole is put in."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(_check_members(members))
        for p in self.members.parameters():
            p.requires_grad_(False)
        self.members.eval()

    def train(self, mode: bool = True) -> _Frozen:
        super().train(mode)
        self.members.eval()  # BatchNorm statistics and dropout of members never change
        return self


class Ensemble(_Frozen):
    """Members fused by soft voting (default) or majority vote, as one module.

    ``forward`` gives, for ``"soft"``, the log of the averaged probabilities (so that
    ``softmax`` of it is the average, and it can serve as a teacher's logits); for
    ``"hard"``, each class's share of the votes (its argmax is the majority vote).

    Shapes: ``x`` (B, ...) -> (B, C).
    """

    def __init__(self, members: Sequence[nn.Module], method: str = "soft",
                 weights: Sequence[float] | None = None) -> None:
        super().__init__(members)
        self.method = check_choice(method, "method", FUSION_METHODS)
        self.weights = None if weights is None else [float(w) for w in weights]
        if weights is not None:
            _check_weights(weights, len(self.members), torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = _stack([m(x) for m in self.members], "outputs")  # (M, B, C)
        if self.method == "soft":
            return soft_vote(logits, self.weights).clamp_min(1e-12).log()
        votes = F.one_hot(logits.argmax(-1), logits.shape[-1]).sum(0)  # (B, C)
        return votes.to(logits.dtype) / len(self.members)


class FeatureConcat(_Frozen):
    """Hard fusion of features: the frozen members' penultimate features concatenated,
    then a trainable linear head.

    Shapes: ``x`` (B, ...) -> (B, num_classes); the head is Linear(sum of feature sizes, C).
    """

    def __init__(self, members: Sequence[nn.Module], example: torch.Tensor,
                 num_classes: int) -> None:
        super().__init__(members)
        check_int(num_classes, "num_classes")
        with torch.no_grad():
            width = self.features(example[:1]).shape[1]
        self.head = nn.Linear(width, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The members' penultimate features side by side. Shapes: (B, ...) -> (B, sum F_m)."""
        with torch.no_grad():
            return torch.cat([penultimate_features(m, x) for m in self.members], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class LearnedFusion(_Frozen):
    """Soft fusion with a learned layer over the frozen members' logits:
    ``z = W [z_1, ..., z_M] + b``, initialised to the average ``W = [I/M ... I/M], b = 0``.

    Train it on held-out data (the members are near-perfect on their own training set).

    Shapes: ``x`` (B, ...) -> (B, C); the layer is Linear(M C, C).
    """

    def __init__(self, members: Sequence[nn.Module], num_classes: int) -> None:
        super().__init__(members)
        check_int(num_classes, "num_classes")
        m = len(self.members)
        self.fuse = nn.Linear(m * num_classes, num_classes)
        with torch.no_grad():
            self.fuse.weight.copy_(torch.eye(num_classes).repeat(1, m) / m)
            self.fuse.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            logits = _stack([m(x) for m in self.members], "outputs")  # (M, B, C)
        if logits.shape[-1] * logits.shape[0] != self.fuse.in_features:
            raise ValueError(f"members give {logits.shape[-1]} classes, the fusion layer "
                             f"expects {self.fuse.in_features // logits.shape[0]}")
        return self.fuse(logits.permute(1, 0, 2).flatten(1))  # (B, M C) -> (B, C)
