"""Model plumbing every technique shares: walking and replacing submodules, eval mode that
always comes back, a model's device, and its layers of given types.

Techniques (pruning, quantization, low-rank, ...) use these instead of writing their own,
so a bug fixed here is fixed everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ._validate import check_module

__all__ = [
    "eval_mode",
    "model_device",
    "layers_of_type",
    "reads_child_weights",
    "swappable_layers",
    "replace_modules_",
]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode for the ``with`` block, then restore every submodule's mode.

    Each submodule's own ``training`` flag is restored, not just the top one's (a model
    with a frozen, eval-mode backbone stays that way), also when the block raises.

        with eval_mode(model):
            logits = model(x)
    """
    check_module(model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); CPU for a stateless model."""
    check_module(model)
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def layers_of_type(model: nn.Module, types: type | tuple[type, ...]) -> dict[str, nn.Module]:
    """Every submodule of ``model`` that is an instance of ``types``, by qualified name.

    The model itself is included (under the name ``""``) when it matches.
    """
    check_module(model)
    return {name: m for name, m in model.named_modules() if isinstance(m, types)}


def reads_child_weights(module: nn.Module) -> bool:
    """True when ``module`` may compute with its children's weights without calling them, so
    that swapping a child for another module (a quantized or factorised one) breaks it.

    * ``nn.MultiheadAttention`` reads ``out_proj.weight`` in every forward.
    * ``nn.TransformerEncoderLayer`` with ``batch_first`` attention reads every child's
      weight on its eval-mode fast path (``torch._transformer_encoder_layer_fwd``).

    torch's own ``quantize_dynamic`` skips the first and breaks on the second.
    """
    check_module(module, "module")
    if isinstance(module, nn.MultiheadAttention):
        return True
    return isinstance(module, nn.TransformerEncoderLayer) and module.self_attn.batch_first


def swappable_layers(model: nn.Module, types: type | tuple[type, ...]) -> dict[str, nn.Module]:
    """:func:`layers_of_type`, less the layers inside a module that :func:`reads_child_weights`:
    those a technique may replace by a module of another kind."""
    check_module(model)
    readers = [name for name, m in model.named_modules() if reads_child_weights(m)]

    def inside(name: str) -> bool:
        return any(name != r and (r == "" or name.startswith(f"{r}.")) for r in readers)

    return {name: m for name, m in layers_of_type(model, types).items() if not inside(name)}


def replace_modules_(model: nn.Module, replace: Callable[[nn.Module], nn.Module | None]) -> int:
    """Swap, in place, every submodule for which ``replace`` returns a new module.

    Children are visited depth first; a replaced module's own children are not visited,
    nor the children of a module that :func:`reads_child_weights` (swapping them would
    break it). Returns how many modules were replaced.
    """
    check_module(model)
    if reads_child_weights(model):
        return 0
    count = 0
    for name, child in model.named_children():
        new = replace(child)
        if new is None:
            count += replace_modules_(child, replace)
        else:
            setattr(model, name, new)
            count += 1
    return count
