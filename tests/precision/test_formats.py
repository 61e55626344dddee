import math

import pytest
import torch

from accel_lib import precision as PR

SMALL = [PR.FP16, PR.BF16, PR.FP8_E4M3, PR.FP8_E5M2]


def _torch_bits(values: torch.Tensor, fmt: PR.Format) -> torch.Tensor:
    view = {8: torch.uint8, 16: torch.int16, 32: torch.int32}[fmt.bits]
    return values.to(fmt.torch_dtype).view(view).to(torch.int64) & ((1 << fmt.bits) - 1)


def _every_pattern(fmt: PR.Format) -> tuple[torch.Tensor, torch.Tensor]:
    n = 1 << fmt.bits
    b = torch.arange(n)
    signed = b if fmt.bits == 8 else torch.where(b >= n // 2, b - n, b)
    view = torch.uint8 if fmt.bits == 8 else torch.int16
    return b, signed.to(view).view(fmt.torch_dtype)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(((a == b) | (a.isnan() & b.isnan())).all())


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_decode_equals_torch_on_every_bit_pattern(fmt):
    bits, values = _every_pattern(fmt)
    assert _same(PR.decode(bits, fmt), values.double())


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_encode_inverts_decode_on_every_pattern(fmt):
    bits, values = _every_pattern(fmt)
    enc = PR.encode(values.float(), fmt)
    finite_or_inf = ~values.float().isnan()
    assert torch.equal(enc[finite_or_inf], bits[finite_or_inf])
    assert PR.decode(enc[~finite_or_inf], fmt).isnan().all()


@pytest.mark.parametrize("fmt", SMALL + [PR.FP32], ids=lambda f: f.name)
def test_encode_equals_torch_cast_on_random_fp32(fmt):
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(100_000, generator=g) * torch.exp(torch.randn(100_000, generator=g) * 10))
    x = x.float()
    # boundaries: halfway points between neighbours of every pattern (ties) and their nudges
    if fmt.bits < 32:
        _, v = _every_pattern(fmt)
        v = v.double()
        v = v[torch.isfinite(v)].sort().values
        mid = ((v[1:] + v[:-1]) / 2).float()
        x = torch.cat([x, mid, torch.nextafter(mid, torch.full_like(mid, math.inf)),
                       torch.nextafter(mid, torch.full_like(mid, -math.inf))])
    x = torch.cat([x, torch.tensor([0.0, -0.0, math.inf, -math.inf, 1e38, -3e38, 1e-45,
                                    65504.0, 65520.0, 448.0, 464.0, 465.0, 57344.0, 61440.0])])
    assert torch.equal(PR.encode(x, fmt), _torch_bits(x, fmt))


def test_e4m3fn_overflow_saturates_like_torch_or_becomes_nan_when_asked():
    # torch 2.14's fp32 -> float8_e4m3fn cast saturates: inf and 1e9 both give 448
    assert torch.tensor([math.inf, 1e9]).to(torch.float8_e4m3fn).float().tolist() == [448, 448]
    assert PR.encode(math.inf, "fp8_e4m3") == 0x7E and PR.encode(-1e9, "e4m3") == 0xFE
    assert PR.encode(1e9, "fp8_e4m3", overflow="nan") == 0x7F
    assert PR.encode(464.0, "fp8_e4m3", overflow="nan") == 0x7E  # tie -> even (448)
    assert PR.encode(465.0, "fp8_e4m3", overflow="nan") == 0x7F
    assert math.isnan(PR.decode(0x7F, "fp8_e4m3")) and math.isnan(PR.decode(0xFF, "fp8_e4m3"))
    assert PR.decode(0x78, "fp8_e4m3") == 256.0  # exponent all ones is a number in e4m3fn


def test_hand_computed_patterns():
    assert PR.decode(0x3C00, "fp16") == 1.0
    assert PR.decode(0xC000, "fp16") == -2.0
    assert PR.decode(0x0001, "fp16") == 2.0**-24  # smallest subnormal
    assert PR.decode(0x7BFF, "fp16") == 65504.0
    assert PR.decode(0x3F80, "bf16") == 1.0 and PR.decode(0x4049, "bf16") == 3.140625
    assert PR.decode(0x7C00, "fp16") == math.inf and PR.decode(0x7C, "fp8_e5m2") == math.inf
    assert PR.encode(1 + 2**-11, "fp16") == 0x3C00  # tie to even: down
    assert PR.encode(1 + 3 * 2**-11, "fp16") == 0x3C02  # tie to even: up
    assert PR.encode(65520.0, "fp16") == 0x7C00  # rounds past 65504: inf
    assert PR.bit_fields(0x3C00, "fp16") == (0, 15, 0)


@pytest.mark.parametrize("fmt", SMALL, ids=lambda f: f.name)
def test_format_limits_equal_finfo(fmt):
    lim, info = PR.format_limits(fmt), torch.finfo(fmt.torch_dtype)
    assert lim["max"] == info.max and lim["tiny"] == info.tiny and lim["eps"] == info.eps
    assert lim["unit_roundoff"] == info.eps / 2 == PR.unit_roundoff(fmt.torch_dtype)
    assert lim["smallest_subnormal"] == PR.decode(1, fmt)


def test_bad_arguments():
    with pytest.raises(ValueError, match="fmt"):
        PR.get_format("fp12")
    with pytest.raises(ValueError, match="fmt"):
        PR.get_format(torch.int8)
    with pytest.raises(TypeError, match="fmt"):
        PR.get_format(3)
    with pytest.raises(ValueError, match="bits"):
        PR.decode(70000, "fp16")
    with pytest.raises(TypeError, match="bits"):
        PR.decode(torch.ones(2), "fp16")
    with pytest.raises(TypeError, match="x"):
        PR.encode("1", "fp16")
    with pytest.raises(ValueError, match="overflow"):
        PR.encode(1.0, "fp16", overflow="clip")
