"""Tiny trained models shared by the export tests (session fixtures: trained once)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def data():
    from accel_lib import export as EX

    return EX.digits_arrays()


@pytest.fixture(scope="session")
def torch_cnn(data):
    """A SmallCNN(4, 8) trained 3 epochs on the digits, in eval mode."""
    from accel_lib import set_seed
    from accel_lib.data import digits_loaders
    from accel_lib.models import SmallCNN
    from accel_lib.train import TrainConfig, train

    set_seed(0)
    model = SmallCNN(channels=(4, 8))
    train(model, digits_loaders(batch_size=64).train,
          TrainConfig(epochs=3, lr=3e-3, device="cpu", progress=False))
    return model.eval()


@pytest.fixture(scope="session")
def onnx_file(torch_cnn, data, tmp_path_factory):
    from accel_lib import export as EX

    path = tmp_path_factory.mktemp("onnx") / "cnn.onnx"
    return EX.export_onnx(torch_cnn, torch.from_numpy(data[2][:1]), path)


@pytest.fixture(scope="session")
def keras_cnn(data):
    """A tf.keras SmallCNN(4, 8) trained 4 epochs on the digits (NHWC)."""
    from accel_lib import export as EX

    xtr, ytr = EX.to_nhwc(data[0]), data[1]
    return EX.train_keras(EX.keras_model("cnn", channels=(4, 8)), xtr, ytr, epochs=4)


@pytest.fixture(scope="session")
def lite(keras_cnn, data):
    """{mode: TFLite bytes} for every conversion mode."""
    from accel_lib import export as EX

    rep = EX.to_nhwc(data[0])
    return {m: EX.convert_tflite(keras_cnn, m, representative_data=rep)
            for m in EX.TFLITE_MODES}
