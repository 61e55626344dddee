"""What this machine does with each dtype: its ISA, its measured per-dtype peaks, and why.

A CPU runs bf16 fast only if it has bf16 arithmetic (AVX-512 BF16 ``vdpbf16ps``, or AMX
tiles) *and* the library (oneDNN) has a kernel that uses it; without it every bf16 value is
converted to fp32 and the matmul may even fall to a generic, untuned loop (~100x slower than
fp32 on AVX2-only chips). A GPU runs fp16/bf16 on tensor cores (fp16 since Volta, sm_70;
bf16 and TF32 since Ampere, sm_80). Nothing here is assumed: the flags are read, the peaks
measured, and :func:`explain_dtype_speed` words the measured ratio with the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._validate import check_int
from ..bench import time_fn
from ..roofline import Roofline
from ..runtime import BF16_FLAGS, INT8_DOT_FLAGS, cpu_features, cpu_model
from ._device import MATMUL_DTYPES, check_device, check_dtype
from .explain import low_precision_story, speed_word

__all__ = ["ISA_FLAGS", "HardwareReport", "hardware_report", "dtype_peaks", "dtype_rooflines",
           "explain_dtype_speed", "tf32_ratio", "dtype_name"]

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
             "amx_int8", "avx512_vnni", "avx_vnni")


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


@dataclass(frozen=True)
class HardwareReport:
    """The CPU (model, PyTorch's capability, ISA flags) and the GPU (name, sm) if any."""

    cpu_model: str
    cpu_capability: str
    flags: tuple[str, ...] | None  # the ISA_FLAGS present; None where unknown
    threads: int
    gpu_name: str | None = None
    gpu_capability: tuple[int, int] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def has_bf16(self) -> bool | None:
        return None if self.flags is None else any(f in self.flags for f in BF16_FLAGS)

    def rows(self) -> list[list[str]]:
        """``[[item, value], ...]`` for a table."""
        flags = "unknown" if self.flags is None else (", ".join(self.flags) or "none of them")
        rows = [["CPU", self.cpu_model], ["torch CPU capability", self.cpu_capability],
                ["ISA flags (of " + ", ".join(ISA_FLAGS) + ")", flags],
                ["torch threads", str(self.threads)]]
        if self.gpu_name:
            rows.append(["GPU", f"{self.gpu_name} (sm_{self.gpu_capability[0]}"
                                f"{self.gpu_capability[1]})"])
        return rows


def hardware_report(cpuinfo: str | Path = "/proc/cpuinfo") -> HardwareReport:
    """Read this machine: ``torch.backends.cpu.get_cpu_capability()``, /proc/cpuinfo's flags
    (via :func:`accel_lib.runtime.cpu_features`), and CUDA's device name and capability."""
    features = cpu_features(cpuinfo)
    flags = None if features is None else tuple(f for f in ISA_FLAGS if f in features)
    gpu = cap = None
    if torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(0)
        cap = tuple(torch.cuda.get_device_capability(0))
    return HardwareReport(cpu_model(cpuinfo), torch.backends.cpu.get_cpu_capability(), flags,
                          torch.get_num_threads(), gpu, cap)


def _matmul_fn(dtype: torch.dtype, n: int, device: torch.device):
    gen = torch.Generator(device="cpu").manual_seed(0)
    if dtype == torch.int8:
        a = torch.randint(-128, 128, (n, n), generator=gen, dtype=torch.int8).to(device)
        b = torch.randint(-128, 128, (n, n), generator=gen, dtype=torch.int8).to(device)
        torch._int_mm(a, b)  # raises where int8 matmul is not available
        return lambda: torch._int_mm(a, b)
    a = torch.randn(n, n, generator=gen).to(device, dtype)
    b = torch.randn(n, n, generator=gen).to(device, dtype)
    return lambda: a @ b


def dtype_peaks(device: torch.device | str = "cpu", *, n: int = 512,
                dtypes: tuple[torch.dtype, ...] = MATMUL_DTYPES, repeats: int = 5,
                ) -> dict[str, float | None]:
    """Achieved GFLOP/s (GOP/s for int8, ``torch._int_mm``) of an ``n^3`` matmul per dtype:
    the per-dtype compute roof. ``None`` where the dtype's matmul is not available."""
    dev = check_device(device)
    check_int(n, "n", minimum=16)
    check_int(repeats, "repeats")
    out: dict[str, float | None] = {}
    for dt in dtypes:
        check_dtype(dt, MATMUL_DTYPES)
        try:
            fn = _matmul_fn(dt, n, dev)
        except RuntimeError:
            out[dtype_name(dt)] = None
            continue
        t = time_fn(fn, warmup=1, repeats=repeats, device=dev, min_sample_ms=0.0, number=1)
        out[dtype_name(dt)] = 2 * n**3 / (t.median_ms * 1e-3) / 1e9
    return out


def dtype_rooflines(peaks: dict[str, float | None], bandwidth_gbs: float,
                    device: str = "cpu") -> dict[str, Roofline]:
    """One :class:`~accel_lib.roofline.Roofline` per measured dtype: same memory roof, its own
    compute roof (a 16-bit value also halves the bytes, moving ops right: intensity doubles)."""
    return {k: Roofline(v, bandwidth_gbs, f"{device} {k}") for k, v in peaks.items() if v}


def explain_dtype_speed(dtype: str, ratio: float, report: HardwareReport,
                        device: str = "cpu") -> str:
    """Why a ``dtype`` matmul ran ``ratio`` times fp32's speed here, from ``report``'s flags."""
    features = None if report.flags is None else frozenset(report.flags)
    head = (f"Measured on {report.cpu_model} (torch CPU capability {report.cpu_capability}). "
            if device == "cpu" else f"Measured on {report.gpu_name}. ")
    if dtype in ("float16", "bfloat16"):
        return head + low_precision_story(dtype, device, ratio, features, report.gpu_name)
    if dtype == "int8":
        have = None if features is None else [f for f in INT8_DOT_FLAGS if f in features]
        text = (f"int8 matmul (torch._int_mm): {ratio:.2f}x the speed of fp32, "
                f"{speed_word(ratio)} fp32.")
        if have:
            return head + text + (f" This CPU has int8 dot products ({', '.join(have)}): four "
                                  "int8 multiply-adds per 32-bit lane.")
        return head + text + " This CPU lists no int8 dot-product instructions (VNNI, AMX)."
    raise ValueError(f"dtype must be 'float16', 'bfloat16' or 'int8', got {dtype!r}")


def tf32_ratio(n: int = 4096, repeats: int = 10) -> float:
    """CUDA only: fp32 matmul time with TF32 off / with TF32 on (> 1: TF32 faster)."""
    check_device("cuda")
    check_int(n, "n", minimum=16)
    fn = _matmul_fn(torch.float32, n, torch.device("cuda"))
    old = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        off = time_fn(fn, repeats=repeats, device="cuda").median_ms
        torch.backends.cuda.matmul.allow_tf32 = True
        on = time_fn(fn, repeats=repeats, device="cuda").median_ms
    finally:
        torch.backends.cuda.matmul.allow_tf32 = old
    return off / on


