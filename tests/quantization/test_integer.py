"""The integer path: int8 GEMM, fixed-point requantization, IntLinear/IntConv2d, dynamic int8."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from accel_lib.models import MLP, SmallCNN
from accel_lib.quantization import (
    IntConv2d,
    IntLinear,
    QuantConfig,
    QuantWrapper,
    convert_to_int_,
    dynamic_quantize,
    fake_quantize,
    int_matmul,
    linear_error_bound,
    ptq_,
    qparams_from_tensor,
    quantize_multiplier,
    requantize,
    serialized_size_bytes,
    state_size_bytes,
)
from accel_lib.train import evaluate
from tests.reference import assert_raises_and_changes_nothing

with warnings.catch_warnings():
    warnings.simplefilter("ignore")


# ------------------------------------------------------------- the integer path

def test_int_matmul_is_exact():
    q_x = torch.randint(-128, 128, (5, 37), dtype=torch.int8)
    q_w = torch.randint(-127, 128, (9, 37), dtype=torch.int8)
    ref = (q_x.long() - 7) @ q_w.long().t()
    assert torch.equal(int_matmul(q_x, 7, q_w).long(), ref)
    with pytest.raises(TypeError, match="int8"):
        int_matmul(q_x.int(), 0, q_w)


def test_fixed_point_requantize_matches_float_within_one_code():
    acc = torch.randint(-2**20, 2**20, (64, 16), dtype=torch.int32)
    multiplier = torch.rand(16, dtype=torch.float64) * 1e-3 + 1e-5
    m0, shift = quantize_multiplier(multiplier)
    assert ((m0 >= 2**30) & (m0 <= 2**31)).all()
    assert torch.allclose(m0.double() * torch.exp2(-31.0 - shift.double()), multiplier,
                          rtol=1e-9)
    q = requantize(acc, m0, shift, zero_point=3, qmin=-128, qmax=127)
    ref = (torch.round(acc.double() * multiplier) + 3).clamp(-128, 127)
    diff = (q.double() - ref).abs()
    assert diff.max() <= 1 and (diff == 0).float().mean() > 0.99
    with pytest.raises(ValueError, match="multiplier"):
        quantize_multiplier(torch.tensor([-1.0]))


def test_int_linear_matches_fake_quant_and_stays_within_the_error_bound():
    lin = nn.Linear(40, 12)
    x = torch.randn(32, 40)
    act = qparams_from_tensor(x, 8, signed=True)
    int_lin = IntLinear.from_float(lin, act)
    assert int_lin.weight_q.dtype == torch.int8
    y = int_lin(x)
    with torch.no_grad():
        w_qp = qparams_from_tensor(lin.weight, 8, symmetric=True, axis=0)
        simulated = nn.functional.linear(fake_quantize(x, act), fake_quantize(lin.weight, w_qp),
                                         lin.bias)
        exact = lin(x)
    bound = linear_error_bound(x, lin.weight, act.scale.item(), w_qp.scale).float()
    assert ((y - exact).abs() <= bound + 1e-5 * exact.abs()).all()
    assert torch.allclose(y, simulated, atol=float(int_lin.acc_scale.max()) + 1e-5)
    # requantized int8 output: one more half step of the output grid
    out = qparams_from_tensor(exact, 8, signed=True)
    y8 = IntLinear.from_float(lin, act, out_qparams=out)(x)
    assert ((y8 - exact).abs() <= bound + out.scale / 2 + 1e-4).all()


def test_dead_relus_do_not_wrap_the_int32_bias():
    """All-zero calibration input (dead ReLUs) collapses the activation scale to float eps,
    and ``round(b / (s_x s_w))`` no longer fits in int32: it wrapped (0.5 came out as
    -0.002). The integer model must give the float output within the error bound, like the
    fake-quantized one."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every ReLU dead: the second layer sees only zeros
        model[2].bias.copy_(torch.tensor([0.5, -0.25, 2.0, 0.0]))
    x = torch.randn(32, 8)
    fake = ptq_(copy.deepcopy(model), [x])
    real = convert_to_int_(copy.deepcopy(fake))
    with torch.no_grad():
        hidden, exact, simulated, y = model[:2](x), model(x), fake(x), real(x)
    assert (hidden == 0).all()
    layer = real[2]
    bound = linear_error_bound(hidden, model[2].weight, layer.act_qparams.scale.item(),
                               layer.weight_scale).float()
    assert ((y - exact).abs() <= bound + 1e-5 * exact.abs()).all()
    torch.testing.assert_close(y, simulated)


def test_int_linear_bias_never_wraps():
    """However small the scales, the int32 bias fits (here by coarser weight scales for the
    channels whose bias needs it); a non-finite bias is refused."""
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight[1].zero_()  # a pruned neuron: its weight scale is float eps too
        lin.bias.copy_(torch.tensor([1e3, 10.0, -0.5]))
    act = qparams_from_tensor(torch.zeros(2, 4), 8, signed=True)  # scale = float eps
    int_lin = IntLinear.from_float(lin, act)
    assert int_lin.bias_q.abs().max() <= 2**30
    torch.testing.assert_close(int_lin(torch.zeros(5, 4)), lin.bias.detach().expand(5, 3))
    with torch.no_grad():
        lin.bias[0] = float("inf")
    with pytest.raises(ValueError, match="bias must be finite"):
        IntLinear.from_float(lin, act)


def test_int_conv2d_matches_float_conv():
    conv = nn.Conv2d(3, 5, 3, padding=1, stride=2)
    x = torch.randn(2, 3, 9, 9)
    act = qparams_from_tensor(x, 8, signed=True)
    y = IntConv2d.from_float(conv, act)(x)
    with torch.no_grad():
        w_qp = qparams_from_tensor(conv.weight, 8, symmetric=True, axis=0)
        simulated = nn.functional.conv2d(fake_quantize(x, act), fake_quantize(conv.weight, w_qp),
                                         conv.bias, stride=2, padding=1)
        exact = conv(x)
    assert y.shape == exact.shape
    assert torch.allclose(y, simulated, atol=1e-4)
    assert (y - exact).abs().max() < 0.05 * exact.abs().max()
    with pytest.raises(ValueError, match="groups=1"):
        IntConv2d.from_float(nn.Conv2d(4, 4, 3, groups=2), act)
    with pytest.raises(TypeError, match="nn.Linear"):
        IntLinear.from_float(conv, act)


def test_convert_to_int_keeps_ptq_accuracy_and_shrinks_weights(trained_mlp, digits):
    model, _ = trained_mlp
    fake = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=4)
    real = convert_to_int_(copy.deepcopy(fake))
    assert all(not isinstance(m, QuantWrapper) for m in real.modules())
    assert abs(evaluate(real, digits.test) - evaluate(fake, digits.test)) <= 0.01
    weight_bytes = sum(m.weight_q.numel() for m in real.modules() if isinstance(m, IntLinear))
    assert weight_bytes == sum(p.numel() for n, p in model.named_parameters() if "weight" in n)
    cnn = SmallCNN(channels=(4, 4))
    q_cnn = convert_to_int_(ptq_(copy.deepcopy(cnn), digits.train, max_batches=2))
    x = next(iter(digits.test))[0]
    assert q_cnn(x).shape == (x.shape[0], 10)


@pytest.mark.parametrize("conv", [nn.Conv2d(4, 4, 3, groups=2),
                                  nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect")])
def test_convert_to_int_changes_nothing_when_a_layer_has_no_integer_kernel(conv):
    """It converted the layers before a grouped (or reflect-padded) conv, then raised."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), conv, nn.Flatten(), nn.LazyLinear(3))
    model(torch.randn(2, 1, 8, 8))  # materialise the lazy Linear
    fake = ptq_(model, [torch.randn(2, 1, 8, 8)])
    assert_raises_and_changes_nothing(convert_to_int_, fake, ValueError, "IntConv2d supports")


def test_dynamic_quantization_and_sizes():
    model = MLP(784, (256,), 10).eval()
    q = dynamic_quantize(model)
    x = torch.randn(4, 784)
    with torch.no_grad():
        assert torch.allclose(q(x), model(x), atol=0.05)
    fp32, int8 = serialized_size_bytes(model), serialized_size_bytes(q)
    assert 3.0 < fp32 / int8 < 4.1
    weights = 784 * 256 + 256 * 10
    assert state_size_bytes(model) == 4 * (weights + 266)
    assert weights <= state_size_bytes(q) < weights + 4 * 266 + 100  # int8 weights, fp32 bias
    with pytest.raises(ValueError, match="nn.Linear"):
        dynamic_quantize(nn.Sequential(nn.Conv2d(1, 1, 1)))
