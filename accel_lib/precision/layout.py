"""Memory layout: ``channels_last`` (NHWC) vs contiguous (NCHW) convolutions, measured.

NCHW stores each channel's image contiguously; NHWC stores all channels of one pixel
together, which is what vectorised and tensor-core convolution kernels read (a dot product
over channels). oneDNN (CPU) and cuDNN (GPU) often run NHWC faster; the only honest answer
for a given model and machine is a measurement.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from .._validate import check_int, check_module
from ..bench import compare
from ._device import check_device

__all__ = ["LayoutTiming", "channels_last_timing"]


@dataclass(frozen=True)
class LayoutTiming:
    contiguous_ms: float
    channels_last_ms: float
    max_abs_diff: float

    @property
    def speedup(self) -> float:
        """contiguous time / channels_last time (> 1: channels_last is faster)."""
        return self.contiguous_ms / self.channels_last_ms


def channels_last_timing(model: nn.Module, input_shape: tuple[int, ...], *, batch_size: int = 64,
                         device: torch.device | str = "cpu", repeats: int = 20,
                         dtype: torch.dtype = torch.float32) -> LayoutTiming:
    """Time ``model`` (eval, no grad) on a batch in NCHW and, converted, in NHWC; side by side."""
    check_module(model)
    check_int(batch_size, "batch_size")
    check_int(repeats, "repeats")
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    dev = check_device(device)
    base = copy.deepcopy(model).to(dev, dtype).eval()
    nhwc = copy.deepcopy(model).to(dev, dtype).eval().to(memory_format=torch.channels_last)
    x = torch.randn(batch_size, *input_shape, device=dev, dtype=dtype)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        diff = float((base(x) - nhwc(x_cl)).abs().max())
        r = compare(lambda: base(x), lambda: nhwc(x_cl), warmup=3, repeats=repeats,
                    device=dev, verbose=False)
    return LayoutTiming(r.baseline.median_ms, r.optimized.median_ms, diff)
