"""What a model costs: parameters, bytes, FLOPs/MACs of a forward pass, peak memory.

Conventions used across the course:

* a MAC is one multiply-accumulate; FLOPs = 2 x MACs (a multiply and an add), counted for
  the matrix-multiply-like layers (Linear, Conv) exactly as ``torch.utils.flop_counter``
  counts them; element-wise layers (ReLU, BatchNorm, pooling) are cheap in FLOPs and
  counted in bytes only;
* sizes are in **bytes** (``numel x element_size``), never bits;
* bytes moved by a layer = weights read + input read + output written (a lower bound on
  its memory traffic, used for arithmetic intensity).
"""

from __future__ import annotations

import io
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from ._validate import check_int, check_module

__all__ = [
    "LayerCost",
    "ModelCost",
    "count_params",
    "model_size_bytes",
    "tensor_bytes",
    "state_size_bytes",
    "serialized_size_bytes",
    "packed_size_bytes",
    "linear_macs",
    "conv2d_macs",
    "count_flops",
    "peak_memory_bytes",
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    check_module(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def model_size_bytes(model: nn.Module, *, include_buffers: bool = True) -> int:
    """Bytes held by parameters (and buffers such as BatchNorm statistics): numel x element size.

    Tensors that share storage are counted once.
    """
    check_module(model)
    tensors = list(model.parameters())
    if include_buffers:
        tensors += list(model.buffers())
    seen: set[tuple[int, int]] = set()
    total = 0
    for t in tensors:
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        if t.numel() == 0 or key in seen:
            continue
        seen.add(key)
        total += t.numel() * t.element_size()
    return total


def _positive_ints(**values: int) -> None:
    for name, v in values.items():
        check_int(v, name)


def linear_macs(batch: int, in_features: int, out_features: int) -> int:
    """MACs of ``nn.Linear(in_features, out_features)`` on ``batch`` rows: B x in x out.

    Each of the ``B x out`` outputs is a dot product of length ``in`` (bias adds not counted).
    """
    _positive_ints(batch=batch, in_features=in_features, out_features=out_features)
    return batch * in_features * out_features


def conv2d_macs(
    batch: int,
    in_channels: int,
    out_channels: int,
    kernel_size: int | tuple[int, int],
    out_height: int,
    out_width: int,
    groups: int = 1,
) -> int:
    """MACs of a 2-D convolution: B x C_out x H_out x W_out x (C_in / groups) x K_h x K_w.

    Every output value is a dot product over its receptive field of
    ``(C_in / groups) x K_h x K_w`` inputs.
    """
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    _positive_ints(batch=batch, in_channels=in_channels, out_channels=out_channels,
                   kernel_h=kh, kernel_w=kw, out_height=out_height, out_width=out_width,
                   groups=groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} "
                         f"and out_channels={out_channels}")
    return batch * out_channels * out_height * out_width * (in_channels // groups) * kh * kw


@dataclass(frozen=True)
class LayerCost:
    """The cost of one layer (a leaf module, or a whole attention) in one forward pass."""

    name: str
    kind: str
    macs: int
    bytes: int
    params: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: FLOPs per byte moved."""
        return self.flops / self.bytes if self.bytes else math.inf


@dataclass(frozen=True)
class ModelCost:
    """Per-layer and total cost of a forward pass."""

    layers: tuple[LayerCost, ...]
    uncounted: tuple[str, ...] = field(default=())

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def bytes(self) -> int:
        return sum(layer.bytes for layer in self.layers)

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else math.inf

    def by_kind(self) -> dict[str, int]:
        """FLOPs per layer type, e.g. ``{"Conv2d": ..., "Linear": ...}``."""
        out: dict[str, int] = {}
        for layer in self.layers:
            out[layer.kind] = out.get(layer.kind, 0) + layer.flops
        return out


def tensor_bytes(obj: Any) -> int:
    """Bytes held by the tensors in ``obj`` (a tensor, or lists/tuples/dicts of them).

    ``numel x element_size`` per tensor; a per-channel quantized tensor also counts its
    scales and zero-points. Anything that is not a tensor counts 0.
    """
    if isinstance(obj, torch.Tensor):
        size = obj.numel() * obj.element_size()
        if obj.is_quantized and obj.qscheme() in (torch.per_channel_affine,
                                                  torch.per_channel_symmetric):
            size += tensor_bytes(obj.q_per_channel_scales())
            size += tensor_bytes(obj.q_per_channel_zero_points())
        return size
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(o) for o in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(o) for o in obj.values())
    return 0


def state_size_bytes(model: nn.Module) -> int:
    """Bytes of every tensor in the state dict (numel x element size, qparams included).

    Unlike :func:`model_size_bytes` this also sees PyTorch's packed int8 weights, which are
    neither parameters nor buffers.
    """
    check_module(model)
    return tensor_bytes(dict(model.state_dict()))


def serialized_size_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` in memory: the size on disk."""
    check_module(model)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def packed_size_bytes(numel: int, bits: int) -> int:
    """Bytes to store ``numel`` codes of ``bits`` each, packed: ``ceil(numel * bits / 8)``."""
    check_int(bits, "bits", 1, 64)
    check_int(numel, "numel", minimum=0)
    return math.ceil(numel * bits / 8)


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int | None:
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    if isinstance(module, _CONV):
        kernel = math.prod(module.kernel_size)
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Bilinear):
        return output.numel() * module.in1_features * module.in2_features
    if next(module.parameters(recurse=False), None) is None or isinstance(
        module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.Embedding)
    ):
        return 0  # element-wise, normalisation or lookup: memory traffic, no matmul FLOPs
    return None  # a layer with weights this counter does not know


def _attention_macs(module: nn.MultiheadAttention, args: tuple, kwargs: dict) -> int:
    """MACs of ``nn.MultiheadAttention`` for target length L, source length S, batch N and
    width E (keys and values of widths ``kdim``, ``vdim``):

        N L E^2 + N S E (kdim + vdim)     the q, k, v projections
        + 2 N L S E                       Q K^T and the weights times V, all heads together
        + N L E^2                         the output projection

    ``S`` grows by one with ``add_bias_kv`` and by one with ``add_zero_attn``.
    """
    names = ("query", "key", "value")
    query, key, _ = (args[i] if i < len(args) else kwargs[n] for i, n in enumerate(names))
    e = module.embed_dim
    if query.dim() == 2:  # unbatched (L, E)
        n, length, source = 1, query.shape[0], key.shape[0]
    elif module.batch_first:  # (N, L, E)
        n, length, source = query.shape[0], query.shape[1], key.shape[1]
    else:  # (L, N, E)
        length, n, source = query.shape[0], query.shape[1], key.shape[0]
    projections = n * length * e * e + n * source * e * (module.kdim + module.vdim)
    source += (module.bias_k is not None) + module.add_zero_attn
    return projections + 2 * n * length * source * e + n * length * e * e


def _is_unit(module: nn.Module) -> bool:
    """Counted as one layer: a leaf (a pruning mask's parametrization does not count as a
    child), or a module that computes with its children's weights without calling them."""
    if isinstance(module, nn.MultiheadAttention):  # reads out_proj.weight, never calls it
        return True
    return all(name == "parametrizations" for name, _ in module.named_children())


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> ModelCost:
    """Count MACs, FLOPs and bytes moved by every layer in one forward pass.

    Runs ``model(*inputs)`` once under ``torch.no_grad()`` with forward hooks on every leaf
    module (a masked, parametrized layer included) and on every ``nn.MultiheadAttention``,
    counted whole (:func:`_attention_macs`: projections, ``Q K^T``, weights times ``V``).
    The counts equal ``torch.utils.flop_counter.FlopCounterMode``'s where it sees the
    matmuls (it misses fused kernels such as eval mode's attention fast path and the CPU's
    ``scaled_dot_product_attention``). Layers with weights that this counter does not know
    (e.g. LSTM) are listed in ``uncounted``.

    Shapes: ``inputs`` are whatever ``model`` accepts, batch included.
    """
    check_module(model)
    if not inputs:
        raise ValueError("inputs must hold at least one example input tensor")
    layers: list[LayerCost] = []
    uncounted: list[str] = []

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            main = output[0] if isinstance(output, (tuple, list)) else output
            if isinstance(module, nn.MultiheadAttention):
                macs = _attention_macs(module, args, kwargs)
            else:
                macs = _layer_macs(module, main) if isinstance(main, torch.Tensor) else None
            params = list(module.parameters())  # a unit's parameters are all its own
            moved = sum(tensor_bytes(p) for p in params) + tensor_bytes(args) + \
                tensor_bytes(kwargs) + tensor_bytes(output)
            if macs is None:
                uncounted.append(name)
                macs = 0
            n_params = sum(p.numel() for p in params)
            layers.append(LayerCost(name, type(module).__name__, macs, moved, n_params))

        return hook

    handles, inside = [], set()
    for name, m in model.named_modules():
        if id(m) in inside or not _is_unit(m):
            continue
        inside.update(id(sub) for sub in m.modules() if sub is not m)
        handles.append(m.register_forward_hook(make_hook(name), with_kwargs=True))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
    return ModelCost(tuple(layers), tuple(uncounted))


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensors created under it that are still alive, and the peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, list] = {}  # data_ptr -> [bytes, n live tensors]

    def _release(self, ptr: int) -> None:
        entry = self._storages.get(ptr)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live -= entry[0]
            del self._storages[ptr]

    def _track(self, t: torch.Tensor, existing: set[int]) -> None:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr == 0 or (ptr in existing and ptr not in self._storages):
            return  # an in-place op or a view of memory allocated before: nothing new
        entry = self._storages.setdefault(ptr, [storage.nbytes(), 0])
        if entry[1] == 0:
            self.live += entry[0]
            self.peak = max(self.peak, self.live)
        entry[1] += 1
        weakref.finalize(t, self._release, ptr)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        existing = {t.untyped_storage().data_ptr()
                    for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        out = func(*args, **(kwargs or {}))
        for t in pytree.tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t, existing)
        return out


def peak_memory_bytes(fn: Callable[[], Any], device: torch.device | str | None = None) -> int:
    """Peak bytes of memory allocated while ``fn()`` runs, above what was allocated before.

    On CUDA this is the caching allocator's own peak (``torch.cuda.max_memory_allocated``).
    On CPU it is tracked by a dispatch mode that counts the storage of every tensor an op
    creates until that tensor is freed: use it for inference (under ``torch.no_grad()``),
    where intermediate tensors die as soon as Python drops them, or for an optimiser step.
    Ops that write in place into (or view) memory allocated before ``fn`` ran allocate
    nothing and count nothing.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    if device.type != "cpu":
        raise ValueError(f"device must be cpu or cuda for peak memory, got {device}")
    tracker = _LiveBytes()
    with tracker:
        result = fn()
    del result
    return tracker.peak
