"""Deployment for the course, in one import: ``from accel_lib import export as EX``.

Getting a trained model out of its framework and into an inference runtime, in both of the
course's frameworks, with every step measured (notebook 09):

* ``onnx``: PyTorch -> ONNX (the TorchScript exporter; why in its docstring), dynamic batch
  axis, ``onnx.checker``, parity with PyTorch, the graph's operators, and a ValueError
  naming the layer the exporter cannot translate.
* ``ort``: ONNX Runtime sessions at each graph optimisation level (optimised graphs saved,
  nodes counted), explicit threads, ``quantize_dynamic`` / ``quantize_static`` with a
  calibration reader.
* ``tflite``: a tf.keras twin of ``MLP`` / ``SmallCNN``, TFLite conversion (float32,
  dynamic-range int8, full-integer int8, float16), LiteRT's interpreter, the int8 scale and
  zero point stored per tensor.
* ``twin``: a tf.keras twin of a trained PyTorch chain (SmallCNN, MLP, and what pruning,
  low rank and folding leave of them) with every weight copied, NCHW -> NHWC, checked
  against PyTorch: how a PyTorch model reaches the TFLite converter.
* ``tfmot``: the TF Model Optimization Toolkit: pruning (+ zipped size), QAT, clustering.
* ``trt``: how the ONNX file goes to TensorRT, and ORT's CUDA provider when there is a GPU.
* ``measure``: one :class:`Variant` row per deployed model (size, accuracy, bs1/bs64 latency).

TensorFlow is imported lazily inside the functions that need it, after torch and with
``TF_USE_LEGACY_KERAS=1`` (``_tf.import_tf``): ``import accel_lib.export`` loads neither
TensorFlow nor ONNX Runtime.
"""

from __future__ import annotations

from ._files import FORMATS, check_model_file, file_size_bytes, model_format
from ._tf import import_tf
from .measure import (
    VARIANT_HEADER,
    Variant,
    accuracy,
    cpu_description,
    digits_arrays,
    measure_variant,
)
from .onnx import (
    DEFAULT_OPSET,
    export_onnx,
    graph_ops,
    max_abs_diff,
    node_count,
    onnx_max_abs_diff,
    unsupported_layer,
)
from .ort import (
    OPT_LEVELS,
    QUANT_MODES,
    DigitsCalibrationReader,
    available_providers,
    make_session,
    nodes_removed,
    optimize_levels,
    ort_predict,
    quantize_onnx,
)
from .tflite import (
    KERAS_KINDS,
    TFLITE_MODES,
    LiteModel,
    convert_tflite,
    keras_model,
    real_value,
    representative_dataset,
    tensor_qparams,
    to_nhwc,
    train_keras,
)
from .tfmot import (
    cluster_keras,
    kernel_sparsity,
    prune_keras,
    qat_keras,
    unique_weights,
    zipped_size_bytes,
)
from .trt import TRT_PRECISIONS, cuda_session_timing, tensorrt_providers, trtexec_command
from .twin import TWIN_LAYERS, keras_from_torch, keras_twin, torch_chain

__all__ = [
    # files
    "FORMATS", "model_format", "check_model_file", "file_size_bytes", "import_tf",
    # onnx
    "DEFAULT_OPSET", "export_onnx", "graph_ops", "node_count", "onnx_max_abs_diff",
    "max_abs_diff", "unsupported_layer",
    # ort
    "OPT_LEVELS", "QUANT_MODES", "make_session", "optimize_levels", "nodes_removed", "ort_predict",
    "DigitsCalibrationReader", "quantize_onnx", "available_providers",
    # tflite
    "TFLITE_MODES", "KERAS_KINDS", "to_nhwc", "keras_model", "train_keras",
    "representative_dataset", "convert_tflite", "LiteModel", "tensor_qparams", "real_value",
    # tfmot
    "zipped_size_bytes", "kernel_sparsity", "unique_weights", "prune_keras", "qat_keras",
    "cluster_keras",
    # twin
    "TWIN_LAYERS", "keras_from_torch", "keras_twin", "torch_chain",
    # trt
    "TRT_PRECISIONS", "trtexec_command", "tensorrt_providers", "cuda_session_timing",
    # measure
    "Variant", "VARIANT_HEADER", "measure_variant", "accuracy", "digits_arrays",
    "cpu_description",
]
