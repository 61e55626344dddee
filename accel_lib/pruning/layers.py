"""Which layers pruning works on: every Linear and Conv, found by name."""

from __future__ import annotations

from collections.abc import Iterable

from torch import nn
from torch.nn.utils import parametrize

from .._validate import check_module
from ..nn_utils import layers_of_type

__all__ = ["PRUNABLE_TYPES", "prunable_layers", "select_layers", "weight_param"]

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Linear / Conv layer of ``model`` by qualified name (what pruning masks)."""
    layers = layers_of_type(model, PRUNABLE_TYPES)
    if not layers:
        raise ValueError(f"model must contain at least one of "
                         f"{[t.__name__ for t in PRUNABLE_TYPES]}, got none in "
                         f"{type(model).__name__}")
    return layers


def select_layers(model: nn.Module, layers: Iterable[str] | None) -> dict[str, nn.Module]:
    """The prunable layers named in ``layers`` (all of them for ``None``), by name.

    Raises:
        ValueError: a name that is not a Linear / Conv layer of ``model``.
    """
    available = prunable_layers(model)
    if layers is None:
        return available
    if isinstance(layers, str):
        raise TypeError(f"layers must be a list of layer names, got the string {layers!r}; "
                        f"write [{layers!r}]")
    chosen = {}
    for name in layers:
        if name not in available:
            raise ValueError(f"layers must name Linear/Conv layers of the model "
                             f"({sorted(available)}), got {name!r}")
        chosen[name] = available[name]
    return chosen


def weight_param(module: nn.Module) -> nn.Parameter:
    """The trainable tensor behind ``module.weight`` (the original under a parametrization)."""
    check_module(module, "module")
    if parametrize.is_parametrized(module, "weight"):
        return module.parametrizations.weight.original
    return module.weight
