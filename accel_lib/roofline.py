"""The roofline of *this* machine: measured peak FLOP/s and memory bandwidth, and where an
op or a model sits under them.

Attainable performance at arithmetic intensity ``I`` (FLOPs per byte moved) is

    P(I) = min(P_peak, I x B)

with ``P_peak`` the peak FLOP/s and ``B`` the memory bandwidth. Below the ridge point
``I* = P_peak / B`` an op is memory-bound (faster arithmetic does not help, moving fewer
bytes does); above it, compute-bound.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._validate import check_int, check_real
from .bench import time_fn

__all__ = [
    "Roofline",
    "OpPoint",
    "matmul_flops_bytes",
    "matmul_intensity",
    "measure_peak_gflops",
    "measure_bandwidth_gbs",
    "measure_roofline",
    "measure_op",
    "theoretical_peak_gflops",
    "plot_roofline",
]


@dataclass(frozen=True)
class Roofline:
    """A machine's roof: peak compute (GFLOP/s) and memory bandwidth (GB/s)."""

    peak_gflops: float
    bandwidth_gbs: float
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("peak_gflops", "bandwidth_gbs"):
            check_real(getattr(self, name), name, low=0, low_open=True)

    @property
    def ridge(self) -> float:
        """Ridge point ``I* = P_peak / B`` in FLOP/byte."""
        return self.peak_gflops / self.bandwidth_gbs

    def attainable_gflops(self, intensity: float) -> float:
        """``min(P_peak, I x B)``: the best any op of this intensity can do here."""
        if not intensity >= 0:
            raise ValueError(f"intensity must be >= 0 FLOP/byte, got {intensity!r}")
        return min(self.peak_gflops, intensity * self.bandwidth_gbs)

    def bound(self, intensity: float) -> str:
        """``"memory"`` below the ridge point, ``"compute"`` at or above it."""
        return "memory" if self.attainable_gflops(intensity) < self.peak_gflops else "compute"


@dataclass(frozen=True)
class OpPoint:
    """One measured op on the roofline."""

    name: str
    flops: float
    bytes: float
    latency_ms: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def achieved_gflops(self) -> float:
        return self.flops / (self.latency_ms * 1e-3) / 1e9

    def explain(self, roofline: Roofline) -> str:
        """One sentence saying where the op sits and how close it gets to its roof."""
        roof = roofline.attainable_gflops(self.intensity)
        return (f"{self.name}: {self.intensity:.2f} FLOP/B vs ridge {roofline.ridge:.1f} -> "
                f"{roofline.bound(self.intensity)}-bound; roof {roof:.1f} GFLOP/s, achieved "
                f"{self.achieved_gflops:.1f} ({100 * self.achieved_gflops / roof:.0f}% of roof)")


def matmul_flops_bytes(m: int, n: int, k: int, bytes_per_element: int = 4) -> tuple[int, int]:
    """FLOPs and minimum bytes of ``(m, k) @ (k, n)``: ``2mnk`` and ``b(mk + kn + mn)``.

    The byte count assumes each operand is read once and the result written once (perfect
    cache reuse): the least traffic any implementation can have.
    """
    for name, v in (("m", m), ("n", n), ("k", k), ("bytes_per_element", bytes_per_element)):
        check_int(v, name)
    return 2 * m * n * k, bytes_per_element * (m * k + k * n + m * n)


def matmul_intensity(m: int, n: int, k: int, bytes_per_element: int = 4) -> float:
    """Arithmetic intensity of ``(m, k) @ (k, n)``: ``2mnk / (b (mk + kn + mn))`` FLOP/byte.

    For square ``n x n`` fp32 matrices this is ``n / 6``: it grows with size, which is why
    big matmuls are compute-bound and matrix-vector products (``n = 1``) are memory-bound.
    """
    flops, moved = matmul_flops_bytes(m, n, k, bytes_per_element)
    return flops / moved


def measure_peak_gflops(
    device: torch.device | str = "cpu", *, n: int = 1024, dtype: torch.dtype = torch.float32,
    repeats: int = 10,
) -> float:
    """Achieved GFLOP/s of an ``n x n x n`` matmul: the practical compute roof."""
    check_int(n, "n", minimum=16)
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    t = time_fn(lambda: torch.mm(a, b, out=out), warmup=2, repeats=repeats, device=device)
    return 2 * n**3 / (t.median_ms * 1e-3) / 1e9


def measure_bandwidth_gbs(
    device: torch.device | str = "cpu", *, size_mb: int = 128, repeats: int = 10,
) -> float:
    """Achieved GB/s of copying a buffer much larger than the caches (read + write counted)."""
    check_int(size_mb, "size_mb")
    device = torch.device(device)
    numel = size_mb * 2**20 // 4
    src = torch.ones(numel, device=device)
    dst = torch.empty_like(src)
    t = time_fn(lambda: dst.copy_(src), warmup=2, repeats=repeats, device=device)
    return 2 * numel * 4 / (t.median_ms * 1e-3) / 1e9


def measure_roofline(device: torch.device | str = "cpu", *, quick: bool = True) -> Roofline:
    """Measure this device's roof (``quick``: ~1 s on a laptop CPU; else larger, steadier runs).

    The bandwidth buffer (128 MB, or 512 MB) is chosen larger than the last-level cache of
    most machines, so it measures main memory; smaller working sets run faster (caches).
    """
    device = torch.device(device)
    n, size_mb = (1024, 128) if quick else (2048, 512)
    if device.type != "cpu":
        n, size_mb = 4096, 1024
    peak = measure_peak_gflops(device, n=n)
    return Roofline(peak, measure_bandwidth_gbs(device, size_mb=size_mb), str(device))


def measure_op(
    name: str, fn: Callable[[], Any], flops: float, bytes_moved: float, *,
    device: torch.device | str = "cpu", repeats: int = 20,
) -> OpPoint:
    """Time ``fn`` and place it on the roofline with its (counted) FLOPs and bytes."""
    if not flops > 0 or not bytes_moved > 0:
        raise ValueError(f"flops and bytes_moved must be > 0, got {flops!r}, {bytes_moved!r}")
    t = time_fn(fn, repeats=repeats, device=device, name=name)
    return OpPoint(name, float(flops), float(bytes_moved), t.median_ms)


def _cpu_info() -> tuple[set[str], float | None, int]:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags_match = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    flags = set(flags_match.group(1).split()) if flags_match else set()
    max_mhz = None
    max_file = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    if max_file.exists():
        max_mhz = int(max_file.read_text()) / 1e3
    else:
        mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)$", text, re.M)]
        max_mhz = max(mhz) if mhz else None
    return flags, max_mhz, torch.get_num_threads()


def theoretical_peak_gflops() -> float | None:
    """Datasheet-style fp32 peak of the CPU threads torch uses: cores x GHz x FLOP/cycle.

    FLOP/cycle per core assumes two FMA units of the widest vector width the CPU reports
    (AVX-512: 2 x 16 x 2 = 64, AVX2+FMA: 2 x 8 x 2 = 32, SSE: 8). ``None`` if unknown.
    """
    flags, mhz, threads = _cpu_info()
    if mhz is None or not flags:
        return None
    if "avx512f" in flags:
        per_cycle = 64
    elif "avx2" in flags and "fma" in flags:
        per_cycle = 32
    else:
        per_cycle = 8
    return threads * mhz / 1e3 * per_cycle


def plot_roofline(
    roofline: Roofline,
    points: Sequence[OpPoint] = (),
    ax: Any = None,
    *,
    cache_bandwidths_gbs: Mapping[str, float] | None = None,
) -> Any:
    """Draw the roof (log-log) and each measured op at (intensity, achieved GFLOP/s).

    ``cache_bandwidths_gbs`` adds dashed roofs for faster levels of the memory hierarchy
    (e.g. ``{"16 MB (cache)": 55.0}``): an op whose data fits there can rise above the
    main-memory roof.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    lo = min([roofline.ridge / 100] + [p.intensity / 2 for p in points])
    hi = max([roofline.ridge * 100] + [p.intensity * 2 for p in points])
    xs = np.logspace(math.log10(lo), math.log10(hi), 200)
    ax.loglog(xs, [roofline.attainable_gflops(x) for x in xs], "k-", lw=2,
              label=f"roof ({roofline.device}): {roofline.peak_gflops:.0f} GFLOP/s, "
                    f"{roofline.bandwidth_gbs:.0f} GB/s")
    ax.axvline(roofline.ridge, color="grey", ls=":", lw=1)
    for label, gbs in (cache_bandwidths_gbs or {}).items():
        ax.loglog(xs, [min(roofline.peak_gflops, x * gbs) for x in xs], "--", lw=1,
                  label=f"{label}: {gbs:.0f} GB/s")
    for p in points:
        ax.loglog(p.intensity, p.achieved_gflops, "o")
        ax.annotate(p.name, (p.intensity, p.achieved_gflops), textcoords="offset points",
                    xytext=(5, 5), fontsize=8)
    ax.set_xlabel("arithmetic intensity (FLOP / byte)")
    ax.set_ylabel("performance (GFLOP/s)")
    ax.set_title(f"Roofline, ridge at {roofline.ridge:.1f} FLOP/byte")
    ax.legend(loc="lower right", fontsize=8)
    return ax
