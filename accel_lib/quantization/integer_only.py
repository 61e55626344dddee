"""Integer-only inference: int8 codes flow from layer to layer, as on an int8 accelerator.

``convert_to_int_`` computes each layer in integers but hands a float tensor to the next
one. Here nothing between the input and the output is a float: each Linear requantizes its
int32 accumulator straight onto the *next* layer's input grid (TFLite's scheme),

    acc_j = sum_k (q_x,k - z_x) q_w,jk + b_j                       (int32)
    q_y,j = clamp(round(acc_j * M_j) + z_y, -128, 127),   M_j = s_x s_w,j / s_y

with ``M_j`` held as a 31-bit integer ``m0_j`` and a shift (``quantize_multiplier``), so that
``round(acc * M)`` is an integer multiply, an add and a shift (``requantize``). A ReLU after a
layer is ``max(q_y, z_y)`` in codes; on a grid calibrated after a ReLU (range ``[0, beta]``)
``z_y = q_min`` and the clamp already does it. Only the model's input is quantized from float
and only its output codes are dequantized.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from .._validate import check_int, check_module, check_tensor
from ..nn_utils import eval_mode
from .integer import IntLinear, int_matmul, requantize
from .models import QuantWrapper, _inputs, quant_wrappers
from .observers import MinMaxObserver
from .ops import QParams, dequantize, quantize

__all__ = ["quantized_linear", "Int8Sequential"]

# A layer function: (q_x, zero_point_x, q_w, bias_q, m0, shift, zero_point_y) -> int8 codes.
LayerFn = Callable[..., torch.Tensor]
_PASS_THROUGH = (nn.Identity, nn.Dropout)  # no-ops in eval mode


def quantized_linear(q_x: torch.Tensor, zero_point_x: int, q_w: torch.Tensor,
                     bias_q: torch.Tensor, m0: torch.Tensor, shift: torch.Tensor,
                     zero_point_y: int) -> torch.Tensor:
    """One integer-only linear layer: int8 codes in, int8 codes out.

        acc = (q_x - z_x) q_w^T + bias_q                     exact, in int32
        q_y = clamp(floor((acc m0 + 2^(n-1)) / 2^n) + z_y, -128, 127),  n = 31 + shift

    (``round(acc * M) + z_y`` with ``M = m0 / 2^n``, ties rounded up, in integers only.)

    Shapes: ``q_x`` (N, K) int8, ``q_w`` (C, K) int8, ``bias_q`` (C,) int32, ``m0`` and
    ``shift`` (C,) int64 -> (N, C) int8.
    """
    channels = q_w.shape[0] if q_w.dim() == 2 else None
    check_tensor(bias_q, "bias_q")
    if bias_q.dtype != torch.int32 or tuple(bias_q.shape) != (channels,):
        raise ValueError(f"bias_q must be an int32 tensor of shape ({channels},), got "
                         f"{bias_q.dtype} of shape {tuple(bias_q.shape)}")
    for name, t in (("m0", m0), ("shift", shift)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or t.numel() not in (
                1, channels):
            raise ValueError(f"{name} must be an int64 tensor with 1 or {channels} entries "
                             "(see quantize_multiplier)")
    acc = int_matmul(q_x, check_int(zero_point_x, "zero_point_x", -128, 127), q_w) + bias_q
    return requantize(acc, m0, shift, check_int(zero_point_y, "zero_point_y", -128, 127)
                      ).to(torch.int8)


def _same_grid(a: QParams, b: QParams) -> bool:
    return (a.qmin, a.qmax, a.axis) == (b.qmin, b.qmax, b.axis) and bool(
        torch.equal(a.scale, b.scale) and torch.equal(a.zero_point, b.zero_point))


def _leaves(module: nn.Module) -> Iterator[nn.Module]:
    """The modules a chain runs, in registration order (a QuantWrapper counts as one)."""
    children = list(module.children())
    if isinstance(module, QuantWrapper) or not children:
        yield module
        return
    for child in children:
        yield from _leaves(child)


class Int8Sequential(nn.Module):
    """A calibrated chain ``[Flatten] -> (Linear [-> ReLU])+`` run in integers only.

    Build it with :meth:`from_ptq`. ``layers[i]`` is an :class:`IntLinear` whose
    ``out_qparams`` is the next layer's input grid (the last one's: the output grid, from
    the calibration data); it holds ``weight_q``, ``bias_q``, ``m0``, ``shift``.
    :meth:`codes` runs the int8 chain (with any layer function of :func:`quantized_linear`'s
    signature), ``forward`` dequantizes its output codes.

    Shapes: input (N, *) with ``prod(*) = in_features``; output (N, out_features).
    """

    def __init__(self, layers: list[IntLinear], relu: list[bool], flatten: bool) -> None:
        super().__init__()
        if not layers or len(relu) != len(layers):
            raise ValueError("need one relu flag per layer, and at least one layer")
        for a, b in zip(layers[:-1], layers[1:], strict=True):
            if a.out_qparams is None or not _same_grid(a.out_qparams, b.act_qparams):
                raise ValueError("each layer's out_qparams must be the next layer's act_qparams")
        if layers[-1].out_qparams is None:
            raise ValueError("the last layer needs out_qparams (the output grid)")
        self.layers = nn.ModuleList(layers)
        self.relu, self.flatten = list(relu), flatten

    @property
    def input_qparams(self) -> QParams:
        return self.layers[0].act_qparams

    @property
    def output_qparams(self) -> QParams:
        return self.layers[-1].out_qparams

    @classmethod
    def from_ptq(cls, model: nn.Module, batches: Iterable, *, max_batches: int = 8
                 ) -> Int8Sequential:
        """The integer-only twin of a model calibrated by ``ptq_`` (8-bit weights and
        activations), whose forward runs its modules in order: Flatten (first, optional),
        Linear, ReLU, Dropout/Identity. The output grid comes from min-max of the model's
        outputs on ``batches``. ``model`` itself is not changed.

        Raises:
            ValueError: the model is not such a calibrated chain (or runs its modules in
                another order), or ``batches`` is empty.
        """
        check_module(model)
        check_int(max_batches, "max_batches")
        wrappers = quant_wrappers(model)
        if not wrappers or any(w.act_qparams is None for w in wrappers):
            raise ValueError("model must be calibrated first: ptq_(model, batches, QuantConfig())")
        chain = [m for m in _leaves(model) if not isinstance(m, _PASS_THROUGH)]
        flatten = bool(chain) and isinstance(chain[0], nn.Flatten)
        chain = chain[1:] if flatten else chain
        linears, relu = [], []
        for m in chain:
            if isinstance(m, QuantWrapper) and isinstance(m.module, nn.Linear):
                if (m.config.weight_bits, m.config.act_bits) != (8, 8):
                    raise ValueError("integer-only inference needs weight_bits=8 and "
                                     f"act_bits=8, got {m.config.weight_bits} and "
                                     f"{m.config.act_bits}")
                linears.append(m)
                relu.append(False)
            elif isinstance(m, nn.ReLU) and linears and not relu[-1]:
                relu[-1] = True
            else:
                name = type(m.module if isinstance(m, QuantWrapper) else m).__name__
                raise ValueError(f"integer-only chains hold Flatten (first), Linear and one "
                                 f"ReLU after a Linear; got {name} here")
        if not linears:
            raise ValueError("model has no Linear layer")
        observer, seen, first = MinMaxObserver(), 0, None
        with torch.no_grad(), eval_mode(model):
            for batch in batches:
                if seen >= max_batches:
                    break
                x = _inputs(batch)
                observer.update(model(x))
                first = x if first is None else first
                seen += 1
            if seen == 0:
                raise ValueError("batches is empty: the output grid needs calibration data")
            h = first.flatten(1) if flatten else first  # the chain in order == the model?
            for w, r in zip(linears, relu, strict=True):
                h = w(h).relu() if r else w(h)
            if not torch.allclose(h, model(first), rtol=1e-4, atol=1e-5):
                raise ValueError("model's forward is not its Flatten/Linear/ReLU modules in "
                                 "registration order")
        grids = [w.act_qparams for w in linears[1:]] + [observer.qparams(8, signed=True)]
        layers = [IntLinear(w.module.weight, w.module.bias, w.act_qparams, out)
                  for w, out in zip(linears, grids, strict=True)]
        return cls(layers, relu, flatten)

    def codes(self, x: torch.Tensor, layer: LayerFn = quantized_linear) -> torch.Tensor:
        """The output codes: ``x`` quantized on the first grid, then ``layer`` (and a ReLU
        as ``max(q, z_y)``) for every Linear. Shapes: (N, *) -> (N, out_features) int8."""
        check_tensor(x, "x", finite=True)
        q = quantize(x.flatten(1) if self.flatten else x, self.input_qparams)
        for lin, relu in zip(self.layers, self.relu, strict=True):
            z_y = int(lin.out_qparams.zero_point)
            q = layer(q, int(lin.act_qparams.zero_point), lin.weight_q, lin.bias_q, lin.m0,
                      lin.shift, z_y)
            if relu:
                q = torch.clamp(q, min=z_y)
        return q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dequantize(self.codes(x), self.output_qparams)

    def layer_rows(self) -> list[list]:
        """One row per layer for a table: in -> out, s_x, s_y, M = s_x s_w / s_y (min..max),
        shift (min..max), z_x, z_y, ReLU."""
        rows = []
        for lin, relu in zip(self.layers, self.relu, strict=True):
            m = lin.m0.double() * torch.exp2(-31.0 - lin.shift.double())
            c, k = lin.weight_q.shape
            rows.append([f"{k} -> {c}", float(lin.act_qparams.scale),
                         float(lin.out_qparams.scale),
                         f"{m.min().item():.2e} .. {m.max().item():.2e}",
                         f"{int(lin.shift.min())} .. {int(lin.shift.max())}",
                         int(lin.act_qparams.zero_point), int(lin.out_qparams.zero_point), relu])
        return rows
