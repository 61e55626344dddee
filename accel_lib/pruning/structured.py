"""Structured pruning: remove whole conv filters (output channels) by model surgery.

Unstructured zeros leave every tensor its dense shape, so dense kernels do the same work.
Removing a filter instead shrinks three layers for real: the conv's output channels, the
BatchNorm after it, and the input channels of the next conv (or the input features of the
next Linear, across a flatten). The result is a smaller *dense* model that any kernel runs
faster.

Tiers, like Torch-Pruning: ``channel_scores`` / ``channel_keep_indices`` rank filters;
``prune_conv2d`` / ``prune_batchnorm2d`` / ``prune_linear_inputs`` cut one layer;
``channel_groups`` finds which layers must change together; ``prune_channels_`` does it all.

The surgery handles chain models (each layer feeds only the next one): the course's
SmallCNN and torchvision's VGGs. Residual connections (ResNets) and grouped convolutions
are refused with a ValueError naming the layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .._validate import check_choice, check_int, check_module, check_tensor
from ..nn_utils import eval_mode
from .unstructured import check_sparsity, mask_of, num_pruned

__all__ = [
    "ChannelGroup",
    "channel_scores",
    "channel_keep_indices",
    "prune_conv2d",
    "prune_batchnorm2d",
    "prune_linear_inputs",
    "trace_chain",
    "channel_groups",
    "prune_channels_",
]

# Layers that keep the channel count and need no change when channels go.
_PASSTHROUGH = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid,
                nn.Tanh, nn.Identity, nn.Dropout, nn.Dropout2d, nn.MaxPool2d, nn.AvgPool2d,
                nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten)
_SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear) + _PASSTHROUGH


def channel_scores(weight: torch.Tensor, p: int = 1) -> torch.Tensor:
    """Importance of each output channel (filter): its L_p norm ``||W[c]||_p``.

    Shapes: ``weight`` (C_out, C_in, kH, kW) or (out, in); returns (C_out,).
    """
    check_tensor(weight, "weight")
    if weight.dim() < 2:
        raise ValueError(f"weight must be a tensor of at least 2 dims (C_out, ...), "
                         f"got shape {tuple(weight.shape)}")
    check_choice(p, "p", (1, 2))
    return weight.detach().flatten(1).norm(p=p, dim=1)


def channel_keep_indices(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Indices (ascending) of the channels kept: all but the ``round(sparsity * C)`` lowest
    scores, and always at least one.

    Shapes: ``scores`` (C,); returns (C_kept,) int64.
    """
    check_tensor(scores, "scores", ndim=1)
    n_keep = max(1, scores.numel() - num_pruned(scores.numel(), sparsity))
    return torch.topk(scores.detach(), n_keep).indices.sort().values


def _index(t: torch.Tensor | None, dim: int, keep: torch.Tensor | None) -> torch.Tensor | None:
    if t is None or keep is None:
        return t
    return t.detach().index_select(dim, keep.to(t.device)).clone()


def prune_conv2d(conv: nn.Conv2d, keep_out: torch.Tensor | None = None,
                 keep_in: torch.Tensor | None = None) -> nn.Conv2d:
    """A new Conv2d with only the output channels ``keep_out`` and input channels ``keep_in``.

    Shapes: weight (C_out, C_in, kH, kW) -> (len(keep_out), len(keep_in), kH, kW).
    """
    if not isinstance(conv, nn.Conv2d):
        raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
    if conv.groups != 1:
        raise ValueError(f"conv must have groups=1 (grouped/depthwise convs are not supported), "
                         f"got groups={conv.groups}")
    weight = _index(_index(conv.weight, 0, keep_out), 1, keep_in)
    new = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None,
                    padding_mode=conv.padding_mode, device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if conv.bias is not None:
            new.bias.copy_(_index(conv.bias, 0, keep_out))
    return new.train(conv.training)


def prune_batchnorm2d(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    """A new BatchNorm2d over the channels ``keep`` (affine params and running stats sliced).

    Shapes: every per-channel tensor (C,) -> (len(keep),).
    """
    if not isinstance(bn, nn.BatchNorm2d):
        raise TypeError(f"bn must be an nn.BatchNorm2d, got {type(bn).__name__}")
    new = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum, affine=bn.affine,
                         track_running_stats=bn.track_running_stats)
    new = new.to(device=keep.device if bn.weight is None else bn.weight.device)
    with torch.no_grad():
        for name in ("weight", "bias", "running_mean", "running_var"):
            src = getattr(bn, name)
            if src is not None:
                getattr(new, name).copy_(_index(src, 0, keep))
        if bn.num_batches_tracked is not None:
            new.num_batches_tracked.copy_(bn.num_batches_tracked)
    return new.train(bn.training)


def prune_linear_inputs(linear: nn.Linear, keep: torch.Tensor, spatial: int = 1) -> nn.Linear:
    """A new Linear reading only the features of the channels ``keep``.

    After ``Flatten`` of a (B, C, H, W) map, feature ``c * S + s`` (``S = H * W``) belongs
    to channel ``c``; ``spatial`` is ``S`` (1 for a Linear fed by another Linear).

    Shapes: weight (out, C * S) -> (out, len(keep) * S).
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
    check_int(spatial, "spatial")
    if linear.in_features % spatial:
        raise ValueError(f"spatial must be a positive int dividing in_features="
                         f"{linear.in_features}, got {spatial!r}")
    keep = keep.to(linear.weight.device)
    columns = (keep[:, None] * spatial + torch.arange(spatial, device=keep.device)).flatten()
    weight = _index(linear.weight, 1, columns)
    new = nn.Linear(weight.shape[1], linear.out_features, bias=linear.bias is not None,
                    device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            new.bias.copy_(linear.bias)
    return new.train(linear.training)


@dataclass(frozen=True)
class _Call:
    name: str
    module: nn.Module
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


@torch.no_grad()
def _trace(model: nn.Module, example_input: torch.Tensor) -> list[_Call]:
    check_module(model)
    check_tensor(example_input, "example_input")
    names = {id(m): n for n, m in model.named_modules()}
    calls: list[_Call] = []
    keep_alive: list[torch.Tensor] = []  # no freed address can be reused during the trace
    state = {"ptr": example_input.data_ptr(), "version": example_input._version}
    problems: list[str] = []

    def pre_hook(module: nn.Module, args: tuple) -> None:
        x = args[0]
        name = names[id(module)]
        if not problems and (x.data_ptr() != state["ptr"] or x._version != state["version"]):
            problems.append(name)

    def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        keep_alive.append(output)
        state.update(ptr=output.data_ptr(), version=output._version)
        calls.append(_Call(names[id(module)], module, tuple(args[0].shape),
                           tuple(output.shape)))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_pre_hook(pre_hook) for m in leaves]
    handles += [m.register_forward_hook(hook) for m in leaves]
    try:
        with eval_mode(model):
            out = model(example_input)
    finally:
        for h in handles:
            h.remove()
    if not calls:
        raise ValueError(f"model {type(model).__name__} called no layers on example_input")
    seen: set[int] = set()
    for call in calls:
        if not isinstance(call.module, _SUPPORTED):
            raise ValueError(f"layer {call.name!r} ({type(call.module).__name__}) is not supported "
                             f"by channel surgery; supported: "
                             f"{sorted({t.__name__ for t in _SUPPORTED})}")
        if isinstance(call.module, nn.Conv2d) and call.module.groups != 1:
            raise ValueError(f"layer {call.name!r} is a grouped conv (groups="
                             f"{call.module.groups}); channel surgery needs groups=1")
    if problems:
        raise ValueError(f"model {type(model).__name__} is not a chain: the input of "
                         f"{problems[0]!r} is not the previous layer's output (a residual "
                         f"connection or a functional op in between); channel surgery handles "
                         f"Sequential-like models such as SmallCNN and VGG")
    for call in calls:
        if id(call.module) in seen:
            raise ValueError(f"layer {call.name!r} is called twice; surgery needs each layer once")
        seen.add(id(call.module))
    if out.data_ptr() != state["ptr"] or out._version != state["version"]:
        raise ValueError(f"model {type(model).__name__} is not a chain: its output is not the "
                         f"last layer's output")
    return calls


def trace_chain(model: nn.Module, example_input: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """The leaf layers of ``model`` in call order, checked to form a chain.

    Runs one forward pass (eval mode) with hooks and checks that each layer's input is the
    previous layer's output, unmodified (a view such as ``torch.flatten`` is fine): a
    residual add or any other op between layers makes a new tensor or bumps the tensor's
    version counter, and is refused.

    Raises:
        ValueError: a layer the surgery does not know, a layer called twice, or a non-chain.
    """
    return [(c.name, c.module) for c in _trace(model, example_input)]


@dataclass(frozen=True)
class ChannelGroup:
    """Layers that change together when output channels of ``conv`` are removed.

    ``batchnorms`` follow ``conv`` (sliced alike); ``consumer`` is the next Conv2d or Linear
    (its inputs are cut); ``spatial`` is the number of Linear features per channel after a
    flatten (1 for a conv consumer).
    """

    conv: str
    batchnorms: tuple[str, ...]
    consumer: str
    spatial: int


def channel_groups(model: nn.Module, example_input: torch.Tensor) -> list[ChannelGroup]:
    """Every prunable conv of a chain model and the layers its channels reach."""
    calls = _trace(model, example_input)
    chain = [(c.name, c.module) for c in calls]
    shapes = {c.name: (c.in_shape, c.out_shape) for c in calls}
    groups = []
    for i, (name, module) in enumerate(chain):
        if not isinstance(module, nn.Conv2d):
            continue
        bns: list[str] = []
        for later, layer in chain[i + 1:]:
            if isinstance(layer, nn.BatchNorm2d):
                bns.append(later)
            elif isinstance(layer, nn.Conv2d):
                groups.append(ChannelGroup(name, tuple(bns), later, 1))
                break
            elif isinstance(layer, nn.Linear):
                channels = module.out_channels
                in_shape = shapes[later][0]
                if len(in_shape) != 2 or in_shape[1] % channels:
                    raise ValueError(f"cannot map channels of {name!r} ({channels}) to the "
                                     f"inputs of {later!r} (input shape {in_shape}); expected "
                                     f"a flatten of (B, C, H, W) in between")
                groups.append(ChannelGroup(name, tuple(bns), later, in_shape[1] // channels))
                break
        # a conv with no consumer produces the output: its channels are not prunable
    return groups


def prune_channels_(
    model: nn.Module, sparsity: float | Mapping[str, float], example_input: torch.Tensor, *,
    p: int = 1, scores: Mapping[str, torch.Tensor] | None = None,
) -> nn.Module:
    """Remove the lowest-scoring output channels of every conv, by surgery. In place.

    Args:
        model: a chain model (SmallCNN, VGG). Convs are replaced by smaller ones, and the
            BatchNorms and the next conv / Linear with them.
        sparsity: fraction of channels removed from each conv, or ``{conv name: fraction}``
            (convs not named keep all their channels).
        example_input: one batch, to trace the layer order and shapes.
        p: channel score ``||W[c]||_p`` (1 or 2), unless ``scores`` are given.
        scores: ``{conv name: (C_out,) importance}`` to use instead of the norms.

    Returns:
        ``model``, now dense and smaller. Outputs are unchanged where removed channels were
        exactly zero after their BatchNorm.

    Raises:
        ValueError: masks still attached, a non-chain model, a layer the surgery cannot cut
            (a grouped conv), bad sparsities or scores. Every smaller layer is built before
            the first swap: the model is unchanged when it raises.
    """
    check_module(model)
    if any(mask_of(m) is not None for m in model.modules()):
        raise ValueError("model has unstructured masks; call make_permanent_(model) first")
    groups = channel_groups(model, example_input)
    if not groups:
        raise ValueError(f"model {type(model).__name__} has no conv whose channels feed "
                         f"another conv or Linear; nothing to prune")
    names = {g.conv for g in groups}
    if isinstance(sparsity, Mapping):
        unknown = set(sparsity) - names
        if unknown:
            raise ValueError(f"sparsity must name prunable convs ({sorted(names)}), got "
                             f"{sorted(unknown)}")
        per_conv = {n: check_sparsity(s, f"sparsity[{n!r}]") for n, s in sparsity.items()}
    else:
        per_conv = dict.fromkeys(names, check_sparsity(sparsity))
    modules = dict(model.named_modules())
    keep_out: dict[str, torch.Tensor] = {}
    keep_in: dict[str, tuple[torch.Tensor, int]] = {}
    new: dict[str, nn.Module] = {}  # every smaller layer is built before the first swap
    for g in groups:
        if g.conv not in per_conv:
            continue
        conv = modules[g.conv]
        s = scores[g.conv] if scores is not None and g.conv in scores else \
            channel_scores(conv.weight, p)
        if s.shape != (conv.out_channels,):
            raise ValueError(f"scores[{g.conv!r}] must have shape ({conv.out_channels},), "
                             f"got {tuple(s.shape)}")
        keep = channel_keep_indices(s, per_conv[g.conv]).to(conv.weight.device)
        keep_out[g.conv] = keep
        keep_in[g.consumer] = (keep, g.spatial)
        for bn in g.batchnorms:
            new[bn] = prune_batchnorm2d(modules[bn], keep)
    for name in set(keep_out) | set(keep_in):
        module = modules[name]
        if isinstance(module, nn.Linear):
            keep, spatial = keep_in[name]
            new[name] = prune_linear_inputs(module, keep, spatial)
        else:
            new[name] = prune_conv2d(module, keep_out.get(name), keep_in.get(name, (None, 1))[0])
    for name, module in new.items():
        model.set_submodule(name, module)
    return model
