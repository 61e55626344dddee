"""Folding BatchNorm into the convolution (or Linear) before it: one layer instead of two.

In eval mode BatchNorm is a fixed per-channel affine map of its input ``y``:

    BN(y)_c = gamma_c (y_c - mu_c) / sqrt(var_c + eps) + beta_c

and a convolution is linear in its weights, ``y_c = w_c * x + b_c``. So the pair is one
convolution with, per output channel ``c`` and ``s_c = gamma_c / sqrt(var_c + eps)``,

    w'_c = s_c w_c,        b'_c = s_c (b_c - mu_c) + beta_c

(``b_c = 0`` for a conv without bias, ``gamma = 1, beta = 0`` for a BatchNorm without
affine parameters). The same algebra folds ``Linear -> BatchNorm1d`` row by row. It holds
only in eval mode: in training BatchNorm normalises with each batch's own statistics.

Tiers: ``fold_bn_weights`` (pure tensors), ``fuse_conv_bn`` / ``fuse_linear_bn`` (one pair
of modules, equal to ``torch.nn.utils.fusion.fuse_conv_bn_eval`` / ``fuse_linear_bn_eval``),
``foldable_pairs`` / ``fold_bn_`` (every adjacent pair inside a model's ``nn.Sequential``
containers). The graph pass in :mod:`accel_lib.fusion.graph` finds pairs by data flow
instead, through residual blocks and any traceable ``forward``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .._validate import check_module, check_real, check_tensor

__all__ = [
    "CONV_TYPES",
    "fold_bn_weights",
    "fuse_conv_bn",
    "fuse_linear_bn",
    "fuse_pair",
    "check_eval",
    "foldable_pairs",
    "fold_bn_",
]

# Convolutions whose weight has the output channels first (transposed ones do not).
CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN_FOR_CONV = {nn.Conv1d: nn.BatchNorm1d, nn.Conv2d: nn.BatchNorm2d, nn.Conv3d: nn.BatchNorm3d}


def fold_bn_weights(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    running_mean: torch.Tensor,
    running_var: torch.Tensor,
    eps: float,
    gamma: torch.Tensor | None = None,
    beta: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of a layer followed by BatchNorm, as one layer.

    ``s = gamma / sqrt(running_var + eps)``, ``w' = s[c] * w[c, ...]`` (each output channel
    scaled by its own factor), ``b' = s (b - running_mean) + beta``; a missing ``bias`` is
    zeros, a missing ``gamma`` ones and a missing ``beta`` zeros.

    Shapes: ``weight`` (C_out, ...), ``bias``/``running_mean``/``running_var``/``gamma``/
    ``beta`` (C_out,) -> (weight of ``weight``'s shape, bias (C_out,)), in ``weight``'s dtype.
    """
    check_tensor(weight, "weight")
    if weight.dim() < 2:
        raise ValueError(f"weight must have at least 2 dims (C_out, ...), got shape "
                         f"{tuple(weight.shape)}")
    eps = check_real(eps, "eps", low=0)
    channels = weight.shape[0]
    named = {"bias": bias, "running_mean": running_mean, "running_var": running_var,
             "gamma": gamma, "beta": beta}
    for name, t in named.items():
        if t is None and name in ("running_mean", "running_var"):
            raise ValueError(f"{name} must be a tensor: a BatchNorm without running "
                             f"statistics (track_running_stats=False) cannot be folded")
        if t is not None:
            check_tensor(t, name, ndim=1)
            if t.numel() != channels:
                raise ValueError(f"{name} must hold one value per output channel "
                                 f"({channels}), got {t.numel()}")
    if bool((running_var + eps <= 0).any()):
        raise ValueError("running_var + eps must be > 0 in every channel")
    gamma = torch.ones_like(running_var) if gamma is None else gamma
    beta = torch.zeros_like(running_mean) if beta is None else beta
    bias = torch.zeros_like(running_mean) if bias is None else bias
    scale = gamma * torch.rsqrt(running_var + eps)  # (C_out,)
    shape = (-1,) + (1,) * (weight.dim() - 1)  # broadcast along the output channels only
    new_weight = (weight * scale.reshape(shape)).to(weight.dtype)
    new_bias = ((bias - running_mean) * scale + beta).to(weight.dtype)
    return new_weight, new_bias


def _check_bn(bn: nn.Module, features: int, layer: str) -> None:
    if not isinstance(bn, _BatchNorm):
        raise TypeError(f"bn must be a BatchNorm module, got {type(bn).__name__}")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn has no running statistics (track_running_stats=False): it always "
                         "normalises with the batch's own statistics and cannot be folded")
    if bn.num_features != features:
        raise ValueError(f"bn has {bn.num_features} features but the {layer} gives {features}")
    if bn.training:
        raise ValueError("bn is in training mode, where BatchNorm normalises with each "
                         "batch's statistics: folding is exact only in eval mode (call "
                         ".eval() first)")


def _fused_copy(layer: nn.Module, bn: _BatchNorm) -> nn.Module:
    weight, bias = fold_bn_weights(layer.weight.detach(), None if layer.bias is None else
                                   layer.bias.detach(), bn.running_mean, bn.running_var,
                                   bn.eps, None if bn.weight is None else bn.weight.detach(),
                                   None if bn.bias is None else bn.bias.detach())
    fused = copy.deepcopy(layer)
    fused.weight = nn.Parameter(weight, layer.weight.requires_grad)
    fused.bias = nn.Parameter(bias, layer.weight.requires_grad)
    return fused


def fuse_conv_bn(conv: nn.Module, bn: nn.Module) -> nn.Module:
    """A new convolution computing ``bn(conv(x))`` (eval mode) in one layer.

    Equal to ``torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)``; the inputs are not
    changed. The result always has a bias (the folded shift), even when ``conv`` had none.

    Shapes: ``conv`` a Conv1d/2d/3d with C_out output channels, ``bn`` a BatchNorm with
    C_out features and running statistics.
    """
    check_module(conv, "conv")
    check_module(bn, "bn")
    if not isinstance(conv, CONV_TYPES):
        raise TypeError(f"conv must be a Conv1d, Conv2d or Conv3d, got {type(conv).__name__}")
    _check_bn(bn, conv.out_channels, "conv")
    return _fused_copy(conv, bn)


def fuse_linear_bn(linear: nn.Module, bn: nn.Module) -> nn.Linear:
    """A new ``nn.Linear`` computing ``bn(linear(x))`` (eval mode, BatchNorm1d) in one layer.

    Equal to ``torch.nn.utils.fusion.fuse_linear_bn_eval(linear, bn)``.

    Shapes: ``linear`` (out_features, in_features); ``bn`` with out_features features.
    """
    check_module(linear, "linear")
    check_module(bn, "bn")
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    _check_bn(bn, linear.out_features, "linear")
    return _fused_copy(linear, bn)


def _pair_matches(layer: nn.Module, bn: nn.Module) -> bool:
    """``layer`` then ``bn`` is a pair this module folds (types, sizes, running stats)."""
    if not isinstance(bn, _BatchNorm) or bn.running_mean is None:
        return False
    if isinstance(layer, nn.Linear):
        return isinstance(bn, nn.BatchNorm1d) and bn.num_features == layer.out_features
    for conv_type, bn_type in _BN_FOR_CONV.items():  # transposed convs are none of these
        if isinstance(layer, conv_type):
            return isinstance(bn, bn_type) and bn.num_features == layer.out_channels
    return False


def fuse_pair(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """``fuse_conv_bn`` or ``fuse_linear_bn``, whichever fits ``layer``."""
    return fuse_linear_bn(layer, bn) if isinstance(layer, nn.Linear) else fuse_conv_bn(layer, bn)


def check_eval(model: nn.Module) -> None:
    """Raise ValueError if any BatchNorm of ``model`` is in training mode (naming it)."""
    check_module(model)
    training = [name or "model" for name, m in model.named_modules()
                if isinstance(m, _BatchNorm) and m.training]
    if training:
        raise ValueError(f"model is in training mode (BatchNorm {training[0]!r} normalises with "
                         f"each batch's own statistics): folding is exact only in eval mode; "
                         f"call model.eval() first")


def foldable_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """``(layer name, BatchNorm name)`` of every foldable pair: a Conv1d/2d/3d or Linear
    directly followed, inside an ``nn.Sequential``, by the BatchNorm of matching kind and
    size that keeps running statistics."""
    check_module(model)
    pairs = []
    for prefix, seq in model.named_modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules)
        for a, b in zip(names, names[1:], strict=False):
            if _pair_matches(seq._modules[a], seq._modules[b]):
                join = f"{prefix}." if prefix else ""
                pairs.append((join + a, join + b))
    return pairs


def fold_bn_(model: nn.Module) -> nn.Module:
    """Fold every pair :func:`foldable_pairs` finds, in place: the layer becomes the fused
    one and the BatchNorm an ``nn.Identity``. Everything else is left alone (a BatchNorm
    after a ReLU, one without running statistics, a transposed conv).

    Returns ``model``. Raises ValueError, changing nothing, when any BatchNorm of the model
    is in training mode.
    """
    check_eval(model)
    pairs = foldable_pairs(model)
    modules = dict(model.named_modules())
    fused = {layer: fuse_pair(modules[layer], modules[bn]) for layer, bn in pairs}  # first
    for layer, bn in pairs:
        model.set_submodule(layer, fused[layer])
        model.set_submodule(bn, nn.Identity())
    return model
