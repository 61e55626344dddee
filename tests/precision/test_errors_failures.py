import math

import pytest
import torch

from accel_lib import precision as PR
from accel_lib import quantization as Q
from accel_lib.quantization import explain as QE


def test_moved_helpers_are_re_exported_by_quantization():
    assert Q.unit_roundoff is PR.unit_roundoff and Q.cast_error is PR.cast_error
    assert QE.speed_word is PR.speed_word and QE.low_precision_story is PR.low_precision_story


def test_unit_roundoff_and_bound():
    assert PR.unit_roundoff(torch.float16) == 2.0**-11
    assert PR.unit_roundoff(torch.bfloat16) == 2.0**-8
    assert PR.unit_roundoff(torch.float8_e4m3fn) == 2.0**-4
    assert PR.relative_error_bound(1.0, torch.float16) == 2.0**-11
    assert PR.relative_error_bound(1e5, torch.float16) == math.inf
    assert PR.relative_error_bound(0.0, torch.float16) == 0.0
    assert PR.relative_error_bound(1e-6, torch.float16) == pytest.approx(2.0**-25 / 1e-6)
    with pytest.raises(ValueError, match="dtype"):
        PR.unit_roundoff(torch.int8)


def test_cast_error_stays_within_the_bound():
    x = torch.randn(10_000) * 100
    for dt in (torch.float16, torch.bfloat16):
        assert PR.cast_error(x, dt)["max_rel"] <= PR.unit_roundoff(dt)


def test_overflow_and_underflow_hand_cases():
    a, b = torch.full((1, 4), 200.0), torch.full((4, 1), 200.0)  # 4 * 40000 = 160000 > 65504
    assert PR.matmul_overflows(a, b, torch.float16) == {"fp32": False, "float16": True}
    assert PR.matmul_overflows(a, b, torch.bfloat16) == {"fp32": False, "bfloat16": False}
    assert PR.overflow_fraction(torch.tensor([1.0, 7e4, -1e5, 3.0])) == 0.5
    g = torch.tensor([1e-8, 1e-7, 1e-3, 0.0])  # 1e-8 < 2^-25: rounds to 0 in fp16
    assert PR.underflow_fraction(g) == pytest.approx(1 / 3)
    assert PR.underflow_fraction(g * 1024) == 0.0  # the loss-scaling fix
    assert PR.underflow_fraction(g, torch.bfloat16) == 0.0


def test_swamping_and_its_fixes():
    ones = torch.ones(5000)
    assert PR.naive_sum(ones) == 2048.0  # 2048 + 1 rounds back to 2048 in fp16
    assert PR.fp32_accumulated_sum(ones) == PR.kahan_sum(ones) == PR.pairwise_sum(ones) == 5000
    x = torch.rand(20_000, generator=torch.Generator().manual_seed(0)) * 0.1
    exact = float(x.to(torch.float16).double().sum())
    naive = PR.relative_error(PR.naive_sum(x), exact)
    assert naive > 0.5
    for fixed in (PR.fp32_accumulated_sum, PR.kahan_sum, PR.pairwise_sum):
        assert PR.relative_error(fixed(x), exact) < 0.01 * naive
    assert PR.relative_error(PR.kahan_sum(x), exact) <= 2 * PR.unit_roundoff(torch.float16)
    assert PR.naive_sum(torch.ones(3), torch.float32) == 3.0
    with pytest.raises(ValueError, match="dtype"):
        PR.naive_sum(ones, torch.bfloat16)
    with pytest.raises(ValueError, match="1-D"):
        PR.naive_sum(torch.ones(2, 2))
