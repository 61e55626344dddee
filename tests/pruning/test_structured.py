"""Channel surgery: single layers, SmallCNN and VGG (exact when removed channels are zero)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib.models import SmallCNN, vision_model
from accel_lib.pruning import (
    channel_groups,
    channel_keep_indices,
    channel_scores,
    prune_batchnorm2d,
    prune_channels_,
    prune_conv2d,
    prune_linear_inputs,
    prune_unstructured_,
    trace_chain,
)
from accel_lib.train import TrainConfig, train

# ---------------------------------------------------------------- structured surgery


def test_channel_scores_and_keep():
    w = torch.zeros(3, 2, 1, 1)
    w[0] = 1.0
    w[1, 0] = -3.0
    w[2] = 0.5
    torch.testing.assert_close(channel_scores(w, 1), torch.tensor([2.0, 3.0, 1.0]))
    torch.testing.assert_close(channel_scores(w, 2), torch.tensor([2**0.5, 3.0, 0.5**0.5]))
    assert channel_keep_indices(torch.tensor([2.0, 3.0, 1.0]), 0.34).tolist() == [0, 1]
    assert channel_keep_indices(torch.tensor([2.0, 3.0, 1.0]), 0.99).tolist() == [1]


def test_single_layer_surgery_matches_slicing():
    conv, bn, lin = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Linear(6 * 4, 5)
    bn.running_mean.uniform_()
    keep_out, keep_in = torch.tensor([0, 2, 5]), torch.tensor([1, 3])
    x = torch.randn(2, 4, 2, 2)
    small = prune_conv2d(conv, keep_out, keep_in)
    assert small.weight.shape == (3, 2, 3, 3)
    expected = nn.functional.conv2d(x[:, keep_in], conv.weight[keep_out][:, keep_in],
                                    conv.bias[keep_out], padding=1)
    torch.testing.assert_close(small(x[:, keep_in]), expected)
    sbn = prune_batchnorm2d(bn.eval(), keep_out).eval()
    h = torch.randn(2, 6, 2, 2)
    torch.testing.assert_close(sbn(h[:, keep_out]), bn(h)[:, keep_out])
    slin = prune_linear_inputs(lin, keep_out, spatial=4)
    h[:, [1, 3, 4]] = 0  # removed channels are zero: the smaller linear gives the same result
    torch.testing.assert_close(slin(h[:, keep_out].flatten(1)), lin(h.flatten(1)))


def _zero_channels(model: nn.Module, x: torch.Tensor, sparsity: float) -> None:
    """Make the lowest channels of each prunable conv exactly zero after BN (and bias)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for g in channel_groups(model, x):
            conv = modules[g.conv]
            n = round(sparsity * conv.out_channels)
            drop = torch.randperm(conv.out_channels)[:n]
            conv.weight[drop] = 0
            if conv.bias is not None:
                conv.bias[drop] = 0
            for bn in g.batchnorms:
                modules[bn].weight[drop] = 0
                modules[bn].bias[drop] = 0


def test_smallcnn_surgery_is_exact_when_removed_channels_are_zero(digits):
    model = SmallCNN(channels=(8, 16, 16))
    train(model, digits.train, TrainConfig(epochs=1, device="cpu", progress=False))
    x = next(iter(digits.val))[0]
    _zero_channels(model, x, 0.5)
    ref = model(x)
    params = sum(p.numel() for p in model.parameters())
    prune_channels_(model, 0.5, x)
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8]
    assert model.classifier[1].in_features == 8 * 16
    assert sum(p.numel() for p in model.parameters()) < params / 2
    torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    # the smaller model trains (fine-tuning after surgery)
    train(model, digits.train, TrainConfig(epochs=1, device="cpu", progress=False))


def test_vgg11_surgery_is_exact_across_the_flatten_boundary():
    model = vision_model("vgg11", num_classes=10)
    # a small classifier keeps the test light; flatten(avgpool 7x7) -> Linear stays
    model.classifier[0], model.classifier[3] = nn.Linear(512 * 49, 32), nn.Linear(32, 32)
    model.classifier[6] = nn.Linear(32, 10)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    groups = channel_groups(model, x)
    assert len(groups) == 8 and groups[-1].consumer == "classifier.0" and groups[-1].spatial == 49
    _zero_channels(model, x, 0.5)
    ref = model(x)
    prune_channels_(model, 0.5, x)
    assert model.classifier[0].in_features == 256 * 49
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_per_layer_sparsity_and_custom_scores():
    model = SmallCNN(channels=(8, 16)).eval()
    x = torch.randn(2, 1, 8, 8)
    scores = {"features.0": torch.arange(8.0)}
    prune_channels_(model, {"features.0": 0.25}, x, scores=scores)
    assert model.features[0].out_channels == 6 and model.features[3].in_channels == 6
    assert model.features[3].out_channels == 16  # not named: untouched


def test_surgery_refuses_what_it_cannot_handle():
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="not a chain"):
        trace_chain(vision_model("resnet18", num_classes=10), x)
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 2, 1))
    with pytest.raises(ValueError, match="groups"):
        prune_channels_(grouped, 0.5, torch.randn(1, 4, 5, 5))
    odd = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LayerNorm([4, 3, 3]), nn.Conv2d(4, 2, 1))
    with pytest.raises(ValueError, match="not supported"):
        prune_channels_(odd, 0.5, torch.randn(1, 1, 5, 5))
    masked = prune_unstructured_(SmallCNN(), 0.5)
    with pytest.raises(ValueError, match="make_permanent_"):
        prune_channels_(masked, 0.5, torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="sparsity must name"):
        prune_channels_(SmallCNN(), {"classifier.1": 0.5}, torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="nothing to prune"):
        prune_channels_(nn.Sequential(nn.Conv2d(1, 2, 3)), 0.5, torch.randn(1, 1, 5, 5))


