"""Floating-point formats from their bits: decode and encode by hand, with integer arithmetic.

A binary float is ``(-1)^s * 1.m * 2^(e - bias)`` (normal) or ``(-1)^s * 0.m * 2^(1 - bias)``
(subnormal, ``e = 0``). The all-ones exponent is inf/NaN in the IEEE-like formats (fp32,
fp16, bf16, fp8 e5m2). fp8 **e4m3fn** ("finite, NaN") has no inf: its all-ones exponent
holds ordinary numbers up to ``1.110 * 2^8 = 448``, and only ``S.1111.111`` is NaN.

:func:`encode` rounds an fp32 value to nearest, ties to even, the way ``tensor.to(dtype)``
does. Overflow becomes inf in the IEEE-like formats. For e4m3fn the OCP standard allows two
behaviours, both implemented (``overflow=``): ``"saturate"`` (every finite value beyond
448, and +-inf, becomes +-448: what ``torch`` 2.14 casts do, checked by the tests) and
``"nan"`` (values that round beyond 448 become NaN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._validate import check_choice

__all__ = ["Format", "FORMATS", "FP32", "FP16", "BF16", "FP8_E4M3", "FP8_E5M2", "get_format",
           "decode", "encode", "format_limits", "bit_fields", "round_to_format"]


@dataclass(frozen=True)
class Format:
    """A binary floating-point format: field widths, bias and its special values."""

    name: str
    exponent_bits: int
    mantissa_bits: int
    bias: int
    has_inf: bool
    torch_dtype: torch.dtype
    nan: str  # how NaN is encoded, in words

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def precision(self) -> int:
        """Significand bits, the implicit leading 1 included: ``p = mantissa_bits + 1``."""
        return self.mantissa_bits + 1

    @property
    def max_biased_exponent(self) -> int:
        """Largest exponent field of a finite number."""
        top = (1 << self.exponent_bits) - 1
        return top - 1 if self.has_inf else top

    @property
    def max_mantissa(self) -> int:
        """Largest mantissa field at :attr:`max_biased_exponent` (e4m3fn: 0b110, 111 is NaN)."""
        full = (1 << self.mantissa_bits) - 1
        return full if self.has_inf else full - 1


FP32 = Format("fp32", 8, 23, 127, True, torch.float32, "exponent all ones, mantissa != 0")
FP16 = Format("fp16", 5, 10, 15, True, torch.float16, "exponent all ones, mantissa != 0")
BF16 = Format("bf16", 8, 7, 127, True, torch.bfloat16, "exponent all ones, mantissa != 0")
FP8_E4M3 = Format("fp8_e4m3", 4, 3, 7, False, torch.float8_e4m3fn,
                  "S.1111.111 only (no inf): one NaN per sign")
FP8_E5M2 = Format("fp8_e5m2", 5, 2, 15, True, torch.float8_e5m2,
                  "exponent all ones, mantissa != 0")
FORMATS: dict[str, Format] = {f.name: f for f in (FP32, FP16, BF16, FP8_E4M3, FP8_E5M2)}
_ALIASES = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16",
            "float8_e4m3fn": "fp8_e4m3", "e4m3": "fp8_e4m3", "float8_e5m2": "fp8_e5m2",
            "e5m2": "fp8_e5m2"}
_OVERFLOW = ("saturate", "nan")


def get_format(fmt: Format | str | torch.dtype) -> Format:
    """The :class:`Format` for a name (``"bf16"``, ``"float16"``...), a torch dtype or itself."""
    if isinstance(fmt, Format):
        return fmt
    if isinstance(fmt, torch.dtype):
        for f in FORMATS.values():
            if f.torch_dtype == fmt:
                return f
        dtypes = [str(f.torch_dtype) for f in FORMATS.values()]
        raise ValueError(f"fmt must be one of the dtypes {dtypes}, got {fmt}")
    if not isinstance(fmt, str):
        raise TypeError(f"fmt must be a Format, a name or a torch dtype, got {type(fmt).__name__}")
    name = _ALIASES.get(fmt, fmt)
    check_choice(name, "fmt", tuple(FORMATS) + tuple(_ALIASES))
    return FORMATS[name]


def bit_fields(bits: int, fmt: Format | str | torch.dtype) -> tuple[int, int, int]:
    """``(sign, exponent field, mantissa field)`` of one bit pattern (an int)."""
    f = get_format(fmt)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 <= bits < (1 << f.bits):
        raise ValueError(f"bits must be an int in [0, 2^{f.bits}), got {bits!r}")
    return (bits >> (f.bits - 1), (bits >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1),
            bits & ((1 << f.mantissa_bits) - 1))


def decode(bits: int | torch.Tensor, fmt: Format | str | torch.dtype) -> float | torch.Tensor:
    """The value of a bit pattern (an unsigned int, or an integer tensor of them) in ``fmt``.

    Tensors give float64 tensors (every value of these formats is exact in float64).
    """
    f = get_format(fmt)
    scalar = not isinstance(bits, torch.Tensor)
    if scalar:
        bit_fields(bits, f)
        b = torch.tensor([bits], dtype=torch.int64)
    else:
        if bits.dtype.is_floating_point or bits.dtype == torch.bool:
            raise TypeError(f"bits must be an integer tensor, got {bits.dtype}")
        b = bits.to(torch.int64) & ((1 << f.bits) - 1)  # signed views (int16) -> unsigned
    sign = (b >> (f.bits - 1)) & 1
    exp = (b >> f.mantissa_bits) & ((1 << f.exponent_bits) - 1)
    man = b & ((1 << f.mantissa_bits) - 1)
    top = (1 << f.exponent_bits) - 1
    normal = exp > 0
    significand = torch.where(normal, man + (1 << f.mantissa_bits), man)  # implicit 1
    power = torch.where(normal, exp, torch.ones_like(exp)) - f.bias - f.mantissa_bits
    value = torch.ldexp(significand.double(), power.double())
    if f.has_inf:
        value = torch.where((exp == top) & (man == 0), torch.full_like(value, torch.inf), value)
        value = torch.where((exp == top) & (man != 0), torch.full_like(value, torch.nan), value)
    else:
        nan = (exp == top) & (man == (1 << f.mantissa_bits) - 1)
        value = torch.where(nan, torch.full_like(value, torch.nan), value)
    value = torch.where(sign == 1, -value, value)
    return float(value[0]) if scalar else value.reshape(b.shape)


def _bit_length(x: torch.Tensor, width: int) -> torch.Tensor:
    n = torch.zeros_like(x)
    for i in range(width):
        n += (x >> i) > 0
    return n


def encode(x: float | torch.Tensor, fmt: Format | str | torch.dtype, *,
           overflow: str = "saturate") -> int | torch.Tensor:
    """The bit pattern of ``x`` (fp32 values) rounded to ``fmt``: nearest, ties to even.

    Returns an int (for a Python number) or an int64 tensor of unsigned patterns.
    Overflow gives inf where the format has one; e4m3fn follows ``overflow``:
    ``"saturate"`` (torch's behaviour: +-448) or ``"nan"``. NaN stays NaN (the format's
    quiet NaN, sign kept).
    """
    f = get_format(fmt)
    check_choice(overflow, "overflow", _OVERFLOW)
    scalar = not isinstance(x, torch.Tensor)
    if scalar:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"x must be a real number or a tensor, got {type(x).__name__}")
        t = torch.tensor([float(x)], dtype=torch.float32)
    else:
        if not x.dtype.is_floating_point:
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        t = x.detach().to(torch.float32).reshape(-1)
    u = t.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    sign = u >> 31
    e = (u >> 23) & 0xFF
    m = u & 0x7FFFFF
    is_nan = (e == 255) & (m != 0)
    is_inf = (e == 255) & (m == 0)
    # |x| = sig * 2^k exactly, with an integer significand sig < 2^24
    sig = torch.where(e > 0, m | 0x800000, m)
    k = torch.where(e > 0, e, torch.ones_like(e)) - 150
    exponent = k + _bit_length(sig, 24) - 1  # floor(log2 |x|) (for x != 0)
    emin = 1 - f.bias
    q = torch.maximum(exponent, torch.full_like(exponent, emin)) - f.mantissa_bits  # quantum
    r = (q - k).clamp(0, 26)  # bits to drop (never negative: fp32 is the widest here)
    n = sig >> r
    rem = sig & ((1 << r) - 1)
    half = torch.where(r > 0, 1 << (r - 1).clamp(min=0), torch.zeros_like(r))
    up = (r > 0) & ((rem > half) | ((rem == half) & ((n & 1) == 1)))  # round half to even
    n = n + up.long()
    q = torch.where(q - k < 0, k, q)  # (fp32 to fp32: exact)
    carry = n >= (1 << (f.mantissa_bits + 1))
    n = torch.where(carry, n >> 1, n)
    q = q + carry.long()
    normal = n >= (1 << f.mantissa_bits)
    biased = torch.where(normal, q + f.mantissa_bits + f.bias, torch.zeros_like(q))
    mant = torch.where(normal, n - (1 << f.mantissa_bits), n)
    too_big = (biased > f.max_biased_exponent) | (
        (biased == f.max_biased_exponent) & (mant > f.max_mantissa))
    mbits, ebits = f.mantissa_bits, f.exponent_bits
    top = (1 << ebits) - 1
    max_finite = (f.max_biased_exponent << mbits) | f.max_mantissa
    if f.has_inf:
        inf_bits, nan_bits = top << mbits, (top << mbits) | (1 << (mbits - 1))
        mag = torch.where(too_big | is_inf, torch.full_like(n, inf_bits), (biased << mbits) | mant)
    else:
        nan_bits = (top << mbits) | ((1 << mbits) - 1)
        if overflow == "saturate":
            mag = torch.where(too_big | is_inf, torch.full_like(n, max_finite),
                              (biased << mbits) | mant)
        else:
            mag = torch.where(too_big | is_inf, torch.full_like(n, nan_bits),
                              (biased << mbits) | mant)
    mag = torch.where(is_nan, torch.full_like(mag, nan_bits), mag)
    out = (sign << (f.bits - 1)) | mag
    return int(out[0]) if scalar else out.reshape(x.shape)


def round_to_format(x: torch.Tensor, fmt: Format | str | torch.dtype, *,
                    overflow: str = "saturate") -> torch.Tensor:
    """``x`` rounded to ``fmt`` and back to float64 (the value the cast keeps)."""
    f = get_format(fmt)
    return decode(encode(x, f, overflow=overflow), f)


def format_limits(fmt: Format | str | torch.dtype) -> dict[str, float]:
    """Range and precision of ``fmt``, from its fields alone.

    ``max`` (largest finite), ``tiny`` (smallest normal, ``2^(1-bias)``), ``smallest_subnormal``
    (``2^(1-bias-m)``), ``eps`` (gap above 1, ``2^-m``) and ``unit_roundoff`` (largest relative
    error of rounding in the normal range, ``2^-p = eps/2`` with ``p = m + 1``).
    """
    f = get_format(fmt)
    m = f.mantissa_bits
    top_significand = (1 << m) + f.max_mantissa
    return {
        "max": float(top_significand * 2.0 ** (f.max_biased_exponent - f.bias - m)),
        "tiny": 2.0 ** (1 - f.bias),
        "smallest_subnormal": 2.0 ** (1 - f.bias - m),
        "eps": 2.0 ** -m,
        "unit_roundoff": 2.0 ** -(m + 1),
    }
