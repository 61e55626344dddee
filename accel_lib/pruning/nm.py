"""N:M semi-structured sparsity: keep N of every M consecutive weights (2:4 on NVIDIA GPUs).

2:4 is the pattern sparse tensor cores (Ampere and later) execute at up to twice the dense
rate: the weight is stored compressed (half the values plus 2-bit indices) and the kernel
skips the zeros. ``nm_mask`` computes the mask; ``prune_nm_`` attaches it like any pruning
mask; ``to_semi_structured_`` swaps in ``torch.sparse.to_sparse_semi_structured`` weights
on a supported GPU. On a CPU the model stays masked dense: same outputs, no speedup.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrize

from .._validate import check_int, check_module, check_tensor
from .layers import prunable_layers, select_layers
from .unstructured import attach_mask, mask_of

__all__ = ["nm_mask", "prune_nm_", "semi_structured_available", "to_semi_structured_"]


def nm_mask(weight: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """N:M semi-structured mask: in every group of ``m`` consecutive weights along the last
    (input) dimension keep the ``n`` largest ``|w|`` (2:4 = NVIDIA's sparse tensor cores).

    Shapes: ``weight`` (..., K) with K divisible by ``m``; returns a bool tensor of that shape.
    """
    check_tensor(weight, "weight")
    for label, v in (("n", n), ("m", m)):
        check_int(v, label)
    if n >= m:
        raise ValueError(f"n must be < m (keep n of every m weights), got n={n}, m={m}")
    if weight.shape[-1] % m:
        raise ValueError(f"weight's last dimension must be divisible by m={m}, "
                         f"got shape {tuple(weight.shape)}")
    groups = weight.detach().abs().reshape(-1, m)  # (G, m)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.topk(n, dim=1).indices, True)
    return keep.view(weight.shape)


def prune_nm_(model: nn.Module, n: int = 2, m: int = 4, *,
              layers: Iterable[str] | None = None) -> nn.Module:
    """Mask every Linear layer (or ``layers``) to N:M sparsity along its input dimension. In place.

    Linear layers whose ``in_features`` is not divisible by ``m`` raise ValueError. Every
    mask is computed before the first is attached: the model is unchanged when it raises.
    """
    if layers is None:
        chosen = {k: v for k, v in prunable_layers(model).items() if isinstance(v, nn.Linear)}
        if not chosen:
            raise ValueError("model must contain an nn.Linear layer for N:M pruning, got none")
    else:
        chosen = select_layers(model, layers)
    new = {}
    for name, module in chosen.items():
        if not isinstance(module, nn.Linear):
            raise ValueError(f"layers must be nn.Linear for N:M sparsity, got {name!r}: "
                             f"{type(module).__name__}")
        new[name] = nm_mask(module.weight, n, m)
    for name, module in chosen.items():
        attach_mask(module, new[name])
    return model


def semi_structured_available(device: torch.device | str | None = None) -> bool:
    """True on a CUDA GPU with sparse tensor cores (compute capability >= 8.0)."""
    if not torch.cuda.is_available():
        return False
    device = torch.device(device) if device is not None else torch.device("cuda")
    return device.type == "cuda" and torch.cuda.get_device_capability(device)[0] >= 8


def to_semi_structured_(model: nn.Module) -> nn.Module:
    """Swap 2:4-masked Linear weights for ``torch.sparse.to_sparse_semi_structured`` tensors.

    Only on a supported GPU (:func:`semi_structured_available`), for fp16/bf16 weights of
    shape (32 a, 64 b) whose masks are 2:4; elsewhere the model is left as it is (masked
    dense: same outputs, no speedup). In place; returns the model.
    """
    from torch.sparse import to_sparse_semi_structured

    check_module(model)
    for module in model.modules():
        if not isinstance(module, nn.Linear) or mask_of(module) is None:
            continue
        weight = module.weight
        if not semi_structured_available(weight.device) or \
                weight.dtype not in (torch.float16, torch.bfloat16):
            continue
        rows, cols = weight.shape
        if rows % 32 or cols % 64:  # the fp16/bf16 sparse kernels' tile (CUTLASS, cuSPARSELt)
            continue
        mask = mask_of(module).mask
        if not bool((mask.reshape(-1, 4).sum(dim=1) == 2).all()):
            continue  # not a 2:4 pattern
        parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
        module.weight = nn.Parameter(to_sparse_semi_structured(module.weight.detach()),
                                     requires_grad=False)
    return model
