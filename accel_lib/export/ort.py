"""ONNX Runtime: sessions at each graph optimisation level, and ORT's int8 quantization.

A session's optimisation level decides which graph rewrites run once, at load time:

* ``disabled`` (ORT_DISABLE_ALL): the graph as exported;
* ``basic`` (ORT_ENABLE_BASIC): semantics-preserving rewrites valid on any provider:
  constant folding, redundant-node elimination, Conv+BatchNorm / Conv+Add / Conv+Mul fusion;
* ``extended`` (ORT_ENABLE_EXTENDED): fusions whose fused kernels exist on the CPU/CUDA
  providers (Conv+ReLU -> FusedConv, Gemm+activation, GELU, attention, ...);
* ``all`` (ORT_ENABLE_ALL): plus layout rewrites (NCHWc blocked layouts on x86).

``optimized_model_filepath`` writes the rewritten graph to disk so its nodes can be counted.
Threads are always set explicitly (``intra_op_num_threads``): ORT's default is every core,
which on a shared machine measures contention, not the runtime.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int
from ._files import check_model_file

__all__ = ["OPT_LEVELS", "make_session", "optimize_levels", "nodes_removed", "ort_predict",
           "DigitsCalibrationReader", "quantize_onnx", "QUANT_MODES", "available_providers"]

OPT_LEVELS = ("disabled", "basic", "extended", "all")
QUANT_MODES = ("dynamic", "static")


def _level(name: str) -> Any:
    import onnxruntime as ort

    check_choice(name, "level", OPT_LEVELS)
    return {"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}[name]


def available_providers() -> list[str]:
    """ONNX Runtime's execution providers in this install (e.g. ``['CPUExecutionProvider']``)."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


def make_session(model_file: str | os.PathLike, level: str = "all", *, threads: int = 1,
                 optimized_path: str | os.PathLike | None = None,
                 providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An ``onnxruntime.InferenceSession`` for an ONNX file.

    Args:
        model_file: an ``.onnx`` file (ValueError naming the path if it is not ONNX).
        level: one of :data:`OPT_LEVELS`.
        threads: ``intra_op_num_threads`` (inter-op is 1: the course's graphs are chains).
        optimized_path: if given, the optimised graph is saved there.
        providers: execution providers in order of preference; ones not installed are
            refused with the list of the installed ones.
    """
    import onnxruntime as ort

    path = check_model_file(model_file, ("onnx",), "model_file")
    check_int(threads, "threads")
    for p in providers:
        check_choice(p, "providers", available_providers())
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _level(level)
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    if optimized_path is not None:
        Path(optimized_path).parent.mkdir(parents=True, exist_ok=True)
        opts.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), opts, providers=list(providers))


def optimize_levels(model_file: str | os.PathLike, out_dir: str | os.PathLike, *,
                    threads: int = 1) -> dict[str, dict[str, Any]]:
    """Load ``model_file`` at every level, save each optimised graph in ``out_dir``, and
    return ``{level: {"path", "nodes", "ops"}}`` (``ops``: node count per operator type)."""
    from .onnx import graph_ops

    check_model_file(model_file, ("onnx",), "model_file")
    out: dict[str, dict[str, Any]] = {}
    for level in OPT_LEVELS:
        saved = Path(out_dir) / f"{Path(model_file).stem}.{level}.onnx"
        make_session(model_file, level, threads=threads, optimized_path=saved)
        ops = graph_ops(saved)
        out[level] = {"path": saved, "nodes": sum(ops.values()), "ops": dict(ops)}
    return out


def nodes_removed(model_file: str | os.PathLike, level: str) -> int:
    """How many nodes ONNX Runtime's ``level`` removes from the graph: the node count of the
    graph saved at ``disabled`` minus the one saved at ``level`` (fusions, eliminations;
    negative when a level adds nodes, e.g. ``all``'s layout reorders)."""
    import tempfile

    from .onnx import node_count

    check_choice(level, "level", OPT_LEVELS)
    with tempfile.TemporaryDirectory() as tmp:
        counts = []
        for lv in ("disabled", level):
            saved = Path(tmp) / f"{lv}.onnx"
            make_session(model_file, lv, optimized_path=saved)
            counts.append(node_count(saved))
    return counts[0] - counts[1]


def ort_predict(session: Any, x: np.ndarray) -> np.ndarray:
    """Run a one-input session on ``x`` (float32, any batch size) and return its first output."""
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]


class DigitsCalibrationReader:
    """An ``onnxruntime.quantization.CalibrationDataReader`` over an array of examples:
    ``get_next()`` yields ``{input_name: batch}`` dicts, then ``None``.

    ``quantize_static`` runs the float model on these batches and records each tensor's range
    (min-max by default), from which the activations' scale and zero point follow.
    """

    def __init__(self, calibration_data: np.ndarray, *, batch_size: int = 32,
                 input_name: str = "x") -> None:
        data = np.asarray(calibration_data, dtype=np.float32)
        if data.ndim < 2 or len(data) == 0:
            raise ValueError("calibration_data must hold at least one example (shape (N, ...) "
                             f"with N >= 1), got shape {data.shape}")
        check_int(batch_size, "batch_size")
        self.data, self.batch_size, self.input_name = data, batch_size, input_name
        self._next = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._next >= len(self.data):
            return None
        batch = self.data[self._next:self._next + self.batch_size]
        self._next += self.batch_size
        return {self.input_name: batch}

    def rewind(self) -> None:
        self._next = 0


def quantize_onnx(model_file: str | os.PathLike, out_file: str | os.PathLike,
                  mode: str = "dynamic", *, calibration_data: np.ndarray | None = None,
                  per_channel: bool = True) -> Path:
    """ONNX Runtime's int8 quantization of a float ONNX model.

    * ``"dynamic"`` (``quantize_dynamic``): int8 weights; activations quantized at run time
      from each batch's range (no calibration).
    * ``"static"`` (``quantize_static``, QDQ format): int8 weights and activations, the
      activations' ranges calibrated on ``calibration_data`` (an array of inputs, e.g. 100
      training digits) through a :class:`DigitsCalibrationReader`.

    Raises ValueError for a static run without (or with empty) ``calibration_data``.
    """
    path = check_model_file(model_file, ("onnx",), "model_file")
    check_choice(mode, "mode", QUANT_MODES)
    out = Path(out_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # ORT's "consider pre-processing" warning on every call
    try:
        return _quantize(path, out, mode, calibration_data, per_channel)
    finally:
        root.setLevel(level)


def _quantize(path: Path, out: Path, mode: str, calibration_data: np.ndarray | None,
              per_channel: bool) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if mode == "dynamic":
        quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8,
                         per_channel=per_channel)
        return out
    if calibration_data is None:
        raise ValueError("calibration_data must be an array of inputs for mode='static' "
                         "(e.g. 100 training examples), got None")
    reader = DigitsCalibrationReader(calibration_data)
    pre = out.with_suffix(".pre.onnx")
    quant_pre_process(str(path), str(pre), skip_symbolic_shape=True)
    try:
        quantize_static(str(pre), str(out), reader, per_channel=per_channel,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    finally:
        pre.unlink(missing_ok=True)
    return out
