"""The shared model plumbing (eval_mode, model_device, layers_of_type, replace_modules_)
and the shared reference helper the technique tests use."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib.models import MLP, SmallCNN
from accel_lib.nn_utils import (
    eval_mode,
    layers_of_type,
    model_device,
    reads_child_weights,
    replace_modules_,
    swappable_layers,
)
from tests.reference import assert_matches_reference


def test_eval_mode_restores_every_submodule_even_on_error():
    model = SmallCNN().train()
    model.features[1].eval()  # a frozen BatchNorm stays frozen afterwards
    before = {name: m.training for name, m in model.named_modules()}
    with eval_mode(model) as m:
        assert m is model
        assert not any(sub.training for sub in model.modules())
    assert {name: m.training for name, m in model.named_modules()} == before
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model):
        raise RuntimeError("boom")
    assert {name: m.training for name, m in model.named_modules()} == before


def test_model_device_and_layers_of_type():
    assert model_device(MLP()) == torch.device("cpu")
    assert model_device(nn.ReLU()) == torch.device("cpu")  # stateless: CPU
    bn_only = nn.BatchNorm1d(3, affine=False)  # buffers, no parameters
    assert model_device(bn_only) == torch.device("cpu")
    layers = layers_of_type(SmallCNN(), (nn.Conv2d, nn.Linear))
    assert list(layers) == ["features.0", "features.3", "classifier.1"]
    single = nn.Linear(2, 2)  # the model itself is listed, under the name ""
    assert layers_of_type(single, nn.Linear) == {"": single}


def test_replace_modules_swaps_depth_first_and_counts():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 2)))
    n = replace_modules_(model, lambda m: nn.Identity() if isinstance(m, nn.Linear) else None)
    assert n == 2
    assert isinstance(model[0], nn.Identity) and isinstance(model[1][1], nn.Identity)
    assert isinstance(model[1][0], nn.ReLU)


def test_modules_that_read_their_childrens_weights_are_not_entered():
    """nn.MultiheadAttention computes with out_proj.weight; a batch_first encoder layer's
    eval-mode fast path with every child's weight: swapping those children breaks them."""
    attention = nn.MultiheadAttention(8, 2)
    encoders = [nn.TransformerEncoderLayer(8, 2, 16, batch_first=b) for b in (False, True)]
    assert reads_child_weights(attention) and reads_child_weights(encoders[1])
    assert not reads_child_weights(encoders[0]) and not reads_child_weights(MLP())
    model = nn.Sequential(nn.Linear(8, 8), attention, *encoders)
    assert set(swappable_layers(model, nn.Linear)) == {"0", "2.linear1", "2.linear2"}
    assert set(layers_of_type(model, nn.Linear)) == {"0", "1.out_proj", "2.self_attn.out_proj",
                                                     "2.linear1", "2.linear2",
                                                     "3.self_attn.out_proj", "3.linear1",
                                                     "3.linear2"}
    n = replace_modules_(model, lambda m: nn.Identity() if isinstance(m, nn.Linear) else None)
    assert n == 3 and isinstance(attention.out_proj, nn.Linear)


@pytest.mark.parametrize("call", [
    lambda: model_device(MLP),
    lambda: layers_of_type(MLP, nn.Linear),
    lambda: replace_modules_(MLP, lambda m: None),
    lambda: eval_mode(MLP).__enter__(),
])
def test_plumbing_says_pass_an_instance_for_a_class(call):
    with pytest.raises(TypeError, match=r"pass an instance, e.g. MLP\(\)"):
        call()


def test_reference_helper_catches_wrong_values_and_wrong_gradients():
    x = torch.randn(4, 3, dtype=torch.float64)
    assert_matches_reference(torch.tanh, lambda t: torch.sinh(t) / torch.cosh(t), x)
    with pytest.raises(AssertionError, match="values"):
        assert_matches_reference(torch.tanh, torch.sigmoid, x)

    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t * 2

        @staticmethod
        def backward(ctx, g):
            return g * 3  # the right value, the wrong derivative

    with pytest.raises(AssertionError, match="gradient of input 0"):
        assert_matches_reference(WrongGrad.apply, lambda t: t * 2, x)
    assert_matches_reference(WrongGrad.apply, lambda t: t * 2, x, grad=False)
