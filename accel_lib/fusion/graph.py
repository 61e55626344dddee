"""Graph passes with torch.fx: operator fusion, constant folding and dead-code elimination.

``torch.fx.symbolic_trace`` runs a model's ``forward`` on proxies and records every call
into a :class:`torch.fx.Graph` of nodes (``placeholder``, ``get_attr``, ``call_module``,
``call_function``, ``call_method``, ``output``). A *pass* rewrites that graph and
``recompile()`` turns it back into Python code. Passes here:

* :func:`fuse_fx`: ``conv -> bn`` (and ``linear -> bn``) folded into one layer
  (:mod:`accel_lib.fusion.folding`), then ``conv -> relu`` and ``linear -> relu`` replaced
  by one fused module (:class:`ConvReLU`, :class:`LinearReLU`: the ReLU runs in place on the
  layer's fresh output, so no second tensor is written). A layer whose output has another
  user (a residual branch) is left alone: rewriting it would change what that user sees.
* :func:`fold_constants`: every computation that depends only on parameters and buffers
  (a weight-normalised weight, ``w.t() * scale``) runs once, at pass time, and becomes a
  buffer.
* :func:`eliminate_dead_code`: nodes whose result nobody uses are removed.

Tracing fails on Python control flow that depends on tensor values (``if x.dim() != 4``):
:func:`trace` says so. ``torch.compile``'s dynamo handles such code with guards and graph
breaks instead.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .._validate import check_module
from ..bench import markdown_table
from .folding import CONV_TYPES, _pair_matches, check_eval, fuse_pair

__all__ = [
    "ConvReLU",
    "LinearReLU",
    "trace",
    "fuse_fx",
    "is_relu",
    "eliminate_dead_code",
    "fold_constants",
    "count_ops",
    "describe_graph",
]


class _LayerReLU(nn.Module):
    """``relu(layer(x))`` as one module: the ReLU overwrites the layer's fresh output."""

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu_(self.layer(x))  # in place: the layer's output has no other user


class ConvReLU(_LayerReLU):
    """A convolution and its ReLU fused into one module (one node in a graph).

    Shapes: as the convolution's.
    """


class LinearReLU(_LayerReLU):
    """A Linear layer and its ReLU fused into one module.

    Shapes: (*, in_features) -> (*, out_features).
    """


def trace(model: nn.Module) -> fx.GraphModule:
    """``torch.fx.symbolic_trace(model)``, with an error that says why a model cannot be traced.

    Raises:
        ValueError: the model's ``forward`` branches on tensor values (``if x.dim() != 4``),
            calls ``len`` on a tensor, or does anything else symbolic tracing cannot record.
    """
    check_module(model)
    try:
        return fx.symbolic_trace(model)
    except Exception as err:  # any failure while tracing means "untraceable"
        raise ValueError(
            f"model ({type(model).__name__}) cannot be traced by torch.fx: "
            f"{type(err).__name__}: {err}. Symbolic tracing runs forward() on proxies, so "
            f"Python control flow on tensor values (an input check such as `if x.dim() != 4`, "
            f"a loop over a tensor's length) cannot be recorded. Trace a submodule without it "
            f"(e.g. nn.Sequential(model.features, model.classifier)), fold with fold_bn_, "
            f"or use torch.compile, whose dynamo guards such branches") from err


_RELU_FUNCTIONS = (torch.relu, torch.relu_, F.relu, F.relu_)
_RELU_METHODS = ("relu", "relu_")


def is_relu(node: fx.Node, modules: dict[str, nn.Module]) -> bool:
    """True for a ReLU in any of its spellings: ``nn.ReLU()``, ``F.relu``, ``torch.relu``,
    ``x.relu()`` (in place or not)."""
    if node.op == "call_module":
        return isinstance(modules.get(node.target), nn.ReLU)
    if node.op == "call_function":
        return node.target in _RELU_FUNCTIONS
    return node.op == "call_method" and node.target in _RELU_METHODS


def _sole_call(node: fx.Node, graph: fx.Graph) -> bool:
    """``node`` is a call_module node with one user, and the only call of its module."""
    if node.op != "call_module" or len(node.users) != 1:
        return False
    return sum(n.op == "call_module" and n.target == node.target for n in graph.nodes) == 1


def _fold_bn_nodes(gm: fx.GraphModule) -> int:
    modules = dict(gm.named_modules())
    folded = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or not isinstance(modules[node.target], _BatchNorm):
            continue
        src = node.args[0]
        if not isinstance(src, fx.Node) or not _sole_call(src, gm.graph):
            continue
        layer, bn = modules[src.target], modules[node.target]
        if not _pair_matches(layer, bn):
            continue
        gm.set_submodule(src.target, fuse_pair(layer, bn))
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        folded += 1
    return folded


def _fuse_relu_nodes(gm: fx.GraphModule) -> int:
    modules = dict(gm.named_modules())
    fused = 0
    for node in list(gm.graph.nodes):
        if not is_relu(node, modules) or not node.args or not isinstance(node.args[0], fx.Node):
            continue
        src = node.args[0]
        if not _sole_call(src, gm.graph):
            continue
        layer = modules[src.target]
        if isinstance(layer, CONV_TYPES):
            gm.set_submodule(src.target, ConvReLU(layer))
        elif isinstance(layer, nn.Linear):
            gm.set_submodule(src.target, LinearReLU(layer))
        else:
            continue
        node.replace_all_uses_with(src)
        gm.graph.erase_node(node)
        fused += 1
    return fused


def fuse_fx(model: nn.Module, *, fold_bn: bool = True, fuse_relu: bool = True) -> fx.GraphModule:
    """Trace ``model`` and fuse its operators: a new GraphModule, ``model`` is not changed.

    1. ``conv -> bn`` / ``linear -> bn`` (matching kind and size, running statistics) become
       one layer with folded weights, when the layer's output feeds only the BatchNorm;
    2. ``conv -> relu`` / ``linear -> relu`` (any spelling, see :func:`is_relu`) become one
       :class:`ConvReLU` / :class:`LinearReLU`, when the layer's output feeds only the ReLU.

    The result computes the same function (to float rounding) in eval mode.

    Raises:
        ValueError: a BatchNorm in training mode (folding would change the function), or a
            model that torch.fx cannot trace (:func:`trace`).
    """
    check_module(model)
    if fold_bn:
        check_eval(model)
    gm = trace(copy.deepcopy(model))
    if fold_bn:
        _fold_bn_nodes(gm)
    if fuse_relu:
        _fuse_relu_nodes(gm)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    return gm


def _mutates(node: fx.Node) -> bool:
    """An in-place op (``add_``, ``relu_``) or one fx knows has side effects."""
    name = node.target if isinstance(node.target, str) else getattr(node.target, "__name__", "")
    return node.is_impure() or (node.op in ("call_function", "call_method")
                                and name.endswith("_") and not name.endswith("__"))


def eliminate_dead_code(gm: fx.GraphModule) -> int:
    """Remove, in place, every node whose value no one uses; returns how many.

    Walks the graph backwards, so a chain that only fed a dead node dies in the same pass.
    Placeholders, the output and ops with side effects (in-place ops, ``print``, asserts)
    stay. Equal to ``gm.graph.eliminate_dead_code()`` on graphs without such ops.
    """
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(f"gm must be a torch.fx.GraphModule (see trace()), got "
                        f"{type(gm).__name__}")
    removed = 0
    for node in reversed(list(gm.graph.nodes)):
        if node.op in ("placeholder", "output") or node.users or _mutates(node):
            continue
        gm.graph.erase_node(node)
        removed += 1
    gm.recompile()
    return removed


def _attr(gm: nn.Module, target: str) -> Any:
    obj: Any = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def fold_constants(gm: fx.GraphModule) -> int:
    """Precompute, in place, every op whose inputs are all parameters, buffers or constants.

    Each such op runs once now; the result is stored as a buffer (``_folded_0``, ...) that
    a ``get_attr`` node reads, and the ops become dead code and go. Only tensors are folded;
    module calls, in-place and random-free-standing ops (no parameter input) are left alone.
    Parameters count as constants: fold for inference, after training. Returns the number of
    ops that no longer run in ``forward``.
    """
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(f"gm must be a torch.fx.GraphModule (see trace()), got "
                        f"{type(gm).__name__}")
    value: dict[fx.Node, Any] = {}
    with torch.no_grad():
        for node in gm.graph.nodes:
            if node.op == "get_attr":
                value[node] = _attr(gm, node.target)
                continue
            if node.op not in ("call_function", "call_method") or _mutates(node):
                continue
            inputs = node.all_input_nodes
            if not inputs or any(n not in value for n in inputs):
                continue
            args = fx.node.map_arg(node.args, lambda n: value[n])
            kwargs = fx.node.map_arg(node.kwargs, lambda n: value[n])
            if node.op == "call_function":
                value[node] = node.target(*args, **kwargs)
            else:
                value[node] = getattr(args[0], node.target)(*args[1:], **kwargs)
    before = sum(n.op in ("call_function", "call_method") for n in gm.graph.nodes)
    index = 0
    for node in list(gm.graph.nodes):
        if node.op == "get_attr" or node not in value or not isinstance(value[node], torch.Tensor):
            continue
        if all(user in value for user in node.users):
            continue  # only feeds other folded ops: dies with them
        while hasattr(gm, f"_folded_{index}"):
            index += 1
        name = f"_folded_{index}"
        gm.register_buffer(name, value[node].detach().clone())
        with gm.graph.inserting_before(node):
            node.replace_all_uses_with(gm.graph.get_attr(name))
    eliminate_dead_code(gm)
    gm.delete_all_unused_submodules()
    gm.recompile()
    return before - sum(n.op in ("call_function", "call_method") for n in gm.graph.nodes)


def count_ops(gm: fx.GraphModule) -> dict[str, int]:
    """How many nodes of each kind the graph runs: module calls by class name
    (``Conv2d``, ``BatchNorm2d``, ``ConvReLU``), functions and methods by name."""
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(f"gm must be a torch.fx.GraphModule, got {type(gm).__name__}")
    modules = dict(gm.named_modules())
    counts: dict[str, int] = {}
    for node in gm.graph.nodes:
        if node.op == "call_module":
            key = type(modules[node.target]).__name__
        elif node.op in ("call_function", "call_method"):
            key = node.target if isinstance(node.target, str) else node.target.__name__
        else:
            continue
        counts[key] = counts.get(key, 0) + 1
    return counts


def describe_graph(gm: fx.GraphModule) -> str:
    """The graph as a markdown table: one row per node (op, name, what it calls, its inputs)."""
    if not isinstance(gm, fx.GraphModule):
        raise TypeError(f"gm must be a torch.fx.GraphModule, got {type(gm).__name__}")
    modules = dict(gm.named_modules())
    rows = []
    for node in gm.graph.nodes:
        if node.op == "call_module":
            what = f"{node.target}: {type(modules[node.target]).__name__}"
        elif node.op in ("call_function", "call_method"):
            target = node.target if isinstance(node.target, str) else node.target.__name__
            what = f"{target}()" if node.op == "call_function" else f".{target}()"
        else:
            what = str(node.target)
        rows.append([node.op, node.name, what, ", ".join(n.name for n in node.all_input_nodes)])
    return markdown_table(["op", "node", "calls", "inputs"], rows)
