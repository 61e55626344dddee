"""Quantization for the course, in one import.

The technique lives in four small modules, re-exported here:

* ``quant_ops``: pure tensor functions: qparams, quantize / dequantize / fake-quantize
  (affine and symmetric, per tensor and per channel, 2-16 bits, bit-exact with PyTorch's
  fake-quantize ops), power-of-two and k-means (clustered) quantization, fp16/bf16 casts.
* ``quant_observers``: calibration observers: min-max, moving average, percentile, MSE.
* ``quant_models``: the STE, ``QuantConfig``, PTQ (``ptq_``), QAT (``qat_``), PyTorch's
  dynamic int8 path, and sizes in bytes.
* ``quant_int``: a real integer path: int8 GEMM into int32, fixed-point requantization,
  ``IntLinear`` / ``IntConv2d`` and ``convert_to_int_``.
"""

from __future__ import annotations

from .quant_int import (
    IntConv2d,
    IntLinear,
    convert_to_int_,
    int_matmul,
    linear_error_bound,
    quantize_multiplier,
    requantize,
)
from .quant_models import (
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
    replace_modules_,
    serialized_size_bytes,
    state_size_bytes,
)
from .quant_observers import (
    OBSERVERS,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    Observer,
    PercentileObserver,
    make_observer,
)
from .quant_ops import (
    MAX_BITS,
    MIN_BITS,
    QParams,
    cast_error,
    check_bits,
    choose_qparams,
    cluster_quantize,
    dequantize,
    fake_quantize,
    in_range_mask,
    kmeans_codebook,
    packed_size_bytes,
    pow2_quantize,
    qparams_from_tensor,
    quant_range,
    quantization_mse,
    quantize,
    unit_roundoff,
)

__all__ = [
    # quant_ops
    "MIN_BITS", "MAX_BITS", "QParams", "check_bits", "quant_range", "choose_qparams",
    "qparams_from_tensor", "quantize", "dequantize", "fake_quantize", "in_range_mask",
    "quantization_mse", "pow2_quantize", "kmeans_codebook", "cluster_quantize",
    "unit_roundoff", "cast_error", "packed_size_bytes",
    # quant_observers
    "Observer", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver",
    "MSEObserver", "OBSERVERS", "make_observer",
    # quant_models
    "FakeQuantizeSTE", "fake_quantize_ste", "QuantConfig", "QuantWrapper", "SUPPORTED_MODULES",
    "prepare_", "calibrate_", "ptq_", "qat_", "quant_wrappers", "replace_modules_",
    "dynamic_quantize",
    "serialized_size_bytes", "state_size_bytes",
    # quant_int
    "int_matmul", "quantize_multiplier", "requantize", "linear_error_bound", "IntLinear",
    "IntConv2d", "convert_to_int_",
]
