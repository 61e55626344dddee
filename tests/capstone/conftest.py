"""A small trained CNN on the digits, shared by the capstone tests (trained once)."""

from __future__ import annotations

import pytest

from accel_lib.capstone import PipelineData
from accel_lib.data import digits_loaders
from accel_lib.models import SmallCNN
from accel_lib.runtime import set_seed
from accel_lib.train import TrainConfig, train


@pytest.fixture(scope="session")
def digits_data() -> PipelineData:
    d = digits_loaders(64)
    return PipelineData(d.train, d.test, next(iter(d.test))[0])


@pytest.fixture(scope="session")
def trained_cnn(digits_data):
    set_seed(0)
    model = SmallCNN(channels=(16, 32))
    train(model, digits_data.train, TrainConfig(epochs=4, lr=1e-2, progress=False))
    return model.eval()
