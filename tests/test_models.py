import pytest
import torch

from accel_lib.models import MLP, SmallCNN, build_model, vision_model


def test_mlp_shapes_and_layers():
    model = MLP(64, (32, 16), 10)
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(64, 32), (32, 16), (16, 10)]


def test_small_cnn_shapes():
    model = SmallCNN(in_channels=1, num_classes=10, channels=(8, 16), image_size=8)
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    assert SmallCNN(in_channels=3, image_size=32)(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_models_reject_wrong_input_shapes():
    with pytest.raises(ValueError, match="x must have shape"):
        SmallCNN()(torch.randn(2, 1, 9, 9))
    with pytest.raises(ValueError, match="x must have 64 features"):
        MLP()(torch.randn(2, 10))


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda: MLP(hidden_sizes=()), "hidden_sizes"),
        (lambda: MLP(in_features=0), "in_features"),
        (lambda: SmallCNN(channels=(8, -1)), "channels"),
        (lambda: SmallCNN(image_size=1), "image_size"),
        (lambda: build_model("transformer"), "name must be one of"),
        (lambda: vision_model("resnet1000"), "torchvision classification model"),
    ],
)
def test_bad_model_arguments(call, word):
    with pytest.raises(ValueError, match=word):
        call()


def test_build_model_and_vision_model():
    assert isinstance(build_model("mlp", hidden_sizes=(8,)), MLP)
    assert isinstance(build_model("cnn"), SmallCNN)
    model = vision_model("resnet18", num_classes=7).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
