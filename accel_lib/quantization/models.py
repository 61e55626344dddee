"""Quantizing models, the model-level tier: fake quantization with a straight-through
estimator, post-training quantization (PTQ) with calibration data, quantization-aware
training (QAT), and honest sizes.

Simulated ("fake") quantization keeps float tensors but rounds them onto the integer grid,
so a model sees exactly the values an integer kernel would. Rounding has zero gradient
almost everywhere; the straight-through estimator (STE) passes the gradient through as if
rounding were the identity, and zeroes it where the value was clipped:

    d x_hat / d x = 1 if q_min <= round(x / s) + z <= q_max else 0
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._validate import check_choice, check_int, check_module
from ..nn_utils import eval_mode, layers_of_type, model_device, replace_modules_
from ..train import TrainConfig, train
from .observers import OBSERVERS, Observer, check_percentile, make_observer
from .ops import QParams, _codes_f32, _in_range, _round_trip, check_bits, qparams_from_tensor

__all__ = [
    "FakeQuantizeSTE",
    "fake_quantize_ste",
    "QuantConfig",
    "QuantWrapper",
    "SUPPORTED_MODULES",
    "prepare_",
    "calibrate_",
    "ptq_",
    "qat_",
    "quant_wrappers",
    "dynamic_quantize",
]

SUPPORTED_MODULES = (nn.Linear, nn.Conv1d, nn.Conv2d)


class FakeQuantizeSTE(torch.autograd.Function):
    """``fake_quantize`` forward; straight-through (clipped) gradient backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, qp: QParams) -> torch.Tensor:  # noqa: D102
        codes = _codes_f32(x, qp)  # one rounding pass (and one finite check) for both
        ctx.save_for_backward(_in_range(codes, qp))
        return _round_trip(codes, qp).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # noqa: D102
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def fake_quantize_ste(x: torch.Tensor, qp: QParams) -> torch.Tensor:
    """Fake-quantize ``x`` with the straight-through estimator (gradient 1 in range, 0 clipped).

    Values and gradients equal ``torch.fake_quantize_per_tensor_affine``'s (and per channel).
    Shapes: as ``x``.
    """
    return FakeQuantizeSTE.apply(x, qp)


@dataclass(frozen=True)
class QuantConfig:
    """How to quantize a model's Linear and Conv layers.

    Weights: symmetric signed codes, one scale per output channel (``per_channel``) or per
    tensor, from the weights' min and max. Activations (the input of each layer): affine
    signed codes from an observer run on calibration data; ``act_bits=None`` leaves them
    float (weight-only quantization).
    """

    weight_bits: int = 8
    act_bits: int | None = 8
    per_channel: bool = True
    observer: str = "minmax"
    percentile: float = 99.99

    def __post_init__(self) -> None:
        check_bits(self.weight_bits, "weight_bits")
        if self.act_bits is not None:
            check_bits(self.act_bits, "act_bits")
        check_choice(self.observer, "observer", OBSERVERS)
        check_percentile(self.percentile)

    def make_observer(self) -> Observer:
        kwargs = {"percentile": self.percentile} if self.observer == "percentile" else {}
        return make_observer(self.observer, **kwargs)


class QuantWrapper(nn.Module):
    """A Linear/Conv whose weight and input are fake-quantized (with the STE) in forward.

    States: ``calibrating`` (the input observer watches, the input stays float), then
    frozen (``act_qparams`` set by :func:`calibrate_`; inputs are fake-quantized).
    The weight's qparams follow the current weight, so QAT can train it.

    Shapes: as the wrapped module.
    """

    def __init__(self, module: nn.Module, config: QuantConfig) -> None:
        super().__init__()
        check_module(module, "module")
        if not isinstance(module, SUPPORTED_MODULES):
            names = ", ".join(c.__name__ for c in SUPPORTED_MODULES)
            raise TypeError(f"module must be one of {names}, got {type(module).__name__}")
        self.module = module
        self.config = config
        self.observer = config.make_observer() if config.act_bits is not None else None
        self.act_qparams: QParams | None = None
        self.calibrating = False

    def weight_qparams(self) -> QParams:
        return qparams_from_tensor(self.module.weight, self.config.weight_bits, symmetric=True,
                                   axis=0 if self.config.per_channel else None)

    def quantized_weight(self) -> torch.Tensor:
        return fake_quantize_ste(self.module.weight, self.weight_qparams())

    def freeze(self) -> None:
        """Fix the activation qparams from what the observer saw."""
        if self.observer is not None:
            self.act_qparams = self.observer.qparams(self.config.act_bits, signed=True)
        self.calibrating = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer is not None:
            if self.calibrating:
                self.observer.update(x)
            elif self.act_qparams is None:
                raise RuntimeError("QuantWrapper has no activation qparams: run calibrate_ "
                                   "(or ptq_) with calibration data first")
            else:
                x = fake_quantize_ste(x, self.act_qparams)
        weight = self.quantized_weight()
        if isinstance(self.module, nn.Linear):
            return nn.functional.linear(x, weight, self.module.bias)
        return self.module._conv_forward(x, weight, self.module.bias)

    def extra_repr(self) -> str:
        return (f"weight_bits={self.config.weight_bits}, act_bits={self.config.act_bits}, "
                f"per_channel={self.config.per_channel}")


def quant_wrappers(model: nn.Module) -> list[QuantWrapper]:
    """Every :class:`QuantWrapper` inside ``model``."""
    return list(layers_of_type(model, QuantWrapper).values())


def prepare_(model: nn.Module, config: QuantConfig | None = None) -> nn.Module:
    """Wrap every Linear/Conv1d/Conv2d of ``model`` in a :class:`QuantWrapper`, in place.

    Layers inside a module that computes with their weights without calling them stay
    float (:func:`accel_lib.nn_utils.reads_child_weights`: attention's ``out_proj``, and a
    ``batch_first`` TransformerEncoderLayer's Linears, read by its eval-mode fast path).

    Raises:
        TypeError: ``config`` is not a :class:`QuantConfig`.
        ValueError: the model is already prepared, or has no layer this module can quantize.
    """
    check_module(model)
    config = QuantConfig() if config is None else config
    if not isinstance(config, QuantConfig):
        raise TypeError(f"config must be a QuantConfig, got {type(config).__name__}")
    if quant_wrappers(model):
        raise ValueError("model is already prepared for quantization (it holds QuantWrappers)")

    if isinstance(model, SUPPORTED_MODULES):
        raise ValueError("model must contain layers, not be one: wrap it in nn.Sequential")
    wrapped = replace_modules_(model, lambda m: QuantWrapper(m, config)
                               if isinstance(m, SUPPORTED_MODULES) else None)
    if wrapped == 0:
        names = ", ".join(c.__name__ for c in SUPPORTED_MODULES)
        raise ValueError(f"model has no layer to quantize (supported: {names})")
    return model


def _inputs(batch: Any) -> torch.Tensor:
    return batch[0] if isinstance(batch, (tuple, list)) else batch


@torch.no_grad()
def calibrate_(model: nn.Module, batches: Iterable, *, max_batches: int | None = None
               ) -> nn.Module:
    """Run calibration ``batches`` (tensors or ``(x, y)`` pairs) through a prepared model,
    then freeze every activation range. In place; returns the model.

    Raises:
        ValueError: the model is not prepared, or ``batches`` yields nothing. When anything
            raises (a batch the model refuses, say), every observer and activation range is
            put back as it was.
    """
    wrappers = quant_wrappers(model)
    if not wrappers:
        raise ValueError("model is not prepared: call prepare_(model, config) first")
    if max_batches is not None:
        check_int(max_batches, "max_batches")
    device = model_device(model)
    saved = [(copy.deepcopy(w.observer), w.act_qparams) for w in wrappers]
    seen = 0
    try:
        for w in wrappers:
            w.calibrating = True
        with eval_mode(model):
            for batch in batches:
                if max_batches is not None and seen >= max_batches:
                    break
                model(_inputs(batch).to(device))
                seen += 1
        if seen == 0:
            raise ValueError("calibration data is empty: batches must yield at least one batch")
        for w in wrappers:
            w.freeze()
    except BaseException:
        for w, (observer, act_qparams) in zip(wrappers, saved, strict=True):
            w.observer, w.act_qparams = observer, act_qparams
        raise
    finally:
        for w in wrappers:
            w.calibrating = False
    return model


def ptq_(model: nn.Module, batches: Iterable, config: QuantConfig | None = None, *,
         max_batches: int | None = None) -> nn.Module:
    """Post-training quantization in place: :func:`prepare_` then :func:`calibrate_`.

    When calibration raises, the wrappers are taken out again: the model is unchanged.
    """
    prepare_(model, config)
    try:
        return calibrate_(model, batches, max_batches=max_batches)
    except BaseException:
        replace_modules_(model, lambda m: m.module if isinstance(m, QuantWrapper) else None)
        raise


def qat_(model: nn.Module, train_loader: Iterable, config: QuantConfig | None = None,
         train_config: TrainConfig | None = None, *, val_loader: Iterable | None = None,
         calibration_batches: int = 8) -> nn.Module:
    """Quantization-aware training in place: PTQ (calibrated on ``train_loader``), then
    fine-tune through the fake quantizers with the STE. A model already prepared is
    fine-tuned as it is.
    """
    if not quant_wrappers(model):
        ptq_(model, train_loader, config, max_batches=calibration_batches)
    train(model, train_loader, train_config or TrainConfig(epochs=3, lr=1e-3, progress=False),
          val_loader=val_loader)
    return model


def dynamic_quantize(model: nn.Module) -> nn.Module:
    """PyTorch's fast path: ``torch.ao.quantization.quantize_dynamic`` (int8 Linear weights,
    activations quantized on the fly per batch) on a copy of ``model`` (eval, CPU)."""
    check_module(model)
    if not any(isinstance(m, nn.Linear) for m in model.modules()):
        raise ValueError("model has no nn.Linear: dynamic quantization only converts Linear")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model).cpu().eval(), {nn.Linear},
                                dtype=torch.qint8)
