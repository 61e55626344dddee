"""Rounding error of a cast: the unit roundoff and the measured error of a round trip.

Rounding to nearest in a format with ``p`` significand bits keeps every normal-range value
within a relative error of ``u = 2^-p`` (half the gap ``eps = 2^(1-p)`` above 1). Below the
smallest normal the gaps stop shrinking, so the *absolute* error is bounded instead (half
the smallest subnormal), and beyond the largest finite value the cast overflows.
"""

from __future__ import annotations

import math

import torch

from .._validate import check_real

__all__ = ["unit_roundoff", "cast_error", "relative_error_bound"]

_FLOAT_CASTS = (torch.float16, torch.bfloat16, torch.float32, torch.float64,
                torch.float8_e4m3fn, torch.float8_e5m2)


def unit_roundoff(dtype: torch.dtype) -> float:
    """Largest relative error of rounding to ``dtype`` (normal range): ``eps / 2 = 2^-(p)``.

    fp16 has a 10-bit mantissa (``2^-11 = 4.9e-4``), bf16 a 7-bit one (``2^-8 = 3.9e-3``).
    """
    if dtype not in _FLOAT_CASTS:
        raise ValueError(f"dtype must be one of {_FLOAT_CASTS}, got {dtype!r}")
    return torch.finfo(dtype).eps / 2


def relative_error_bound(x: float, dtype: torch.dtype) -> float:
    """Bound on ``|fl(x) - x| / |x|`` for one value: ``u`` in the normal range, ``inf`` if it
    overflows, ``(smallest subnormal / 2) / |x|`` below the normal range (0 for ``x = 0``)."""
    u = unit_roundoff(dtype)
    x = abs(check_real(x, "x"))
    info = torch.finfo(dtype)
    if x == 0:
        return 0.0
    if x > info.max:
        return math.inf
    if x < info.smallest_normal:
        return max(u, info.smallest_normal * info.eps / 2 / x)
    return u


def cast_error(x: torch.Tensor, dtype: torch.dtype) -> dict[str, float]:
    """Error of the round trip ``x -> dtype -> float32``.

    Returns ``max_abs``, ``max_rel`` and ``mean_rel`` (relative to ``|x|``, over nonzero x)
    and ``overflow`` (the fraction that became inf: fp16 saturates at 65504).
    """
    unit_roundoff(dtype)
    x = x.to(torch.float32)
    back = x.to(dtype).to(torch.float32)
    finite = torch.isfinite(back)
    nonzero = (x != 0) & finite
    rel = (back - x).abs()[nonzero] / x.abs()[nonzero]
    return {
        "max_abs": float((back - x)[finite].abs().max()) if bool(finite.any()) else math.inf,
        "max_rel": float(rel.max()) if rel.numel() else 0.0,
        "mean_rel": float(rel.mean()) if rel.numel() else 0.0,
        "overflow": float((~finite).float().mean()),
    }
