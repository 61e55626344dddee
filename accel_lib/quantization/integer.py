"""Real integer inference: int8 weights and activations, int32 accumulation, requantization.

For ``y = x W^T + b`` with activations ``x ~ s_x (q_x - z_x)`` (affine int8) and weights
``W ~ s_w q_w`` (symmetric int8, one ``s_w`` per output channel):

    y_j ~ s_x s_wj [ sum_k q_x,k q_w,jk  -  z_x sum_k q_w,jk  +  round(b_j / (s_x s_wj)) ]

The bracket is pure integer arithmetic: an int8 x int8 -> int32 matrix multiply, a
precomputed correction per output channel (the zero point times the weight row sum) and an
int32 bias. Requantization multiplies the int32 accumulator by ``M = s_x s_w / s_y``; integer
hardware holds ``M`` as a 31-bit fixed-point multiplier and a right shift.
"""

from __future__ import annotations

import torch
from torch import nn

from ..nn_utils import replace_modules_
from .fast import Kernel, auto_int8_backend, build_int8_kernel, check_int8_backend
from .models import quant_wrappers
from .ops import QParams, dequantize, qparams_from_tensor, quantize

__all__ = [
    "int_matmul",
    "quantize_multiplier",
    "requantize",
    "linear_error_bound",
    "IntLinear",
    "IntConv2d",
    "convert_to_int_",
]


def int_matmul(q_x: torch.Tensor, zero_point_x: int, q_w: torch.Tensor,
               w_row_sum: torch.Tensor | None = None) -> torch.Tensor:
    """``(q_x - z_x) @ q_w^T`` in exact int32: ``q_x @ q_w^T - z_x * rowsum(q_w)``.

    Uses PyTorch's int8 GEMM (``torch._int_mm``, int32 accumulation) where the device has
    one for these shapes, and an exact float64 product otherwise (|sums| < 2^53).

    Shapes: ``q_x`` (N, K) int8, ``q_w`` (C, K) int8 -> (N, C) int32.
    """
    if q_x.dtype != torch.int8 or q_w.dtype != torch.int8:
        raise TypeError(f"q_x and q_w must be int8, got {q_x.dtype} and {q_w.dtype}")
    if q_x.dim() != 2 or q_w.dim() != 2 or q_x.shape[1] != q_w.shape[1]:
        raise ValueError(f"need q_x (N, K) and q_w (C, K), got {tuple(q_x.shape)} and "
                         f"{tuple(q_w.shape)}")
    try:
        acc = torch._int_mm(q_x.contiguous(), q_w.t())
    except RuntimeError:  # e.g. CUDA's kernel wants N > 16 and K, C multiples of 8
        acc = (q_x.double() @ q_w.double().t()).to(torch.int32)
    if zero_point_x:
        rows = w_row_sum if w_row_sum is not None else q_w.sum(dim=1, dtype=torch.int32)
        acc = acc - int(zero_point_x) * rows
    return acc


def quantize_multiplier(multiplier: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """Write ``M > 0`` as ``m0 * 2^(-31 - shift)`` with ``m0`` an int in ``[2^30, 2^31]``.

    Returns ``(m0, shift)`` as int64 tensors of ``M``'s shape.
    """
    m = torch.as_tensor(multiplier, dtype=torch.float64)
    if not bool((m > 0).all()) or not bool(torch.isfinite(m).all()):
        raise ValueError("multiplier must be finite and > 0")
    mantissa, exponent = torch.frexp(m)  # m = mantissa * 2^exponent, mantissa in [0.5, 1)
    m0 = torch.round(mantissa * 2.0**31).to(torch.int64)
    return m0, (-exponent).to(torch.int64)


def requantize(acc: torch.Tensor, m0: torch.Tensor, shift: torch.Tensor, zero_point: int,
               qmin: int = -128, qmax: int = 127) -> torch.Tensor:
    """``clamp(round(acc * m0 / 2^(31 + shift)) + z, qmin, qmax)`` in integer arithmetic only.

    Rounds half up (add ``2^(n-1)``, arithmetic shift right by ``n``). Differs from
    ``round(acc * M) + z`` by at most one code (only at ties / last-bit rounding).

    Shapes: ``acc`` (N, C) int32; ``m0``/``shift`` broadcast against it -> (N, C) int32.
    """
    total = 31 + shift.to(torch.int64)
    if bool((total < 1).any()) or bool((total > 62).any()):
        raise ValueError("multiplier out of range: need 2^-31 < M < 2^30")
    prod = acc.to(torch.int64) * m0  # |acc| < 2^31, m0 <= 2^31: fits in int64
    rounded = (prod + (torch.ones_like(total) << (total - 1))) >> total
    return (rounded + int(zero_point)).clamp(qmin, qmax).to(torch.int32)


def linear_error_bound(x: torch.Tensor, weight: torch.Tensor, act_scale: float,
                       weight_scale: torch.Tensor) -> torch.Tensor:
    """Worst-case ``|y_hat - y|`` of a quantized linear layer for inputs inside the range.

    With ``|x_hat - x| <= s_x / 2`` and ``|W_hat - W| <= s_w / 2`` element-wise,
    ``y_hat - y = x E^T + e W^T + e E^T`` gives, per output ``j`` (bias rounding included):

        |y_hat_j - y_j| <= s_wj/2 sum|x_k| + s_x/2 sum|W_jk| + K s_x s_wj / 4 + s_x s_wj / 2

    Shapes: ``x`` (N, K), ``weight`` (C, K), ``weight_scale`` (C,) -> (N, C).
    """
    x, weight = x.double(), weight.double()
    s_w = weight_scale.double().reshape(1, -1)
    k = weight.shape[1]
    return (s_w / 2 * x.abs().sum(dim=1, keepdim=True)
            + act_scale / 2 * weight.abs().sum(dim=1).reshape(1, -1)
            + k * act_scale * s_w / 4 + act_scale * s_w / 2)


_INT32_MAX = 2**31 - 1
_BIAS_LIMIT = 2**30  # |int32 bias| <= 2^30: the other half of the int32 range is the GEMM's


def _bias_safe_weight_qparams(weight: torch.Tensor, bias: torch.Tensor | None,
                              act_qparams: QParams) -> QParams:
    """Symmetric per-channel int8 weight qparams, each scale raised where needed so that
    the int32 bias ``round(b_j / (s_x s_wj))`` stays within ``2^30``.

    Only channels whose bias would not fit change: when calibration saw only zeros (dead
    ReLUs) ``s_x`` is float eps, and ``b_j / (s_x s_wj)`` overflows int32. A coarser ``s_wj``
    costs nothing there (every input code is the zero point, so the weights multiply zeros)
    and keeps the bias exact; for an all-zero (pruned) weight row it costs nothing at all.
    """
    w_qp = qparams_from_tensor(weight, 8, symmetric=True, axis=0)
    if bias is None:
        return w_qp
    b = bias.detach().double().to(w_qp.scale.device)
    if not bool(torch.isfinite(b).all()):
        raise ValueError("bias must be finite for the integer path, got NaN or infinity")
    needed = b.abs() / (act_qparams.scale.double().to(b.device) * _BIAS_LIMIT)  # (C,)
    scale = torch.maximum(w_qp.scale.double(), needed).float()
    if not bool(torch.isfinite(scale).all()):
        raise ValueError("bias is too large for an int32 accumulator at this activation scale")
    return QParams(scale, w_qp.zero_point, w_qp.qmin, w_qp.qmax, w_qp.axis)


class IntLinear(nn.Module):
    """A Linear layer computed in integers: quantize x (int8), int8 GEMM into int32, add an
    int32 bias, then requantize (to int8 codes with ``out_qparams``, or straight to float).

    Build it with :meth:`from_float`. Input and output are float tensors. The int32 bias
    never wraps: a weight scale is raised where ``round(b_j / (s_x s_wj))`` would exceed
    ``2^30`` (a collapsed activation scale after all-zero calibration data).

    Activations may be narrower than 8 bits (``QuantConfig(act_bits=7)``: 7-bit codes never
    saturate an int8 kernel without VNNI, so the fast backends need no split there).

    ``backend`` picks who computes it on the CPU: ``"reference"`` (default) is the
    from-scratch path below; ``"int_mm"``, ``"onednn"`` and ``"fbgemm"`` are the CPU's packed
    int8 GEMMs (:mod:`accel_lib.quantization.fast`), exact, with the same numbers (the float
    output to float rounding, requantized codes within one code); ``"auto"`` takes the
    fastest one measured on this machine (:func:`int8_backend_report`). Other devices
    always run the reference path.

    Shapes: input (..., in_features) -> output (..., out_features).
    """

    backend: str = "reference"  # also what a layer pickled before backends existed runs

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, act_qparams: QParams,
                 out_qparams: QParams | None = None, backend: str = "reference") -> None:
        super().__init__()
        check_int8_backend(backend)
        if act_qparams.axis is not None or act_qparams.qmin < -128 or act_qparams.qmax > 127:
            raise ValueError("act_qparams must be per-tensor signed codes of at most 8 bits "
                             f"(within [-128, 127]), got [{act_qparams.qmin}, "
                             f"{act_qparams.qmax}] axis={act_qparams.axis}")
        if out_qparams is not None and (out_qparams.axis is not None
                                        or (out_qparams.qmin, out_qparams.qmax) != (-128, 127)):
            raise ValueError("out_qparams must be per-tensor signed 8-bit")
        w_qp = _bias_safe_weight_qparams(weight, bias, act_qparams)
        self.act_qparams, self.out_qparams = act_qparams, out_qparams
        self.register_buffer("weight_q", quantize(weight.detach(), w_qp))  # (C, K) int8
        self.register_buffer("weight_scale", w_qp.scale)  # (C,) float32
        self.register_buffer("w_row_sum", self.weight_q.sum(dim=1, dtype=torch.int32))
        acc_scale = act_qparams.scale * w_qp.scale  # (C,): the scale of one accumulator unit
        self.register_buffer("acc_scale", acc_scale)
        b = bias.detach().float() if bias is not None else torch.zeros_like(acc_scale)
        bias_q = torch.round(b / acc_scale).clamp(-_INT32_MAX, _INT32_MAX)  # saturate, never wrap
        self.register_buffer("bias_q", bias_q.to(torch.int32))
        if out_qparams is not None:
            m0, shift = quantize_multiplier(acc_scale.double() / out_qparams.scale.double())
            self.register_buffer("m0", m0)
            self.register_buffer("shift", shift)
        self.backend = backend
        self._kernels: dict[str, tuple[tuple, Kernel]] = {}  # packed weights, per backend

    @classmethod
    def from_float(cls, linear: nn.Module, act_qparams: QParams,
                   out_qparams: QParams | None = None, backend: str = "reference") -> IntLinear:
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"linear must be an nn.Linear, got {type(linear).__name__}")
        return cls(linear.weight, linear.bias, act_qparams, out_qparams, backend)

    def set_backend(self, backend: str) -> IntLinear:
        """Switch the backend (see the class docstring); unchanged if ``backend`` is refused."""
        self.backend = check_int8_backend(backend)
        return self

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state["_kernels"] = {}  # packed weights are rebuilt from the buffers, never pickled
        return state

    def _kernel(self, name: str) -> Kernel:
        """The packed kernel for ``name``, rebuilt whenever a buffer or the qparams changed."""
        stamp = (id(self.act_qparams),) + tuple(  # in-place changes bump _version
            (id(t), t._version) for t in (self.weight_q, self.weight_scale, self.bias_q,
                                          self.acc_scale))
        cached = self._kernels.get(name)
        if cached is None or cached[0] != stamp:
            cached = self._kernels[name] = (stamp, build_int8_kernel(name, self))
        return cached[1]

    def accumulate(self, x: torch.Tensor) -> torch.Tensor:
        """int32 accumulators (bias included) for float input rows. Shapes: (N, K) -> (N, C)."""
        q_x = quantize(x, self.act_qparams)  # int8
        acc = int_matmul(q_x, int(self.act_qparams.zero_point), self.weight_q, self.w_row_sum)
        return acc + self.bias_q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        rows = x.reshape(-1, x.shape[-1])
        if self.backend != "reference" and rows.device.type == "cpu" and rows.shape[0] > 0:
            name = self.backend if self.backend != "auto" else auto_int8_backend(
                rows.shape[0], self.act_qparams.bits)
            if name != "reference":
                y = self._kernel(name)(rows.detach().contiguous())
                if self.out_qparams is not None:  # float rounding: within one code of requantize
                    y = dequantize(quantize(y, self.out_qparams), self.out_qparams)
                return y.reshape(*lead, y.shape[-1])
        acc = self.accumulate(rows)
        if self.out_qparams is None:
            y = acc.float() * self.acc_scale
        else:
            q_y = requantize(acc, self.m0, self.shift, int(self.out_qparams.zero_point))
            y = dequantize(q_y, self.out_qparams)
        return y.reshape(*lead, y.shape[-1])


class IntConv2d(nn.Module):
    """A Conv2d computed in integers as an int8 GEMM over im2col patches (groups = 1).

    Padding is applied to the integer codes with the zero point (the code of 0.0).

    Shapes: input (N, C_in, H, W) -> output (N, C_out, H_out, W_out).
    """

    def __init__(self, conv: nn.Conv2d, act_qparams: QParams) -> None:
        super().__init__()
        if not isinstance(conv, nn.Conv2d):
            raise TypeError(f"conv must be an nn.Conv2d, got {type(conv).__name__}")
        if conv.groups != 1 or isinstance(conv.padding, str) or conv.padding_mode != "zeros":
            raise ValueError("IntConv2d supports groups=1, numeric padding, padding_mode='zeros'")
        self.kernel_size, self.stride = conv.kernel_size, conv.stride
        self.padding, self.dilation = conv.padding, conv.dilation
        self.out_channels = conv.out_channels
        self.linear = IntLinear(conv.weight.reshape(conv.out_channels, -1), conv.bias,
                                act_qparams)

    @classmethod
    def from_float(cls, conv: nn.Module, act_qparams: QParams) -> IntConv2d:
        return cls(conv, act_qparams)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        lin = self.linear
        zp = int(lin.act_qparams.zero_point)
        codes = quantize(x, lin.act_qparams).float()  # small ints: exact in float32
        ph, pw = self.padding
        codes = nn.functional.pad(codes, (pw, pw, ph, ph), value=float(zp))
        cols = nn.functional.unfold(codes, self.kernel_size, dilation=self.dilation,
                                    stride=self.stride)  # (N, C_in*kh*kw, L)
        q_cols = cols.transpose(1, 2).reshape(-1, cols.shape[1]).to(torch.int8)
        acc = int_matmul(q_cols, zp, lin.weight_q, lin.w_row_sum) + lin.bias_q
        y = acc.float() * lin.acc_scale  # (N * L, C_out)
        kh, kw = self.kernel_size
        h_out = (h + 2 * ph - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        w_out = (w + 2 * pw - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return y.reshape(n, h_out, w_out, self.out_channels).permute(0, 3, 1, 2)


def convert_to_int_(model: nn.Module, backend: str = "reference") -> nn.Module:
    """Replace every calibrated :class:`QuantWrapper` (8-bit weights, activations of at most
    8 bits) by an :class:`IntLinear` / :class:`IntConv2d`, in place. Outputs are dequantized
    to float after each layer.

    ``backend`` is the :class:`IntLinear` backend (``"auto"``: the fastest exact int8 GEMM
    measured here); convolutions always run the reference path.

    Raises:
        TypeError, ValueError, RuntimeError: a ``backend`` that is not a name, is unknown, or
            cannot run on this machine (before anything changes).
        ValueError: no wrappers, uncalibrated ones, weights not 8-bit, activations float or
            wider than 8 bits, or a wrapped layer with no integer kernel here (Conv1d,
            grouped or reflect-padded conv). Every integer layer is built before the first
            swap: the model is unchanged when it raises.
    """
    check_int8_backend(backend)
    wrappers = quant_wrappers(model)
    if not wrappers:
        raise ValueError("model is not prepared: run ptq_(model, batches, config) first")
    for w in wrappers:
        if w.config.weight_bits != 8 or w.config.act_bits is None or w.config.act_bits > 8:
            raise ValueError("convert_to_int_ needs weight_bits=8 and act_bits <= 8, got "
                             f"{w.config.weight_bits} and {w.config.act_bits}")
        if w.act_qparams is None:
            raise ValueError("model is not calibrated: run calibrate_ first")
        if not isinstance(w.module, (nn.Linear, nn.Conv2d)):
            raise ValueError(f"no integer kernel for {type(w.module).__name__} (supported: "
                             "Linear, Conv2d)")

    new = {}
    for w in wrappers:  # build every integer layer first: one that cannot be built changes nothing
        if isinstance(w.module, nn.Linear):
            new[id(w)] = IntLinear.from_float(w.module, w.act_qparams, backend=backend)
        else:
            new[id(w)] = IntConv2d.from_float(w.module, w.act_qparams)
    replace_modules_(model, lambda m: new.get(id(m)))
    return model
