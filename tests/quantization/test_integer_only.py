"""Integer-only inference: quantized_linear (int8 in, int8 out) and Int8Sequential."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from accel_lib.models import MLP
from accel_lib.quantization import (
    Int8Sequential,
    IntLinear,
    QuantConfig,
    convert_to_int_,
    ptq_,
    qparams_from_tensor,
    quantize_multiplier,
    quantized_linear,
)
from accel_lib.train import evaluate


def _m(multiplier: float, channels: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return quantize_multiplier(torch.full((channels,), multiplier, dtype=torch.float64))


def test_quantized_linear_by_hand():
    # (q_x - z_x) = [0, 1]; acc = 0*3 + 1*4 + 5 = 9; M = 0.5 -> 4.5 rounds half up to 5; + z_y
    q_x = torch.tensor([[1, 2]], dtype=torch.int8)
    q_w = torch.tensor([[3, 4]], dtype=torch.int8)
    m0, shift = _m(0.5)
    out = quantized_linear(q_x, 1, q_w, torch.tensor([5], dtype=torch.int32), m0, shift, 2)
    assert out.dtype == torch.int8 and out.tolist() == [[7]]
    # ties go up, also for negatives: -4.5 -> -4; saturation at both ends
    out = quantized_linear(q_x, 1, q_w, torch.tensor([-13], dtype=torch.int32), m0, shift, 0)
    assert out.tolist() == [[-4]]
    big = torch.full((2, 64), 127, dtype=torch.int8)
    w = torch.stack([torch.full((64,), 127), torch.full((64,), -128)]).to(torch.int8)
    m0, shift = _m(0.01, 2)
    out = quantized_linear(big, -128, w, torch.zeros(2, dtype=torch.int32), m0, shift, 0)
    assert out.tolist() == [[127, -128], [127, -128]]  # |acc * M| ~ 2.6e3: saturated, no wrap


def test_quantized_linear_is_round_of_the_float_product_within_one_code():
    gen = torch.Generator().manual_seed(0)
    q_x = torch.randint(-128, 128, (16, 40), dtype=torch.int8, generator=gen)
    q_w = torch.randint(-127, 128, (7, 40), dtype=torch.int8, generator=gen)
    bias = torch.randint(-5000, 5000, (7,), dtype=torch.int32, generator=gen)
    mult = torch.rand(7, dtype=torch.float64, generator=gen) * 1e-3 + 1e-4
    m0, shift = quantize_multiplier(mult)
    out = quantized_linear(q_x, 3, q_w, bias, m0, shift, -5)
    exact = ((q_x.double() - 3) @ q_w.double().t() + bias.double()) * mult
    ref = (torch.floor(exact + 0.5) - 5).clamp(-128, 127)
    assert (out.double() - ref).abs().max() <= 1 and (out.double() == ref).float().mean() > 0.99


@pytest.mark.parametrize("bad, match", [
    (dict(bias_q=torch.zeros(3, dtype=torch.int64)), "bias_q"),
    (dict(bias_q=torch.zeros(2, dtype=torch.int32)), "bias_q"),
    (dict(m0=torch.ones(3, dtype=torch.int32)), "m0"),
    (dict(zero_point_x=200), "zero_point_x"),
])
def test_quantized_linear_refuses_bad_arguments(bad, match):
    args = dict(q_x=torch.zeros(2, 4, dtype=torch.int8), zero_point_x=0,
                q_w=torch.zeros(3, 4, dtype=torch.int8), bias_q=torch.zeros(3, dtype=torch.int32),
                m0=_m(0.5, 3)[0], shift=_m(0.5, 3)[1], zero_point_y=0)
    with pytest.raises((TypeError, ValueError), match=match):
        quantized_linear(**{**args, **bad})


def test_int8_sequential_keeps_the_accuracy_and_equals_the_requantized_int_linears(
        trained_mlp, digits):
    model, acc_fp32 = trained_mlp
    fake = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=8)
    before = copy.deepcopy(fake.state_dict())
    int8 = Int8Sequential.from_ptq(fake, digits.train)
    assert all(torch.equal(before[k], v) for k, v in fake.state_dict().items())
    assert len(int8.layers) == 3 and int8.relu == [True, True, False] and int8.flatten
    assert abs(evaluate(int8, digits.test) - acc_fp32) <= 0.02
    real = convert_to_int_(copy.deepcopy(fake))  # float between the layers
    x = next(iter(digits.test))[0]
    codes = int8.codes(x)
    assert codes.dtype == torch.int8 and codes.shape == (x.shape[0], 10)
    # the same chain with IntLinear's own requantized float outputs and float ReLUs
    h = x.flatten(1)
    for lin, relu in zip(int8.layers, int8.relu, strict=True):
        h = lin(h).relu() if relu else lin(h)
    torch.testing.assert_close(int8(x), h, rtol=0, atol=0)
    out_step = float(int8.output_qparams.scale)
    assert (int8(x) - real(x)).abs().max() <= 4 * out_step  # one step per layer, at most
    # a layer function of the same signature plugs in: the float formula gives the same codes
    def float_layer(q_x, z_x, q_w, bias_q, m0, shift, z_y):
        acc = (q_x.double() - z_x) @ q_w.double().t() + bias_q.double()
        mult = m0.double() * torch.exp2(-31.0 - shift.double())
        return (torch.floor(acc * mult + 0.5) + z_y).clamp(-128, 127).to(torch.int8)
    assert (int8.codes(x, layer=float_layer).int() - codes.int()).abs().max() <= 1
    assert [r[-1] for r in int8.layer_rows()] == [True, True, False]


def test_int8_sequential_relu_is_a_clamp_at_the_zero_point():
    """Without a ReLU-only range downstream (z_y > q_min), the ReLU is applied to codes."""
    lin = nn.Linear(6, 4)
    x = torch.randn(32, 6)
    act = qparams_from_tensor(x, 8, signed=True)
    out = qparams_from_tensor(torch.randn(32, 4) * 3, 8, signed=True)
    assert int(out.zero_point) > -128
    seq = Int8Sequential([IntLinear.from_float(lin, act, out)], [True], flatten=False)
    with torch.no_grad():
        expected = IntLinear.from_float(lin, act, out)(x).relu()
    torch.testing.assert_close(seq(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("build, match", [
    (lambda: MLP(), "calibrated"),
    (lambda: ptq_(nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(6, 2)),
                  [torch.randn(4, 1, 5)]), "Conv1d"),
    (lambda: ptq_(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.ReLU(), nn.Linear(4, 2)),
                  [torch.randn(4, 4)]), "ReLU"),
    (lambda: ptq_(nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)),
                  [torch.randn(4, 4)]), "Tanh"),
])
def test_int8_sequential_refuses_what_it_cannot_run(build, match):
    with pytest.raises(ValueError, match=match):
        Int8Sequential.from_ptq(build(), [torch.randn(4, 4)])


def test_int8_sequential_refuses_a_model_that_runs_its_modules_in_another_order():
    class Backwards(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.a(self.b(x))

    model = ptq_(Backwards(), [torch.randn(8, 4)])
    with pytest.raises(ValueError, match="order"):
        Int8Sequential.from_ptq(model, [torch.randn(8, 4)])
    with pytest.raises(ValueError, match="empty"):
        Int8Sequential.from_ptq(ptq_(MLP(4, (4,), 2), [torch.randn(8, 4)]), [])
