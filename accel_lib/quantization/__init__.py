"""Quantization for the course, in one import: ``from accel_lib import quantization as Q``.

Two tiers, like torchao: pure tensor functions under model-level calls. The technique lives
in four small modules, re-exported here:

* ``ops``: pure tensor functions: qparams, quantize / dequantize / fake-quantize
  (affine and symmetric, per tensor and per channel, 2-16 bits, bit-exact with PyTorch's
  fake-quantize ops), power-of-two and k-means (clustered) quantization, fp16/bf16 casts.
* ``observers``: calibration observers: min-max, moving average, percentile, MSE.
* ``models``: the STE, ``QuantConfig``, PTQ (``ptq_``), QAT (``qat_``), PyTorch's dynamic
  int8 path.
* ``integer``: a real integer path: int8 GEMM into int32, fixed-point requantization,
  ``IntLinear`` / ``IntConv2d`` and ``convert_to_int_``.
* ``fast``: the CPU's packed int8 GEMMs (``torch._int_mm``, oneDNN, FBGEMM) as exact
  backends of ``IntLinear`` (``backend="auto"``), chosen by measuring this machine
  (``int8_backend_report``).
* ``integer_only``: int8 codes from layer to layer (``quantized_linear``, requantized onto
  the next layer's grid) and ``Int8Sequential``, a calibrated MLP run in integers only.

Sizes in bytes (``serialized_size_bytes``, ``state_size_bytes``, ``packed_size_bytes``)
live with every other size counter in :mod:`accel_lib.stats` and are re-exported here.
"""

from __future__ import annotations

from ..nn_utils import replace_modules_
from ..stats import packed_size_bytes, serialized_size_bytes, state_size_bytes
from .fast import (
    INT8_BACKENDS,
    BackendTiming,
    Int8BackendReport,
    check_int8_backend,
    int8_backend_report,
)
from .integer import (
    IntConv2d,
    IntLinear,
    convert_to_int_,
    int_matmul,
    linear_error_bound,
    quantize_multiplier,
    requantize,
)
from .integer_only import Int8Sequential, quantized_linear
from .models import (
    SUPPORTED_MODULES,
    FakeQuantizeSTE,
    QuantConfig,
    QuantWrapper,
    calibrate_,
    dynamic_quantize,
    fake_quantize_ste,
    prepare_,
    ptq_,
    qat_,
    quant_wrappers,
)
from .observers import (
    OBSERVERS,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
    check_percentile,
    make_observer,
)
from .ops import (
    MAX_BITS,
    MIN_BITS,
    QParams,
    cast_error,
    channel_minmax,
    channel_rows,
    check_bits,
    choose_qparams,
    cluster_quantize,
    dequantize,
    fake_quantize,
    in_range_mask,
    kmeans_codebook,
    pow2_quantize,
    qparams_from_tensor,
    quant_range,
    quantization_mse,
    quantize,
    unit_roundoff,
)

__all__ = [
    # ops
    "MIN_BITS", "MAX_BITS", "QParams", "check_bits", "quant_range", "choose_qparams",
    "channel_rows", "channel_minmax", "qparams_from_tensor", "quantize", "dequantize",
    "fake_quantize", "in_range_mask", "quantization_mse", "pow2_quantize", "kmeans_codebook",
    "cluster_quantize", "unit_roundoff", "cast_error",
    # observers
    "Observer", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver",
    "MSEObserver", "OBSERVERS", "make_observer", "check_percentile",
    # models
    "FakeQuantizeSTE", "fake_quantize_ste", "QuantConfig", "QuantWrapper", "SUPPORTED_MODULES",
    "prepare_", "calibrate_", "ptq_", "qat_", "quant_wrappers", "dynamic_quantize",
    # integer
    "int_matmul", "quantize_multiplier", "requantize", "linear_error_bound", "IntLinear",
    "IntConv2d", "convert_to_int_",
    # fast
    "INT8_BACKENDS", "BackendTiming", "Int8BackendReport", "int8_backend_report",
    "check_int8_backend",
    # integer_only
    "quantized_linear", "Int8Sequential",
    # shared core, re-exported
    "replace_modules_", "serialized_size_bytes", "state_size_bytes", "packed_size_bytes",
]
