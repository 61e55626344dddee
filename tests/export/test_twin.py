"""The Keras twin of a PyTorch model: weights copied NCHW -> NHWC, checked against PyTorch."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from accel_lib import export as EX
from accel_lib import fusion, lowrank, pruning


def _keras_out(twin, x: torch.Tensor) -> np.ndarray:
    a = x.numpy()
    return np.asarray(twin(EX.to_nhwc(a) if a.ndim == 4 else a, training=False))


def _torch_out(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(x).numpy()


def test_flatten_order_hand_computed():
    """(C, H, W) = (2, 1, 2): PyTorch flattens c0w0, c0w1, c1w0, c1w1; Keras (NHWC) flattens
    w0c0, w0c1, w1c0, w1c1. The twin must reorder the Linear's inputs, not the data."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 1, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[1.0, 10.0, 100.0, 1000.0]]))
    x = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # (1, 2, 1, 2)
    twin = EX.keras_from_torch(model, x)
    assert _keras_out(twin, x).item() == pytest.approx(1 * 1 + 2 * 10 + 3 * 100 + 4 * 1000)
    kernel = twin.layers[-1].get_weights()[0][:, 0]
    assert kernel.tolist() == [1.0, 100.0, 10.0, 1000.0]  # NHWC order: (w0c0, w0c1, ...)


def test_trained_cnn_and_its_tflite_match_pytorch(torch_cnn, data):
    x = torch.from_numpy(data[2][:64])
    twin = EX.keras_from_torch(torch_cnn, x[:4])  # checked on 4, compared on 64 here
    want = _torch_out(torch_cnn, x)
    assert np.abs(_keras_out(twin, x) - want).max() < 1e-4
    lite = EX.LiteModel(EX.convert_tflite(twin, "float32"))
    assert np.abs(lite.predict(EX.to_nhwc(x.numpy())) - want).max() < 1e-4
    assert twin.input_shape == (None, 8, 8, 1)


@pytest.mark.parametrize("edit", ["fold", "prune", "lowrank", "sparsify"])
def test_what_the_techniques_leave_is_copied(torch_cnn, data, edit):
    model = copy.deepcopy(torch_cnn)
    x = torch.from_numpy(data[2][:32])
    if edit == "fold":
        fusion.fold_bn_(model)
    elif edit == "prune":
        pruning.prune_channels_(model, 0.5, x)
    elif edit == "lowrank":
        lowrank.factorize_(model, lowrank.choose_ranks(model, 0.9, only_if_cheaper=False))
    else:
        pruning.prune_unstructured_(model, 0.7, scope="global")
        pruning.make_permanent_(model)
    twin = EX.keras_from_torch(model, x)
    assert np.abs(_keras_out(twin, x) - _torch_out(model, x)).max() < 1e-4
    if edit == "fold":  # conv -> Identity (the BN) -> ReLU: the ReLU becomes the conv's
        convs = [layer for layer in twin.layers if type(layer).__name__ == "Conv2D"]
        assert all(c.activation.__name__ == "relu" for c in convs)
        assert not any(type(layer).__name__ == "BatchNormalization" for layer in twin.layers)


@pytest.mark.parametrize("layer", [
    nn.Conv2d(2, 3, 3, stride=2, padding=1),        # strided: explicit padding, "valid"
    nn.Conv2d(2, 3, (3, 1), padding=(1, 0)),        # rectangular, "same"
    nn.Conv2d(2, 3, 5, padding=1, bias=False),      # padding != k // 2
    nn.MaxPool2d(3, stride=1),
    nn.BatchNorm2d(2, affine=False),
])
def test_layer_geometry(layer):
    torch.manual_seed(0)
    if isinstance(layer, nn.BatchNorm2d):
        layer.running_mean.uniform_(-1, 1)
        layer.running_var.uniform_(0.5, 2)
    model = nn.Sequential(layer, nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    x = torch.randn(3, 2, 7, 7)
    model(x)  # materialise the lazy Linear
    twin = EX.keras_from_torch(model, x)
    assert np.abs(_keras_out(twin, x) - _torch_out(model, x)).max() < 1e-4


def test_mlp_twin_is_the_fusion_helper():
    from accel_lib.models import MLP

    torch.manual_seed(0)
    mlp = MLP().eval()
    x = torch.randn(5, 64)
    k = fusion.keras_mlp_from_torch(mlp)
    assert k.input_shape == (None, 64)
    assert [type(layer).__name__ for layer in k.layers] == ["Dense"] * 3  # ReLUs fused in
    assert np.abs(_keras_out(k, x) - _torch_out(mlp, x)).max() < 1e-4


def test_refusals():
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(self.a(x)) + x

    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="not a chain"):
        EX.keras_from_torch(Residual(), x)
    with pytest.raises(ValueError, match=r"'1' is Tanh; accepted: Conv2d"):
        EX.keras_from_torch(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), x)
    with pytest.raises(ValueError, match="groups=1"):
        EX.keras_from_torch(nn.Conv2d(2, 2, 3, groups=2), torch.randn(1, 2, 5, 5))
    with pytest.raises(ValueError, match="example must be"):
        EX.keras_from_torch(nn.Linear(4, 4), torch.randn(4))
    with pytest.raises(TypeError, match="model"):
        EX.keras_from_torch("model", x)


def test_quantized_model_is_refused(torch_cnn, digits_loader_train):
    from accel_lib import quantization as Q

    model = copy.deepcopy(torch_cnn)
    Q.ptq_(model, digits_loader_train, Q.QuantConfig(), max_batches=2)
    Q.convert_to_int_(model)
    with pytest.raises(ValueError, match="IntConv2d|IntLinear|a Keras twin cannot copy"):
        EX.keras_from_torch(model, torch.randn(2, 1, 8, 8))


@pytest.fixture(scope="module")
def digits_loader_train():
    from accel_lib.data import digits_loaders

    return digits_loaders(batch_size=64).train
