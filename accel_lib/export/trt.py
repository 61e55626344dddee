"""The road to TensorRT, named, and ONNX Runtime's CUDA provider measured where there is one.

TensorRT (NVIDIA's inference compiler) takes the same ONNX file two ways:

* ``trtexec --onnx=model.onnx --saveEngine=model.plan --fp16`` (or ``--int8`` with a
  calibration cache, or a QDQ model from ``quantize_static``) builds a serialized engine:
  layer fusion, kernel auto-tuning for that GPU, reduced precision; ``--minShapes/--optShapes/
  --maxShapes`` cover the dynamic batch axis;
* ONNX Runtime's ``TensorrtExecutionProvider`` builds the engine inside a session (first in
  the providers list, CUDA and CPU as fall-backs for unsupported nodes).

Neither exists on a CPU-only machine: :func:`cuda_session_timing` returns ``None`` there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._validate import check_choice, check_int
from ._files import check_model_file

__all__ = ["TRT_PRECISIONS", "trtexec_command", "tensorrt_providers", "cuda_session_timing"]

TRT_PRECISIONS = ("fp32", "fp16", "int8")


def trtexec_command(model_file: str | os.PathLike, precision: str = "fp16", *,
                    max_batch: int = 64, input_shape: tuple[int, ...] = (1, 8, 8)) -> str:
    """The ``trtexec`` command line that builds a TensorRT engine from an ONNX file, with the
    dynamic batch axis given a min (1), optimum and max (``max_batch``)."""
    path = check_model_file(model_file, ("onnx",), "model_file")
    check_choice(precision, "precision", TRT_PRECISIONS)
    check_int(max_batch, "max_batch")
    dims = "x".join(map(str, input_shape))
    flag = {"fp32": "", "fp16": " --fp16", "int8": " --int8"}[precision]
    return (f"trtexec --onnx={path} --saveEngine={Path(path).with_suffix('.plan')}"
            f" --minShapes=x:1x{dims} --optShapes=x:{max_batch}x{dims}"
            f" --maxShapes=x:{max_batch}x{dims}{flag}")


def tensorrt_providers() -> list[str]:
    """The providers list that runs an ONNX model on TensorRT through ONNX Runtime, falling
    back to CUDA then the CPU (only the installed ones)."""
    from .ort import available_providers

    have = available_providers()
    return [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider",
                        "CPUExecutionProvider") if p in have]


def cuda_session_timing(model_file: str | os.PathLike, x: np.ndarray, *,
                        repeats: int = 20) -> float | None:
    """Median ms per call of ONNX Runtime's ``CUDAExecutionProvider`` on ``x``, or ``None``
    when this install or machine has no CUDA provider (a CPU-only machine, as here)."""
    from ..bench import time_fn
    from .ort import available_providers, make_session, ort_predict

    check_model_file(model_file, ("onnx",), "model_file")
    if "CUDAExecutionProvider" not in available_providers():
        return None
    try:
        session = make_session(model_file, providers=("CUDAExecutionProvider",))
    except Exception:  # noqa: BLE001  (provider installed, but no usable GPU or CUDA libs)
        return None
    if "CUDAExecutionProvider" not in session.get_providers():
        return None
    return time_fn(lambda: ort_predict(session, x), repeats=repeats).median_ms
