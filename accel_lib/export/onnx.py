"""PyTorch -> ONNX: export, check, verify parity, list the graph's operators.

Which exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript tracer, by default.
On this stack (torch 2.14, onnx 1.23, onnxscript 0.7) both exporters produce a valid graph
for the course's models, but the tracer takes ~0.2 s against ~5 s for ``dynamo=True``
(``torch.export`` + decompositions + onnxscript's optimiser, which also loads triton), folds
BatchNorm into the conv when the model is in eval mode, and takes a plain ``dynamic_axes``
dict. ``dynamo=True`` is there for models with data-dependent control flow that tracing
would freeze; its graph is the same up to ``Flatten`` becoming ``Reshape``.

Either way the model's batch axis is dynamic: one file serves batch 1 and batch 64.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_module, check_tensor
from ._files import check_model_file

__all__ = ["DEFAULT_OPSET", "export_onnx", "graph_ops", "node_count", "max_abs_diff",
           "onnx_max_abs_diff", "unsupported_layer"]

DEFAULT_OPSET = 17


def _export(model: nn.Module, example: torch.Tensor, path: Path, *, dynamo: bool,
            opset: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's deprecation and TracerWarnings
        if dynamo:
            batch = torch.export.Dim("batch", min=1, max=4096)
            torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset,
                              input_names=["x"], output_names=["logits"],
                              dynamic_shapes={"x": {0: batch}}, verbose=False)
        else:
            torch.onnx.export(model, (example,), str(path), dynamo=False, opset_version=opset,
                              input_names=["x"], output_names=["logits"],
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                              do_constant_folding=True)


def unsupported_layer(model: nn.Module, example: torch.Tensor,
                      opset: int = DEFAULT_OPSET) -> tuple[str, str] | None:
    """The first leaf layer (``(qualified name, type)``) the exporter cannot translate on its
    own, found by exporting every leaf module with the input it receives; ``None`` if each
    one exports."""
    check_module(model)
    inputs: dict[str, tuple] = {}
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]

    def keep(name: str):  # a hook that records the layer's input and returns None
        def hook(module: nn.Module, args: tuple, output: object) -> None:
            inputs.setdefault(name, args)
        return hook

    hooks = [m.register_forward_hook(keep(n)) for n, m in leaves]
    try:
        with torch.no_grad():
            model(example)
    except Exception:  # noqa: BLE001  (a model that fails to run: checked layer by layer below)
        pass
    finally:
        for h in hooks:
            h.remove()
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for n, m in leaves:
            args = inputs.get(n)
            if not args or not all(isinstance(a, torch.Tensor) for a in args):
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(m, args, os.path.join(tmp, "leaf.onnx"), dynamo=False,
                                      opset_version=opset)
            except Exception as e:  # noqa: BLE001
                return n, f"{type(m).__name__} ({type(e).__name__}: {str(e).splitlines()[0]})"
    return None


def export_onnx(model: nn.Module, example: torch.Tensor, path: str | os.PathLike, *,
                dynamo: bool = False, opset: int = DEFAULT_OPSET) -> Path:
    """Export ``model`` (in eval mode, on the CPU) to an ONNX file with a dynamic batch axis,
    and check it with ``onnx.checker.check_model``.

    Args:
        model: an ``nn.Module``; it is put in eval mode (BatchNorm uses running statistics).
        example: one input batch, e.g. ``x[:1]``; its batch size does not matter.
        path: where to write the ``.onnx`` file (parent folders are created).
        dynamo: ``False`` (default): the TorchScript tracer; ``True``: the dynamo exporter.
        opset: the ONNX operator set version.

    Returns the path. Raises ValueError naming the layer when a layer has no ONNX
    translation (e.g. ``torch.linalg.svd`` inside a module).
    """
    check_module(model)
    check_tensor(example, "example")
    check_int(opset, "opset", minimum=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    try:
        _export(model, example.cpu(), path, dynamo=bool(dynamo), opset=opset)
    except Exception as e:  # noqa: BLE001  (the exporter raises many kinds; we name the layer)
        found = unsupported_layer(model, example.cpu(), opset)
        where = (f"layer {found[0]!r}: {found[1]}" if found else
                 f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        raise ValueError(f"model cannot be exported to ONNX (opset {opset}): unsupported "
                         f"{where}. Replace that layer with standard ops, or register a "
                         "custom symbolic / ONNX function for it") from e
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return path


def graph_ops(model_file: str | os.PathLike) -> Counter:
    """How many nodes of each operator type the ONNX graph holds, e.g.
    ``Counter({'Conv': 2, 'Relu': 2, 'MaxPool': 1, 'Flatten': 1, 'Gemm': 1})``."""
    import onnx

    path = check_model_file(model_file, ("onnx",), "model_file")
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def node_count(model_file: str | os.PathLike) -> int:
    """Number of nodes in an ONNX graph's top level."""
    return sum(graph_ops(model_file).values())


def max_abs_diff(reference: object, candidate: object) -> float:
    """``max |reference - candidate|`` over every element of two arrays (numpy or torch) of
    the same shape, as a float: the parity figure of an export.

    Raises ValueError when the shapes differ (broadcasting would compare the wrong
    elements) or an array is empty.
    """
    a = reference.detach().cpu().numpy() if isinstance(reference, torch.Tensor) else \
        np.asarray(reference)
    b = candidate.detach().cpu().numpy() if isinstance(candidate, torch.Tensor) else \
        np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError(f"candidate must have the reference's shape {a.shape}, got {b.shape}")
    if a.size == 0:
        raise ValueError("reference must not be empty, got shape " + str(a.shape))
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def onnx_max_abs_diff(model: nn.Module, model_file: str | os.PathLike,
                      x: torch.Tensor) -> float:
    """``max |PyTorch(x) - ONNX Runtime(x)|`` over every logit: the exporter's parity check
    (float32 round-off is ~1e-6; anything above ~1e-4 is a wrong graph)."""
    from .ort import make_session

    check_module(model)
    check_tensor(x, "x")
    with torch.no_grad():
        ref = model.eval()(x).numpy()
    got = make_session(model_file).run(None, {"x": x.numpy()})[0]
    return max_abs_diff(ref, got)
