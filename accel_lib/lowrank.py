"""Low-rank decomposition: replace a weight matrix by the product of two thin ones.

A Linear layer ``y = x W^T + b`` with ``W`` (m x n) costs ``m n`` MACs per example. Its
truncated SVD ``W ~ U_r diag(s_r) V_r^T`` gives two layers, ``n -> r`` then ``r -> m``,
costing ``r (m + n)`` MACs: cheaper when ``r < m n / (m + n)``. By Eckart-Young the
truncated SVD is the best rank-r approximation, with Frobenius error
``||W - W_r||_F^2 = sum_{i > r} s_i^2``; the share of "energy" kept is
``sum_{i <= r} s_i^2 / sum_i s_i^2``.

Convolutions factorise the same way after reshaping their kernel to a matrix:

* channel split: ``KxK conv (C_in -> r)`` then ``1x1 conv (r -> C_out)``
  (``W`` reshaped to ``C_out x (C_in K K)``);
* spatial split: ``Kx1 conv (C_in -> r)`` then ``1xK conv (r -> C_out)``
  (``W[o, c, i, j]`` reshaped to ``(C_in K) x (C_out K)`` with rows ``(c, i)``, columns ``(o, j)``).

Two tiers: pure tensor functions (``truncated_svd``, ``rank_for_energy``, ...) and module
surgery (``factorize_linear``, ``factorize_conv2d``, ``choose_ranks``, ``factorize_``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ._validate import check_choice, check_int, check_module, check_real, check_tensor
from .nn_utils import swappable_layers
from .stats import linear_macs

__all__ = [
    "LowRankLinear",
    "truncated_svd",
    "low_rank_approx",
    "energy_kept",
    "rank_for_energy",
    "truncation_error",
    "lowrank_linear_macs",
    "breakeven_rank",
    "factorize_linear",
    "factorize_conv2d",
    "CONV_METHODS",
    "choose_ranks",
    "factorize_",
]

def _check_rank(rank: int, max_rank: int | None = None) -> None:
    check_int(rank, "rank")
    if max_rank is not None and rank > max_rank:
        raise ValueError(f"rank must be <= min(weight.shape) = {max_rank}, got {rank}")


def _check_energy(energy: float) -> float:
    return check_real(energy, "energy", low=0, high=1, low_open=True,
                      meaning="(the fraction of sum s_i^2 kept)")


def _check_matrix(weight: torch.Tensor) -> None:
    check_tensor(weight, "weight", ndim=2)


def truncated_svd(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Factors ``(first, second)`` with ``second @ first`` the best rank-``rank`` approximation.

    ``first = diag(sqrt(s_r)) V_r^T`` and ``second = U_r diag(sqrt(s_r))``: the singular values
    are split evenly between the factors, which keeps both well scaled for fine-tuning.
    The SVD runs in float64 on the weight's device; the factors come back in its dtype.

    Shapes: ``weight`` (m, n) -> ``first`` (r, n), ``second`` (m, r).
    """
    _check_matrix(weight)
    _check_rank(rank, min(weight.shape))
    u, s, vh = torch.linalg.svd(weight.detach().double(), full_matrices=False)
    root = s[:rank].sqrt()
    first = root[:, None] * vh[:rank]  # (r, n)
    second = u[:, :rank] * root[None, :]  # (m, r)
    return first.to(weight.dtype), second.to(weight.dtype)


def low_rank_approx(weight: torch.Tensor, rank: int) -> torch.Tensor:
    """``W_r = U_r diag(s_r) V_r^T``, the closest rank-``rank`` matrix to ``W`` (Eckart-Young).

    Shapes: ``weight`` (m, n) -> (m, n).
    """
    first, second = truncated_svd(weight, rank)
    return second @ first


def energy_kept(singular_values: torch.Tensor) -> torch.Tensor:
    """Cumulative energy ``e_r = sum_{i<=r} s_i^2 / sum_i s_i^2`` for r = 1..k.

    Shapes: ``singular_values`` (k,), sorted descending -> (k,), ending at 1.
    """
    s2 = singular_values.detach().double() ** 2
    return s2.cumsum(0) / s2.sum()


def rank_for_energy(singular_values: torch.Tensor, energy: float) -> int:
    """The smallest rank ``r`` with ``sum_{i<=r} s_i^2 >= energy * sum_i s_i^2``.

    Shapes: ``singular_values`` (k,) sorted descending; returns an int in [1, k].
    """
    _check_energy(energy)
    check_tensor(singular_values, "singular_values", ndim=1)
    cumulative = energy_kept(singular_values)
    if not torch.isfinite(cumulative).all():  # an all-zero matrix: rank 1 keeps everything
        return 1
    # a tiny tolerance so energy=1.0 is not missed by float rounding of the last sum
    rank = int((cumulative < energy - 1e-12).sum().item()) + 1
    return min(rank, singular_values.numel())


def truncation_error(singular_values: torch.Tensor, rank: int) -> float:
    """Eckart-Young: ``||W - W_r||_F = sqrt(sum_{i > r} s_i^2)``.

    Shapes: ``singular_values`` (k,) sorted descending; returns a float.
    """
    _check_rank(rank, singular_values.numel())
    return float((singular_values.detach().double()[rank:] ** 2).sum().sqrt())


def lowrank_linear_macs(batch: int, in_features: int, out_features: int, rank: int) -> int:
    """MACs of the factorised Linear: ``B r (n + m)`` (``n -> r`` then ``r -> m``)."""
    check_int(rank, "rank")
    return linear_macs(batch, in_features, rank) + linear_macs(batch, rank, out_features)


def breakeven_rank(in_features: int, out_features: int) -> float:
    """The rank at which factorising stops paying: ``r* = m n / (m + n)``."""
    check_int(in_features, "in_features")
    check_int(out_features, "out_features")
    return in_features * out_features / (in_features + out_features)


class LowRankLinear(nn.Module):
    """``Linear(n, m)`` factorised as ``Linear(n, r, bias=False)`` then ``Linear(r, m)``.

    Shapes: input (..., n); output (..., m).
    """

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True) -> None:
        super().__init__()
        _check_rank(rank)
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    @property
    def rank(self) -> int:
        return self.first.out_features

    @property
    def in_features(self) -> int:
        return self.first.in_features

    @property
    def out_features(self) -> int:
        return self.second.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))  # (..., n) -> (..., r) -> (..., m)


def _svd_values(weight: torch.Tensor) -> torch.Tensor:
    return torch.linalg.svdvals(weight.detach().double())


def _resolve_rank(matrix: torch.Tensor, rank: int | None, energy: float | None) -> int:
    if (rank is None) == (energy is None):
        raise ValueError(f"give exactly one of rank and energy, got rank={rank!r}, "
                         f"energy={energy!r}")
    if rank is not None:
        _check_rank(rank, min(matrix.shape))
        return rank
    return rank_for_energy(_svd_values(matrix), energy)  # type: ignore[arg-type]


def factorize_linear(linear: nn.Linear, rank: int | None = None, *,
                     energy: float | None = None) -> LowRankLinear:
    """A :class:`LowRankLinear` built from the truncated SVD of ``linear.weight``.

    Give ``rank``, or ``energy`` to take the smallest rank keeping that share of
    ``sum s_i^2``. At full rank the result equals the layer (up to rounding).
    """
    check_module(linear, "linear")
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    w = linear.weight  # (m, n)
    r = _resolve_rank(w, rank, energy)
    first, second = truncated_svd(w, r)
    out = LowRankLinear(linear.in_features, linear.out_features, r, bias=linear.bias is not None)
    out.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        out.first.weight.copy_(first)
        out.second.weight.copy_(second)
        if linear.bias is not None:
            out.second.bias.copy_(linear.bias)
    return out


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _channel_matrix(weight: torch.Tensor) -> torch.Tensor:
    c_out, c_in, kh, kw = weight.shape
    return weight.reshape(c_out, c_in * kh * kw)  # (C_out, C_in K K)


def _channel_convs(conv: nn.Conv2d, a: torch.Tensor, b: torch.Tensor,
                   r: int) -> tuple[nn.Conv2d, nn.Conv2d, torch.Tensor, torch.Tensor]:
    """KxK conv (C_in -> r), then 1x1 conv (r -> C_out); ``b @ a`` approximates the matrix."""
    c_out, c_in, kh, kw = conv.weight.shape
    first = nn.Conv2d(c_in, r, (kh, kw), stride=_pair(conv.stride), padding=_pair(conv.padding),
                      dilation=_pair(conv.dilation), bias=False)
    second = nn.Conv2d(r, c_out, 1, bias=conv.bias is not None)
    return first, second, a.reshape(r, c_in, kh, kw), b.reshape(c_out, r, 1, 1)


def _spatial_matrix(weight: torch.Tensor) -> torch.Tensor:
    c_out, c_in, kh, kw = weight.shape
    # rows (c, i), columns (o, j): W[o, c, i, j] -> M[c * kh + i, o * kw + j]
    return weight.permute(1, 2, 0, 3).reshape(c_in * kh, c_out * kw)


def _spatial_convs(conv: nn.Conv2d, a: torch.Tensor, b: torch.Tensor,
                   r: int) -> tuple[nn.Conv2d, nn.Conv2d, torch.Tensor, torch.Tensor]:
    """K_h x 1 conv (C_in -> r), then 1 x K_w conv (r -> C_out), stride/padding/dilation split
    by direction; ``b @ a`` approximates the matrix."""
    c_out, c_in, kh, kw = conv.weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(conv.stride), _pair(conv.padding), _pair(conv.dilation)
    first = nn.Conv2d(c_in, r, (kh, 1), stride=(sh, 1), padding=(ph, 0), dilation=(dh, 1),
                      bias=False)
    second = nn.Conv2d(r, c_out, (1, kw), stride=(1, sw), padding=(0, pw), dilation=(1, dw),
                       bias=conv.bias is not None)
    # b: (C_in K_h, r) with rows (c, i); a: (r, C_out K_w) with columns (o, j)
    first_w = b.T.reshape(r, c_in, kh, 1)
    second_w = a.reshape(r, c_out, kw).permute(1, 0, 2).reshape(c_out, r, 1, kw)
    return first, second, first_w, second_w


# How a conv kernel becomes a matrix, and how the matrix's factors become two convs.
CONV_METHODS = {
    "channel": (_channel_matrix, _channel_convs),
    "spatial": (_spatial_matrix, _spatial_convs),
}


def _conv_matrix(weight: torch.Tensor, method: str) -> torch.Tensor:
    return CONV_METHODS[check_choice(method, "method", CONV_METHODS)][0](weight)


def factorize_conv2d(conv: nn.Conv2d, rank: int | None = None, *, energy: float | None = None,
                     method: str = "channel") -> nn.Sequential:
    """Split a Conv2d into two thinner convolutions from a truncated SVD of its kernel.

    * ``"channel"``: ``KxK conv (C_in -> r)`` then ``1x1 conv (r -> C_out)``; MACs per output
      pixel ``r (C_in K^2 + C_out)`` instead of ``C_out C_in K^2``; full rank
      ``min(C_out, C_in K^2)``.
    * ``"spatial"``: ``K_h x 1 conv (C_in -> r)`` then ``1 x K_w conv (r -> C_out)``; full rank
      ``min(C_in K_h, C_out K_w)``.

    Stride, padding and dilation are split between the two convolutions so the output
    matches the original's shape, and equals it at full rank. ``groups`` must be 1 and
    padding numeric with ``padding_mode="zeros"``.

    Shapes: input (B, C_in, H, W) -> output (B, C_out, H_out, W_out), as ``conv``.
    """
    check_module(conv, "conv")
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    check_choice(method, "method", CONV_METHODS)
    if conv.groups != 1:
        raise ValueError(f"conv.groups must be 1 to factorise, got {conv.groups}")
    if isinstance(conv.padding, str) or conv.padding_mode != "zeros":
        raise ValueError(f"conv.padding must be numeric with padding_mode='zeros', got "
                         f"padding={conv.padding!r}, padding_mode={conv.padding_mode!r}")
    w = conv.weight  # (C_out, C_in, K_h, K_w)
    to_matrix, to_convs = CONV_METHODS[method]
    matrix = to_matrix(w)
    r = _resolve_rank(matrix, rank, energy)
    a, b = truncated_svd(matrix, r)  # matrix ~ b @ a
    first, second, first_w, second_w = to_convs(conv, a, b, r)
    out = nn.Sequential(first, second).to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        first.weight.copy_(first_w)
        second.weight.copy_(second_w)
        if conv.bias is not None:
            second.bias.copy_(conv.bias)
    return out


def _layer_matrix(module: nn.Module, conv_method: str) -> torch.Tensor:
    return module.weight if isinstance(module, nn.Linear) else _conv_matrix(module.weight,
                                                                            conv_method)


def _factorizable(module: nn.Module) -> bool:
    if isinstance(module, nn.Linear):
        return True
    return (isinstance(module, nn.Conv2d) and module.groups == 1
            and not isinstance(module.padding, str) and module.padding_mode == "zeros")


def choose_ranks(model: nn.Module, energy: float, *, conv_method: str = "channel",
                 only_if_cheaper: bool = True, include_conv: bool = True) -> dict[str, int]:
    """Per-layer ranks: for each Linear (and Conv2d) the smallest rank keeping ``energy``.

    With ``only_if_cheaper`` a layer is left out when its rank would not cut its MACs: a
    weight matrix (rows x cols) factorised at rank ``r`` costs ``r (rows + cols)`` MACs per
    example (per output pixel for a conv, either split) instead of ``rows cols``, so it pays
    only below :func:`breakeven_rank`.

    Layers that a module reads by weight instead of calling are left out
    (:func:`accel_lib.nn_utils.reads_child_weights`: attention's ``out_proj``).

    Returns:
        ``{module name: rank}`` for the layers worth factorising.
    """
    check_module(model)
    _check_energy(energy)
    check_choice(conv_method, "conv_method", CONV_METHODS)
    ranks = {}
    for name, module in swappable_layers(model, (nn.Linear, nn.Conv2d)).items():
        if not _factorizable(module) or (isinstance(module, nn.Conv2d) and not include_conv):
            continue
        matrix = _layer_matrix(module, conv_method)
        rank = rank_for_energy(_svd_values(matrix), energy)
        rows, cols = matrix.shape
        if only_if_cheaper and rank >= breakeven_rank(cols, rows):
            continue
        ranks[name] = rank
    return ranks


def factorize_(model: nn.Module, ranks: Mapping[str, int], *,
               conv_method: str = "channel") -> nn.Module:
    """Replace each named Linear / Conv2d by its truncated-SVD factorisation, in place.

    Args:
        model: the model to change.
        ranks: ``{module name: rank}``, e.g. from :func:`choose_ranks`.
        conv_method: ``"channel"`` or ``"spatial"`` for Conv2d layers.

    Returns:
        ``model``, with :class:`LowRankLinear` / two-conv ``nn.Sequential`` modules in place.

    Raises:
        ValueError: a name that is not a Linear / Conv2d, or one that its parent reads by
            weight (:func:`accel_lib.nn_utils.reads_child_weights`); a bad rank. Every
            replacement is built first, so the model is unchanged when it raises.
    """
    check_module(model)
    check_choice(conv_method, "conv_method", CONV_METHODS)
    modules = dict(model.named_modules())
    swappable = swappable_layers(model, (nn.Linear, nn.Conv2d))
    new: dict[str, nn.Module] = {}
    for name, rank in ranks.items():  # build every replacement first: a bad rank changes nothing
        module = modules.get(name)
        if module is None or not isinstance(module, (nn.Linear, nn.Conv2d)) or name == "":
            raise ValueError(f"ranks must name Linear or Conv2d submodules of model, "
                             f"got {name!r}")
        if name not in swappable:
            raise ValueError(f"ranks names {name!r}, a layer its parent module computes with "
                             f"by weight without calling it (attention's out_proj, or a "
                             f"batch_first TransformerEncoderLayer's Linears): it cannot be "
                             f"replaced")
        new[name] = factorize_linear(module, rank) if isinstance(module, nn.Linear) else \
            factorize_conv2d(module, rank, method=conv_method)
    for name, module in new.items():
        model.set_submodule(name, module)
    return model
