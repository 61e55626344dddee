"""BatchNorm folding against torch.nn.utils.fusion, by hand, and on whole models."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from accel_lib.fusion import (
    fold_bn_,
    fold_bn_weights,
    foldable_pairs,
    fuse_conv_bn,
    fuse_linear_bn,
)
from accel_lib.models import SmallCNN
from tests.fusion.conftest import randomize_bn_
from tests.reference import assert_raises_and_changes_nothing


def _pair(conv: nn.Module, bn: nn.Module, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    holder = randomize_bn_(nn.Sequential(conv, bn), seed).eval()
    return holder[0], holder[1]


@pytest.mark.parametrize("conv, bn", [
    (nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)),
    (nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8)),
    (nn.Conv2d(8, 8, 3, groups=4, stride=2), nn.BatchNorm2d(8, eps=1e-3)),
    (nn.Conv1d(4, 6, 5), nn.BatchNorm1d(6)),
    (nn.Conv3d(2, 4, 3, bias=False), nn.BatchNorm3d(4)),
    (nn.Conv2d(3, 5, 1), nn.BatchNorm2d(5, affine=False)),
])
def test_fuse_conv_bn_equals_torch(conv, bn):
    conv, bn = _pair(conv, bn)
    ours, ref = fuse_conv_bn(conv, bn), fuse_conv_bn_eval(conv, bn)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=1e-6)
    x = torch.randn(2, conv.in_channels, *([7] * (conv.weight.dim() - 2)))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), bn(conv(x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_fuse_linear_bn_equals_torch(bias):
    linear, bn = _pair(nn.Linear(12, 6, bias=bias), nn.BatchNorm1d(6), seed=3)
    ours, ref = fuse_linear_bn(linear, bn), fuse_linear_bn_eval(linear, bn)
    torch.testing.assert_close(ours.weight, ref.weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.bias, ref.bias, rtol=0, atol=1e-6)
    x = torch.randn(5, 12)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), bn(linear(x)))


def test_fold_bn_weights_hand_computed():
    # sqrt(var + eps) = [2, 3]: scale = gamma / [2, 3] = [0.5, 2/3]
    w = torch.tensor([[2.0], [3.0]])
    new_w, new_b = fold_bn_weights(w, None, torch.tensor([1.0, -1.0]), torch.tensor([3.0, 8.0]),
                                   1.0, torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(new_w, torch.tensor([[1.0], [2.0]]))
    torch.testing.assert_close(new_b, torch.tensor([0.0, 2 / 3]))


def test_fusion_does_not_touch_its_inputs():
    conv, bn = _pair(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    before = [t.clone() for t in (conv.weight, conv.bias, bn.running_mean, bn.running_var)]
    fused = fuse_conv_bn(conv, bn)
    assert fused is not conv
    for a, b in zip(before, (conv.weight, conv.bias, bn.running_mean, bn.running_var),
                    strict=True):
        assert torch.equal(a, b)


def test_fold_bn_folds_every_pair_of_a_course_cnn_and_keeps_the_function():
    model = randomize_bn_(SmallCNN(channels=(8, 16, 16))).eval()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ref = model(x)
    assert foldable_pairs(model) == [("features.0", "features.1"), ("features.3", "features.4"),
                                     ("features.6", "features.7")]
    assert fold_bn_(model) is model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    state = copy.deepcopy(model.state_dict())
    fold_bn_(model)  # nothing left to fold: applying twice changes nothing
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_fold_bn_leaves_what_it_cannot_fold_alone():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.BatchNorm2d(4),           # BN after a ReLU
        nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4, track_running_stats=False),  # no statistics
        nn.ConvTranspose2d(4, 4, 3), nn.BatchNorm2d(4),              # transposed conv
        nn.Flatten(), nn.Linear(4 * 6 * 6, 5), nn.BatchNorm1d(5),   # folds
    ).eval()
    randomize_bn_(model)
    x = torch.randn(3, 1, 8, 8)
    with torch.no_grad():
        ref = model(x)
    assert foldable_pairs(model) == [("8", "9")]
    fold_bn_(model)
    assert [type(model[i]).__name__ for i in (2, 4, 6, 9)] == ["BatchNorm2d"] * 3 + ["Identity"]
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)


def test_fold_bn_refuses_training_mode_and_changes_nothing():
    model = randomize_bn_(SmallCNN())
    model.train()
    assert_raises_and_changes_nothing(fold_bn_, model, ValueError, match="training mode")
    model.eval()
    model.features[1].train()  # one BatchNorm left in training mode is enough to refuse
    assert_raises_and_changes_nothing(fold_bn_, model, ValueError, match="features.1")


def test_bad_pairs_are_refused_with_clear_errors():
    conv, bn = _pair(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3))
    with pytest.raises(TypeError, match="conv must be a Conv1d, Conv2d or Conv3d"):
        fuse_conv_bn(nn.Linear(2, 3), bn)
    with pytest.raises(TypeError, match="bn must be a BatchNorm"):
        fuse_conv_bn(conv, nn.ReLU())
    with pytest.raises(ValueError, match="bn has 4 features but the conv gives 3"):
        fuse_conv_bn(conv, nn.BatchNorm2d(4).eval())
    with pytest.raises(ValueError, match="no running statistics"):
        fuse_conv_bn(conv, nn.BatchNorm2d(3, track_running_stats=False).eval())
    with pytest.raises(ValueError, match="training mode"):
        fuse_conv_bn(conv, nn.BatchNorm2d(3))
    with pytest.raises(TypeError, match="must be an nn.Module instance"):
        fuse_linear_bn(nn.Linear, bn)
    with pytest.raises(ValueError, match="one value per output channel"):
        fold_bn_weights(torch.ones(3, 2), None, torch.zeros(2), torch.ones(2), 1e-5)
    with pytest.raises(ValueError, match="eps must be"):
        fold_bn_weights(torch.ones(3, 2), None, torch.zeros(3), torch.ones(3), -1.0)
