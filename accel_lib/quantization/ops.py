"""Quantization of tensors, the pure-function tier: linear (affine and symmetric),
power-of-two, k-means clustered, and reduced-precision casts.

Linear quantization maps a real ``x`` to an integer code ``q`` in ``[q_min, q_max]``:

    q = clamp(round(x / s) + z, q_min, q_max),        x_hat = (q - z) * s

with scale ``s > 0`` and zero point ``z`` (an integer, so that ``x = 0`` is exact).
``round`` is round-half-to-even and ``x / s`` is computed as ``x * (1 / s)`` in float32,
exactly as PyTorch's ``fake_quantize_per_*_affine`` kernels do, so results are bit-exact
with them. Per-channel quantization gives every slice along ``axis`` its own ``s`` and ``z``.

Non-finite input has no code: every function here (and every observer) refuses NaN and
infinities with a ValueError naming ``x``, where torch's fake-quantize would silently map NaN
to the lowest code's value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .._validate import check_int, check_real, check_tensor
from ..precision.errors import cast_error, unit_roundoff  # moved to precision; re-exported

__all__ = [
    "MIN_BITS",
    "MAX_BITS",
    "QParams",
    "check_bits",
    "quant_range",
    "choose_qparams",
    "channel_rows",
    "channel_minmax",
    "qparams_from_tensor",
    "quantize",
    "dequantize",
    "fake_quantize",
    "in_range_mask",
    "quantization_mse",
    "pow2_quantize",
    "kmeans_codebook",
    "cluster_quantize",
    "unit_roundoff",
    "cast_error",
]

MIN_BITS, MAX_BITS = 2, 16
_EPS = torch.finfo(torch.float32).eps  # the smallest scale, as torch.ao's observers use
_MAX_EXPONENT = 127  # 2^127 is float32's largest power of two (2^128 is inf)


def check_bits(bits: int, name: str = "bits") -> int:
    """Return ``bits`` if it is an int in [2, 16]: TypeError for a non-int, else ValueError."""
    return check_int(bits, name, MIN_BITS, MAX_BITS)


def quant_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """Integer range of a ``bits``-wide code: ``[-2^(b-1), 2^(b-1) - 1]`` or ``[0, 2^b - 1]``."""
    check_bits(bits)
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _code_dtype(qmin: int, qmax: int) -> torch.dtype:
    """The smallest integer dtype holding ``[qmin, qmax]`` (so sizes in bytes are honest)."""
    for dtype in (torch.int8, torch.uint8, torch.int16, torch.int32):
        info = torch.iinfo(dtype)
        if info.min <= qmin and qmax <= info.max:
            return dtype
    return torch.int64


@dataclass(frozen=True)
class QParams:
    """Quantization parameters: scale, zero point, integer range and channel axis.

    Shapes: ``scale`` and ``zero_point`` are 0-d (per tensor, ``axis=None``) or 1-d with one
    entry per slice along ``axis`` (per channel).
    """

    scale: torch.Tensor
    zero_point: torch.Tensor
    qmin: int
    qmax: int
    axis: int | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, torch.Tensor) and isinstance(self.zero_point, torch.Tensor)):
            raise TypeError("scale and zero_point must be tensors")
        if self.scale.shape != self.zero_point.shape:
            raise ValueError(f"scale {tuple(self.scale.shape)} and zero_point "
                             f"{tuple(self.zero_point.shape)} must have the same shape")
        if self.axis is None and self.scale.dim() != 0:
            raise ValueError("per-tensor qparams (axis=None) need 0-d scale and zero_point")
        if self.axis is not None and self.scale.dim() != 1:
            raise ValueError(f"per-channel qparams (axis={self.axis}) need 1-d scale/zero_point")
        if not self.qmin < self.qmax:
            raise ValueError(f"qmin must be < qmax, got [{self.qmin}, {self.qmax}]")
        if not bool((self.scale > 0).all()):
            raise ValueError("scale must be > 0 everywhere")

    @property
    def bits(self) -> int:
        return math.ceil(math.log2(self.qmax - self.qmin + 1))

    @property
    def code_dtype(self) -> torch.dtype:
        return _code_dtype(self.qmin, self.qmax)


def _as_f32(value: torch.Tensor | float, name: str) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return t


def choose_qparams(
    min_val: torch.Tensor | float,
    max_val: torch.Tensor | float,
    bits: int = 8,
    *,
    symmetric: bool = False,
    signed: bool | None = None,
    axis: int | None = None,
) -> QParams:
    """Scale and zero point that map ``[min_val, max_val]`` (widened to include 0) onto codes.

    Affine:     ``s = (max' - min') / (q_max - q_min)``,  ``z = q_min - round(min' / s)``
    Symmetric:  ``s = max(|min'|, max') / ((q_max - q_min) / 2)``,  ``z = 0`` (signed)
    with ``min' = min(min_val, 0)``, ``max' = max(max_val, 0)``; ``s`` is at least float32 eps.
    These are ``torch.ao.quantization.MinMaxObserver``'s formulas.

    Args:
        min_val, max_val: range per tensor (scalars) or per channel (1-d, with ``axis``).
        bits: code width, 2 to 16.
        symmetric: centre the range on 0 (``z`` fixed) instead of fitting it exactly.
        signed: signed codes; default ``symmetric`` (int8-like) / unsigned for affine.
        axis: the channel axis the 1-d ranges belong to (``None``: per tensor).

    Shapes: ``min_val``, ``max_val``: () or (C,); the result's scale/zero_point alike.
    """
    signed = symmetric if signed is None else signed
    qmin, qmax = quant_range(bits, signed)
    lo, hi = _as_f32(min_val, "min_val"), _as_f32(max_val, "max_val")
    if lo.shape != hi.shape:
        raise ValueError(f"min_val {tuple(lo.shape)} and max_val {tuple(hi.shape)} differ in shape")
    if (axis is None) != (lo.dim() == 0):
        raise ValueError("pass scalar ranges with axis=None, or 1-d ranges with an int axis; "
                         f"got range shape {tuple(lo.shape)} and axis={axis!r}")
    if bool((lo > hi).any()):
        raise ValueError("min_val must be <= max_val (did the observer see any data?)")
    lo, hi = torch.clamp(lo, max=0.0), torch.clamp(hi, min=0.0)
    eps = torch.tensor(_EPS)
    if symmetric:
        amax = torch.maximum(-lo, hi)
        scale = torch.maximum(amax / (float(qmax - qmin) / 2), eps)
        zp = torch.full_like(scale, 0 if signed else (qmin + qmax + 1) // 2, dtype=torch.int32)
    else:
        scale = torch.maximum((hi - lo) / float(qmax - qmin), eps)
        zp = (qmin - torch.round(lo / scale).to(torch.int32)).clamp(qmin, qmax)
    return QParams(scale, zp.to(torch.int32), qmin, qmax, axis)


def channel_rows(x: torch.Tensor, axis: int | None) -> torch.Tensor:
    """``x`` as rows of values, one row per channel along ``axis`` (one row for ``None``).

    Detached float32; NaN or infinities are a ValueError.
    Shapes: ``x`` any non-empty shape -> (C, N) or (1, numel).
    """
    check_tensor(x, "x", finite=True)
    x = x.detach().to(torch.float32)
    if axis is None:
        return x.reshape(1, -1)
    axis = _norm_axis(axis, x.dim())
    return x.movedim(axis, 0).reshape(x.shape[axis], -1)


def channel_minmax(x: torch.Tensor, axis: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum and maximum of ``x``, per channel along ``axis`` or over all of it.

    Shapes: 0-d each for ``axis=None``, else (C,) with ``C = x.shape[axis]``.
    """
    rows = channel_rows(x, axis)
    lo, hi = rows.amin(dim=1), rows.amax(dim=1)
    return (lo.reshape(()), hi.reshape(())) if axis is None else (lo, hi)


def qparams_from_tensor(
    x: torch.Tensor, bits: int = 8, *, symmetric: bool = False, signed: bool | None = None,
    axis: int | None = None,
) -> QParams:
    """``choose_qparams`` on the min and max of ``x`` (per slice along ``axis`` if given).

    Shapes: ``x`` any shape; per channel, scale has ``x.shape[axis]`` entries.
    """
    lo, hi = channel_minmax(x, axis)
    return choose_qparams(lo, hi, bits, symmetric=symmetric, signed=signed, axis=axis)


def _norm_axis(axis: int, ndim: int) -> int:
    return check_int(axis, "axis", -ndim, ndim - 1) % ndim


def _broadcast(x: torch.Tensor, qp: QParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point shaped to broadcast against ``x`` (float32, on x's device)."""
    scale, zp = qp.scale.to(x.device), qp.zero_point.to(x.device, torch.float32)
    if qp.axis is None:
        return scale, zp
    axis = _norm_axis(qp.axis, x.dim())
    if scale.numel() != x.shape[axis]:
        raise ValueError(f"qparams hold {scale.numel()} channels but x has {x.shape[axis]} "
                         f"along axis {qp.axis}")
    shape = [1] * x.dim()
    shape[axis] = -1
    return scale.reshape(shape), zp.reshape(shape)


def _codes_f32(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """``round(x * (1/s)) + z`` in float32, before clamping (NaN or infinities refused)."""
    check_tensor(x, "x", allow_empty=True, finite=True)
    scale, zp = _broadcast(x, qp)
    return torch.round(x.to(torch.float32) * (1.0 / scale)) + zp


def quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Integer codes ``q = clamp(round(x / s) + z, q_min, q_max)`` in the smallest int dtype.

    Shapes: ``q`` has ``x``'s shape.
    """
    return _codes_f32(x, qp).clamp(qp.qmin, qp.qmax).to(qp.code_dtype)


def dequantize(q: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Real values ``x_hat = (q - z) * s`` (float32). Shapes: as ``q``."""
    scale, zp = _broadcast(q, qp)
    return (q.to(torch.float32) - zp) * scale


def fake_quantize(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """``dequantize(quantize(x))``: what ``x`` becomes after a round trip through the codes.

    Bit-exact with ``torch.fake_quantize_per_tensor_affine`` / ``..._per_channel_affine`` on
    finite input; NaN or infinities raise ValueError (torch maps NaN to the lowest code).
    Shapes: as ``x`` (float32).
    """
    return _round_trip(_codes_f32(x, qp), qp)


def _round_trip(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    """``(clamp(q, q_min, q_max) - z) * s`` for the unclamped codes of :func:`_codes_f32`."""
    scale, zp = _broadcast(codes, qp)
    return (codes.clamp(qp.qmin, qp.qmax) - zp) * scale


def _in_range(codes: torch.Tensor, qp: QParams) -> torch.Tensor:
    return (codes >= qp.qmin) & (codes <= qp.qmax)


def in_range_mask(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """True where ``x`` is not clipped (its unclamped code lies in ``[q_min, q_max]``)."""
    return _in_range(_codes_f32(x, qp), qp)


def quantization_mse(x: torch.Tensor, qp: QParams) -> float:
    """Mean squared error of the round trip. Without clipping it is about ``s^2 / 12``."""
    return float(((fake_quantize(x, qp) - x.float()) ** 2).mean())


def pow2_quantize(x: torch.Tensor, bits: int = 4, *, max_val: float | None = None) -> torch.Tensor:
    """Logarithmic (power-of-two) quantization: ``x_hat = sign(x) 2^clamp(round(log2|x|))``.

    One bit holds the sign; the other ``bits - 1`` encode ``2^(bits-1) - 1`` exponents
    ``e_max - L + 1 .. e_max`` (``e_max = round(log2 max|x|)``) plus one code for zero.
    Values whose rounded exponent falls below the smallest one become 0. Relative error is
    at most ``sqrt(2) - 1`` inside the range; a multiply by ``x_hat`` is a bit shift.
    ``e_max`` is at most 127, so magnitudes above ``2^127.5`` saturate at ``2^127`` (float32's
    largest power of two) instead of becoming infinite.

    Args:
        x: finite values (NaN or infinities raise ValueError).
        bits: code width, 2 to 16.
        max_val: the largest magnitude to represent (> 0); default ``max |x|``.

    Shapes: as ``x`` (float32).
    """
    check_tensor(x, "x", finite=True)
    check_bits(bits)
    if max_val is not None:
        check_real(max_val, "max_val", low=0, low_open=True)
    x = x.to(torch.float32)
    top = float(x.abs().max()) if max_val is None else float(max_val)
    if top == 0:  # all zeros: every value is the zero code
        return torch.zeros_like(x)
    levels = 2 ** (bits - 1) - 1
    e_max = min(round(math.log2(top)), _MAX_EXPONENT)
    e_min = e_max - levels + 1
    exponent = torch.round(torch.log2(x.abs().clamp_min(torch.finfo(torch.float32).tiny)))
    out = torch.sign(x) * torch.exp2(exponent.clamp(e_min, e_max))
    return torch.where((exponent < e_min) | (x == 0), torch.zeros_like(out), out)


def kmeans_codebook(x: torch.Tensor, n_clusters: int, *, iters: int = 50
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """1-d k-means (Lloyd) of the values of ``x``, initialised linearly between min and max.

    Minimises ``sum_i (x_i - c_{a(i)})^2``: assign each value to its nearest centroid, move
    each centroid to the mean of its values, repeat until nothing moves (Deep Compression's
    weight sharing). In 1-d the centroids stay sorted, so assignment is a ``bucketize``
    against their midpoints (no N x K distance matrix). Empty clusters keep their centroid.

    Args:
        x: finite values (NaN or infinities raise ValueError, as scikit-learn's KMeans does).
        n_clusters: the codebook size ``K``.
        iters: at most this many Lloyd iterations (a positive int).

    Returns:
        ``(codebook, labels)``: codebook (K,) float32 sorted; labels int64 with ``x``'s shape.
    """
    check_tensor(x, "x", finite=True)
    check_int(n_clusters, "n_clusters")
    check_int(iters, "iters")
    values = x.detach().reshape(-1).to(torch.float32)
    centroids = torch.linspace(float(values.min()), float(values.max()), n_clusters,
                               device=values.device)
    labels = torch.zeros_like(values, dtype=torch.int64)
    for _ in range(iters):
        labels = torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)
        sums = torch.zeros_like(centroids).index_add_(0, labels, values)
        counts = torch.bincount(labels, minlength=n_clusters).to(torch.float32)
        new = torch.where(counts > 0, sums / counts.clamp_min(1), centroids)
        if torch.equal(new, centroids):
            break
        centroids = new
    labels = torch.bucketize(values, (centroids[1:] + centroids[:-1]) / 2)
    return centroids, labels.reshape(x.shape)


def cluster_quantize(x: torch.Tensor, bits: int = 4, *, iters: int = 50) -> torch.Tensor:
    """Replace every value by its k-means centroid (``2^bits`` clusters). Shapes: as ``x``."""
    check_tensor(x, "x", finite=True)
    check_bits(bits)
    codebook, labels = kmeans_codebook(x, 2**bits, iters=iters)
    return codebook[labels].to(x.dtype)


