"""Mixed precision and hardware, in one import: ``from accel_lib import precision as PR``.

* ``formats``: fp32, fp16, bf16, fp8 (e4m3fn, e5m2) decoded and encoded by hand from their
  bits (round to nearest even, subnormals, inf/NaN), equal to torch's casts.
* ``errors``: unit roundoff, relative error bound and measured error of a cast.
* ``failures``: overflow, underflow and swamping, and the fixes (fp32 accumulation, Kahan,
  pairwise summation).
* ``scaler``: a dynamic loss scaler making GradScaler's decisions; fp32 master weights.
* ``amp``: ``torch.autocast`` training on the digits, accuracy against fp32.
* ``hardware``: the CPU's ISA and the GPU, per-dtype measured peaks, why bf16 is fast or slow.
* ``layout``: channels_last vs contiguous convolutions.
* ``explain``: sentences from measurements (``speed_word``, ``low_precision_story``; also
  re-exported by ``accel_lib.quantization.explain``).
"""

from __future__ import annotations

from ._device import AUTOCAST_DTYPES, MATMUL_DTYPES, check_device
from .amp import MixedResult, compare_precisions, train_mixed
from .errors import cast_error, relative_error_bound, unit_roundoff
from .explain import SAME_SPEED, low_precision_story, speed_word
from .failures import (
    fp32_accumulated_sum,
    kahan_sum,
    matmul_overflows,
    naive_sum,
    overflow_fraction,
    pairwise_sum,
    relative_error,
    underflow_fraction,
)
from .formats import (
    BF16,
    FORMATS,
    FP8_E4M3,
    FP8_E5M2,
    FP16,
    FP32,
    Format,
    bit_fields,
    decode,
    encode,
    format_limits,
    get_format,
    round_to_format,
)
from .hardware import (
    ISA_FLAGS,
    HardwareReport,
    dtype_name,
    dtype_peaks,
    dtype_rooflines,
    explain_dtype_speed,
    hardware_report,
    tf32_ratio,
)
from .layout import LayoutTiming, channels_last_timing
from .scaler import (
    LossScaler,
    MasterWeights,
    grad_scaler_decisions,
    loss_scaler_decisions,
    master_weight_step,
    scaler_update,
)

__all__ = [
    "AUTOCAST_DTYPES", "MATMUL_DTYPES", "check_device",
    "MixedResult", "train_mixed", "compare_precisions",
    "unit_roundoff", "cast_error", "relative_error_bound",
    "SAME_SPEED", "speed_word", "low_precision_story",
    "overflow_fraction", "underflow_fraction", "matmul_overflows", "naive_sum",
    "fp32_accumulated_sum", "kahan_sum", "pairwise_sum", "relative_error",
    "Format", "FORMATS", "FP32", "FP16", "BF16", "FP8_E4M3", "FP8_E5M2", "get_format",
    "decode", "encode", "format_limits", "bit_fields", "round_to_format",
    "ISA_FLAGS", "HardwareReport", "hardware_report", "dtype_peaks", "dtype_rooflines",
    "explain_dtype_speed", "tf32_ratio", "dtype_name",
    "LayoutTiming", "channels_last_timing",
    "scaler_update", "LossScaler", "MasterWeights", "master_weight_step",
    "grad_scaler_decisions", "loss_scaler_decisions",
]
