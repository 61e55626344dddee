"""Quantization figures: int8 speed and size (PyTorch's dynamic int8 path and accel_lib's own
IntLinear vs fp32), accuracy change of PTQ and QAT on the digits MLP, and the error of
accel_lib's own int8 Linear."""

from __future__ import annotations

import copy
import warnings

import torch

from accel_lib import compare, set_seed
from accel_lib.data import digits_loaders
from accel_lib.models import MLP
from accel_lib.quantization import (
    IntLinear,
    QuantConfig,
    convert_to_int_,
    dynamic_quantize,
    int8_backend_report,
    ptq_,
    qat_,
    qparams_from_tensor,
    serialized_size_bytes,
)
from accel_lib.train import TrainConfig, evaluate, train

from .record import Record


def _speed_and_size() -> list[Record]:
    model = MLP(784, (1024, 1024), 10).eval()
    int8 = dynamic_quantize(model)
    out = []
    threads = torch.get_num_threads()
    with torch.no_grad():
        for bs in (1, 64):
            x = torch.randn(bs, 784)
            c = compare(lambda x=x: model(x), lambda x=x: int8(x), names=("fp32", "dynamic int8"),
                        repeats=30, warmup=25, verbose=False)
            out.append(Record(
                f"quantization/int8-dynamic-speedup-bs{bs}", c.speedup, "x", 1.0,
                f"MLP 784-1024-1024-10, torch.ao quantize_dynamic (qint8, engine "
                f"{torch.backends.quantized.engine}) vs fp32, batch {bs}, {threads} threads, "
                f"interleaved medians {c.baseline.median_ms:.3f} / {c.optimized.median_ms:.3f} ms"))
    fp32_bytes, int8_bytes = serialized_size_bytes(model), serialized_size_bytes(int8)
    out.append(Record("quantization/int8-size-ratio", fp32_bytes / int8_bytes, "x", 4.0,
                      f"torch.save(state_dict) bytes {fp32_bytes:,} fp32 / {int8_bytes:,} "
                      "dynamic int8 (fp32 biases and qparams kept); baseline = ideal 4x"))
    return out


def _own_int8_speed() -> list[Record]:
    """accel_lib's IntLinear on the same MLP, each variant against fp32 side by side: the
    auto-selected fast backend, the from-scratch reference, and (bs 64) 7-bit activations,
    which never saturate an int8 kernel without VNNI (torch.ao's ``reduce_range``)."""
    set_seed(0)
    model = MLP(784, (1024, 1024), 10).eval()
    calibration = [torch.randn(64, 784)]

    def converted(act_bits: int, backend: str) -> torch.nn.Module:
        fake = ptq_(copy.deepcopy(model), calibration, QuantConfig(act_bits=act_bits))
        return convert_to_int_(fake, backend=backend)

    def chosen(act_bits: int, bs: int) -> str:
        report = int8_backend_report(act_bits)
        name = report.choice(bs)
        split = name != "reference" and report.candidate(name).split
        return f"auto-selected backend {name!r}" + (
            " (weights split in two halves: the plain int8 kernel saturates here)"
            if split else "")

    runs = [("own-int8-linear", 8, "auto", 1, 1.5), ("own-int8-linear", 8, "auto", 64, 1.5),
            ("own-int8-reference", 8, "reference", 1, 1.0),
            ("own-int8-reference", 8, "reference", 64, 1.0),
            ("own-int8-7bit-act", 7, "auto", 64, 1.5)]
    out = []
    threads = torch.get_num_threads()
    with torch.no_grad():
        for name, act_bits, backend, bs, baseline in runs:
            int8 = converted(act_bits, backend)
            x = torch.randn(bs, 784)
            how = chosen(act_bits, bs) if backend == "auto" else "from-scratch reference path"
            c = compare(lambda x=x: model(x), lambda x=x, m=int8: m(x), names=("fp32", name),
                        repeats=30, warmup=10, verbose=False)
            out.append(Record(
                f"quantization/{name}-speedup-bs{bs}", c.speedup, "x", baseline,
                f"MLP 784-1024-1024-10, accel_lib IntLinear ({act_bits}-bit activations), "
                f"{how}, vs fp32, batch {bs}, {threads} threads, CPU capability "
                f"{torch.backends.cpu.get_cpu_capability()}, interleaved medians "
                f"{c.baseline.median_ms:.3f} / {c.optimized.median_ms:.3f} ms"
                + ("; baseline = goal 1.5x (torch.ao dynamic int8 reaches it on AVX2)"
                   if baseline == 1.5 else "")))
    return out


def _accuracy() -> list[Record]:
    set_seed(0)
    data = digits_loaders(64)
    model = MLP()
    train(model, data.train, TrainConfig(epochs=8, lr=1e-2, progress=False, device="cpu"))
    base = evaluate(model, data.test)

    def drop_pts(quantized: torch.nn.Module) -> float:
        return 100 * (base - evaluate(quantized, data.test))

    ptq8 = ptq_(copy.deepcopy(model), data.train, QuantConfig(), max_batches=8)
    ptq4 = ptq_(copy.deepcopy(model), data.train, QuantConfig(weight_bits=4, act_bits=4),
                max_batches=8)
    set_seed(0)
    qat4 = qat_(copy.deepcopy(model), data.train, QuantConfig(weight_bits=4, act_bits=4),
                TrainConfig(epochs=3, lr=1e-3, progress=False, device="cpu"))
    note = (f"digits MLP 64-128-64-10, fp32 test accuracy {100 * base:.1f}% on 270 images "
            "(1 image = 0.37 pts); weights symmetric per channel, activations affine, "
            "min-max calibration on 8 batches")
    return [
        Record("quantization/ptq-int8-accuracy-drop-pts", drop_pts(ptq8), "pts", 0.5,
               note + "; baseline = target <= 0.5"),
        Record("quantization/ptq-4bit-per-channel-accuracy-drop-pts", drop_pts(ptq4), "pts",
               None, note + "; 4-bit weights and activations"),
        Record("quantization/qat-4bit-accuracy-drop-pts", drop_pts(qat4), "pts",
               drop_pts(ptq4), note + "; 3 epochs of QAT (STE) after 4-bit PTQ; "
               "baseline = the 4-bit PTQ drop"),
    ]


def _own_int8_error() -> list[Record]:
    set_seed(0)
    lin = torch.nn.Linear(1024, 1024)
    x = torch.randn(64, 1024)
    int_lin = IntLinear.from_float(lin, qparams_from_tensor(x, 8, signed=True))
    with torch.no_grad():
        ref, got = lin(x), int_lin(x)
    rel = float((got - ref).abs().max() / ref.abs().max())
    return [Record("quantization/own-int8-linear-max-rel-error", rel, "ratio", None,
                   "accel_lib IntLinear (int8 x int8 -> int32 via torch._int_mm, per-channel "
                   "weights, affine activations) vs fp32 Linear 1024x1024, batch 64; "
                   "max |error| / max |y|")]


def records() -> list[Record]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _speed_and_size() + _own_int8_speed() + _accuracy() + _own_int8_error()
