"""Gradient clipping: by global norm and by value, as ``torch.nn.utils`` does it.

Clipping by the *global* norm rescales all gradients by one factor, so the update keeps
its direction and only its length is capped; clipping each tensor by its own norm, or each
value, changes the direction.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from .._validate import check_real

__all__ = ["grads_of", "global_grad_norm", "clip_grad_norm_", "clip_grad_value_"]

Params = Tensor | Iterable[Tensor]


def grads_of(parameters: Params) -> list[Tensor]:
    """The ``.grad`` of every parameter that has one (``None`` gradients are skipped)."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    out = []
    for p in parameters:
        if not isinstance(p, Tensor):
            raise TypeError(f"parameters must be tensors, got {type(p).__name__}")
        if p.grad is not None:
            out.append(p.grad)
    return out


def global_grad_norm(parameters: Params, norm_type: float = 2.0) -> Tensor:
    """``|| (||g_1||, ..., ||g_n||) ||``: the norm of all gradients as one long vector.

    For the 2-norm this is ``sqrt(sum_i ||g_i||^2)``; ``norm_type=inf`` gives the largest
    absolute value. A 0-dim tensor (0 when there are no gradients).
    """
    return _total_norm(grads_of(parameters), norm_type)


def _total_norm(grads: list[Tensor], norm_type: float) -> Tensor:
    if norm_type != float("inf"):
        norm_type = check_real(norm_type, "norm_type", low=0.0, low_open=True)
    if not grads:
        return torch.tensor(0.0)
    device = grads[0].device
    norms = [torch.linalg.vector_norm(g, norm_type).to(device) for g in grads]
    return torch.linalg.vector_norm(torch.stack(norms), norm_type)


@torch.no_grad()
def clip_grad_norm_(parameters: Params, max_norm: float, norm_type: float = 2.0, *,
                    eps: float = 1e-6, error_if_nonfinite: bool = False) -> Tensor:
    """Scale every gradient in place by ``min(1, max_norm / (total_norm + eps))``.

    ``total_norm`` is :func:`global_grad_norm`; the ``eps`` (PyTorch's ``1e-6``) keeps the
    division finite for zero gradients. Gradients below ``max_norm`` are left as they are
    (the factor is clamped at 1, never amplifying). Returns ``total_norm`` before clipping,
    the number worth logging.
    """
    max_norm = check_real(max_norm, "max_norm", low=0.0)
    grads = grads_of(parameters)
    total = _total_norm(grads, norm_type)
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise RuntimeError(f"the total {norm_type}-norm of the gradients is {total.item()}: "
                           "cannot clip (error_if_nonfinite=False scales by it anyway)")
    coef = torch.clamp(max_norm / (total + eps), max=1.0)
    for g in grads:
        g.mul_(coef.to(g.device))
    return total


@torch.no_grad()
def clip_grad_value_(parameters: Params, clip_value: float) -> None:
    """Clamp every gradient value into ``[-clip_value, clip_value]``, in place."""
    clip_value = check_real(clip_value, "clip_value", low=0.0)
    for g in grads_of(parameters):
        g.clamp_(min=-clip_value, max=clip_value)
