"""This machine's roof: GEMM throughput and memory bandwidth."""

from __future__ import annotations

import torch

from accel_lib.roofline import measure_bandwidth_gbs, measure_peak_gflops, theoretical_peak_gflops

from .record import Record


def records() -> list[Record]:
    threads = torch.get_num_threads()
    gflops = measure_peak_gflops("cpu", n=2048, repeats=15)
    bandwidth = measure_bandwidth_gbs("cpu", size_mb=512, repeats=15)
    peak = theoretical_peak_gflops()
    out = [
        Record("bench/gemm-fp32-gflops", gflops, "GFLOP/s", peak,
               f"torch.mm 2048^3 fp32, {threads} threads, median of 15; baseline = datasheet peak"),
        Record("bench/memory-bandwidth-gbs", bandwidth, "GB/s", None,
               "copy of a 512 MB buffer (read + write counted), median of 15"),
    ]
    if peak:
        out.append(Record("bench/gemm-fraction-of-peak", gflops / peak, "ratio", 1.0,
                          "measured GEMM / (threads x nominal clock x FLOP/cycle); turbo "
                          "clocks above the nominal one can push it past 1"))
    return out
