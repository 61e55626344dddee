"""The STE against torch's fake-quantize gradients; PTQ and QAT on the digits models."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from accel_lib.models import MLP, SmallCNN
from accel_lib.quantization import (
    QuantConfig,
    QuantWrapper,
    calibrate_,
    convert_to_int_,
    fake_quantize_ste,
    prepare_,
    ptq_,
    qat_,
    qparams_from_tensor,
)
from accel_lib.train import TrainConfig, evaluate
from tests.reference import assert_matches_reference, assert_raises_and_changes_nothing

with warnings.catch_warnings():
    warnings.simplefilter("ignore")


# ------------------------------------------------------------------------- the STE

@pytest.mark.parametrize("per_channel", [False, True])
def test_ste_values_and_gradients_match_torch(per_channel):
    x = torch.randn(6, 5) * 2
    qp = qparams_from_tensor(x[:2], 4, axis=1 if per_channel else None)

    def reference(t: torch.Tensor) -> torch.Tensor:
        if per_channel:
            return torch.fake_quantize_per_channel_affine(t, qp.scale, qp.zero_point, 1,
                                                          qp.qmin, qp.qmax)
        return torch.fake_quantize_per_tensor_affine(t, qp.scale.item(), int(qp.zero_point),
                                                     qp.qmin, qp.qmax)

    assert_matches_reference(lambda t: fake_quantize_ste(t, qp), reference, x, exact=True)
    x.requires_grad_()
    grad_out = torch.randn(6, 5)
    fake_quantize_ste(x, qp).backward(grad_out)
    assert (x.grad == 0).any() and (x.grad == grad_out).any()  # some clipped, some passed


# ------------------------------------------------------------- models: PTQ and QAT

def test_ptq_int8_keeps_accuracy(trained_mlp, digits):
    model, base = trained_mlp
    q = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=4)
    assert len([m for m in q.modules() if isinstance(m, QuantWrapper)]) == 3
    assert abs(evaluate(q, digits.test) - base) <= 0.02


def test_ptq_weights_lie_on_the_grid(trained_mlp, digits):
    q = ptq_(copy.deepcopy(trained_mlp[0]), digits.train, QuantConfig(weight_bits=3),
             max_batches=2)
    for w in [m for m in q.modules() if isinstance(m, QuantWrapper)]:
        assert (w.quantized_weight().unique(dim=None).numel()
                <= 8 * w.module.weight.shape[0])
        codes = w.quantized_weight() / w.weight_qparams().scale.reshape(-1, 1)
        assert torch.allclose(codes, codes.round(), atol=1e-4)


def test_qat_recovers_low_bit_accuracy(trained_mlp, digits):
    model, _ = trained_mlp
    config = QuantConfig(weight_bits=2, act_bits=2)
    ptq_acc = evaluate(ptq_(copy.deepcopy(model), digits.train, config, max_batches=4),
                       digits.test)
    qat = qat_(copy.deepcopy(model), digits.train, config,
               TrainConfig(epochs=2, lr=1e-3, progress=False), calibration_batches=4)
    assert evaluate(qat, digits.test) >= ptq_acc


def test_qat_trains_the_cnn_through_the_fake_quantizers(digits):
    model = SmallCNN(channels=(8, 8))
    before = copy.deepcopy(model.state_dict())
    qat_(model, digits.train, QuantConfig(weight_bits=4, act_bits=8),
         TrainConfig(epochs=1, lr=1e-2, progress=False), calibration_batches=2)
    conv = model.features[0]
    assert isinstance(conv, QuantWrapper)
    assert not torch.equal(conv.module.weight, before["features.0.weight"])
    assert evaluate(model, digits.test) > 0.5


def _encoder(batch_first: bool) -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoderLayer(
        16, 2, 32, dropout=0.0, batch_first=batch_first), nn.Linear(16, 4)).eval()


@pytest.mark.parametrize("batch_first", [False, True])
def test_ptq_of_a_transformer_encoder_layer_runs(batch_first):
    """Attention computes with out_proj's weight without calling it, so a QuantWrapper there
    crashed the forward ("'QuantWrapper' object has no attribute 'weight'"); torch's
    quantize_dynamic skips it. A batch_first layer's eval fast path reads linear1/linear2's
    weights too (quantize_dynamic breaks there): those layers stay float."""
    model = _encoder(batch_first)
    x = torch.randn(3, 6, 8)
    q = ptq_(copy.deepcopy(model), [x])
    wrapped = {name for name, m in q.named_modules() if isinstance(m, QuantWrapper)}
    assert wrapped == ({"0", "2"} if batch_first else {"0", "1.linear1", "1.linear2", "2"})
    with torch.no_grad():
        torch.testing.assert_close(q(x), model(x), atol=0.05, rtol=0.05)
        real = convert_to_int_(copy.deepcopy(q))
        torch.testing.assert_close(real(x), q(x), atol=0.02, rtol=0.02)
    attention = nn.Sequential(nn.MultiheadAttention(16, 2, batch_first=True))
    with pytest.raises(ValueError, match="no layer to quantize"):
        prepare_(attention)  # its only Linear is out_proj


def test_ptq_and_calibrate_change_nothing_when_calibration_fails():
    """ptq_ wrapped the model, then calibration raised and left it wrapped and uncalibrated;
    a failed calibrate_ kept what the observers had seen of the batches before."""
    bad_batches = [torch.randn(4, 64), torch.randn(4, 5)]  # the second does not fit the MLP
    assert_raises_and_changes_nothing(lambda m: ptq_(m, bad_batches), MLP(), ValueError,
                                      "64 features")
    assert_raises_and_changes_nothing(lambda m: ptq_(m, []), MLP(), ValueError, "empty")
    prepared = prepare_(MLP())
    with pytest.raises(ValueError, match="64 features"):
        calibrate_(prepared, bad_batches)
    assert all(w.observer.batches == 0 for w in prepared.modules()
               if isinstance(w, QuantWrapper))
    assert_raises_and_changes_nothing(lambda m: prepare_(m, {"weight_bits": 4}), MLP(),
                                      TypeError, "config must be a QuantConfig")


def test_model_level_bad_inputs(digits):
    with pytest.raises(ValueError, match="no layer to quantize"):
        prepare_(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="module must be one of"):
        QuantWrapper(nn.LSTM(3, 3), QuantConfig())
    with pytest.raises(ValueError, match="already prepared"):
        prepare_(prepare_(MLP()))
    with pytest.raises(ValueError, match="calibration data is empty"):
        ptq_(MLP(), [])
    with pytest.raises(ValueError, match="not prepared"):
        calibrate_(MLP(), digits.train)
    with pytest.raises(RuntimeError, match="calibrate_"):
        prepare_(MLP())(torch.randn(2, 64))
    with pytest.raises(ValueError, match="weight_bits"):
        QuantConfig(weight_bits=1)
    with pytest.raises(ValueError, match="act_bits"):
        QuantConfig(act_bits=32)
    with pytest.raises(ValueError, match="observer"):
        QuantConfig(observer="max")
    with pytest.raises(ValueError, match="weight_bits=8"):
        convert_to_int_(ptq_(MLP(), digits.train, QuantConfig(weight_bits=4), max_batches=1))
    with pytest.raises(ValueError, match="Conv1d"):
        convert_to_int_(ptq_(nn.Sequential(nn.Conv1d(2, 2, 1)), [torch.randn(3, 2, 5)]))


