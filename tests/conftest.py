"""Shared fixtures for the library and course tests."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.gpu`` tests where there is no CUDA GPU (``make gpu-check`` runs them)."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run by make gpu-check)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    from accel_lib import set_seed

    set_seed(0)


@pytest.fixture(scope="session")
def digits():
    """The digits splits (batch 64, the default seed): the course's offline data set."""
    from accel_lib.data import digits_loaders

    return digits_loaders(batch_size=64)


@pytest.fixture(scope="session")
def trained_mlp(digits):
    """``(model, test accuracy)``: an MLP trained 4 epochs on the digits (seed 0).

    Shared: tests that change the model work on a ``copy.deepcopy`` of it.
    """
    from accel_lib import set_seed
    from accel_lib.models import MLP
    from accel_lib.train import TrainConfig, evaluate, train

    set_seed(0)
    model = MLP()
    train(model, digits.train, TrainConfig(epochs=4, lr=1e-2, progress=False))
    return model, evaluate(model, digits.test)
