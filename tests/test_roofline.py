import math

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from accel_lib.roofline import (
    OpPoint,
    Roofline,
    matmul_flops_bytes,
    matmul_intensity,
    measure_bandwidth_gbs,
    measure_op,
    measure_peak_gflops,
    measure_roofline,
    plot_roofline,
    theoretical_peak_gflops,
)


def test_roofline_attainable_and_ridge():
    roof = Roofline(peak_gflops=100.0, bandwidth_gbs=20.0)
    assert roof.ridge == 5.0
    assert roof.attainable_gflops(1.0) == 20.0
    assert roof.attainable_gflops(5.0) == 100.0
    assert roof.attainable_gflops(50.0) == 100.0
    assert roof.bound(1.0) == "memory" and roof.bound(5.0) == "compute"


@pytest.mark.parametrize("kwargs", [{"peak_gflops": 0, "bandwidth_gbs": 1},
                                    {"peak_gflops": 1, "bandwidth_gbs": math.inf}])
def test_roofline_rejects_bad_numbers(kwargs):
    with pytest.raises(ValueError, match="must be a finite number"):
        Roofline(**kwargs)


def test_roofline_rejects_negative_intensity():
    with pytest.raises(ValueError, match="intensity"):
        Roofline(1, 1).attainable_gflops(-1)


def test_matmul_flops_bytes_hand_computed():
    assert matmul_flops_bytes(2, 3, 4) == (2 * 2 * 3 * 4, 4 * (8 + 12 + 6))
    # square fp32 matmul: 2n^3 / (12 n^2) = n / 6
    assert matmul_intensity(600, 600, 600) == pytest.approx(100.0)
    # matrix-vector: about 2 FLOPs per 4-byte weight -> 0.5 FLOP/B
    assert matmul_intensity(1, 4096, 4096) == pytest.approx(0.5, rel=1e-3)
    assert matmul_intensity(64, 64, 64, bytes_per_element=2) == pytest.approx(64 / 3)


def test_matmul_flops_bytes_rejects_bad_sizes():
    with pytest.raises(ValueError, match="k must be a positive int"):
        matmul_flops_bytes(2, 2, 0)


def test_op_point_and_explain():
    p = OpPoint("gemm", flops=2e9, bytes=1e7, latency_ms=20.0)
    assert p.intensity == 200.0 and p.achieved_gflops == pytest.approx(100.0)
    text = p.explain(Roofline(200.0, 20.0))
    assert "compute-bound" in text and "50% of roof" in text


def test_measurements_are_positive_and_plausible():
    # Only sanity bounds (a machine between a phone and a data centre); no speed asserted.
    peak = measure_peak_gflops(n=256, repeats=3)
    bw = measure_bandwidth_gbs(size_mb=16, repeats=3)
    assert 0.1 < peak < 1e6 and 0.1 < bw < 1e5
    roof = measure_roofline(quick=True)
    assert roof.device == "cpu" and roof.ridge > 0


def test_measure_op_places_a_real_op():
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    flops, moved = matmul_flops_bytes(64, 64, 64)
    point = measure_op("mm64", lambda: a @ b, flops, moved, repeats=3)
    assert point.name == "mm64" and point.latency_ms > 0
    with pytest.raises(ValueError, match="flops"):
        measure_op("x", lambda: None, 0, 1)


@pytest.mark.parametrize("call", [lambda: measure_peak_gflops(n=4),
                                  lambda: measure_bandwidth_gbs(size_mb=0)])
def test_measure_rejects_bad_sizes(call):
    with pytest.raises(ValueError):
        call()


def test_theoretical_peak_is_positive_when_known():
    peak = theoretical_peak_gflops()
    assert peak is None or peak > 0


def test_plot_roofline_draws_points():
    ax = plot_roofline(Roofline(100, 20), [OpPoint("a", 1e6, 1e6, 1.0)])
    assert len(ax.lines) == 3  # roof, ridge line, one point
    ax = plot_roofline(Roofline(100, 20), [], cache_bandwidths_gbs={"L2": 80.0})
    assert len(ax.lines) == 3  # roof, ridge line, one cache roof
    assert "L2: 80 GB/s" in [t.get_text() for t in ax.get_legend().get_texts()]
