import struct
import warnings

import numpy as np
import pytest
import torch

from accel_lib.data import digits_loaders, get_loaders, load_digits_arrays, torchvision_loaders


def test_digits_arrays_shapes_and_range():
    x, y = load_digits_arrays()
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and set(np.unique(y)) == set(range(10))


def test_digits_loaders_split_sizes_disjoint_and_stratified():
    splits = digits_loaders(batch_size=32, seed=0)
    sizes = [len(loader.dataset) for loader in (splits.train, splits.val, splits.test)]
    assert sum(sizes) == 1797 and sizes[2] == pytest.approx(0.15 * 1797, abs=1)
    rows = [{tuple(r.flatten().tolist()) for r in loader.dataset.tensors[0]}
            for loader in (splits.train, splits.test)]
    assert len(rows[0] & rows[1]) < 5  # duplicates exist in digits; splits are by index
    test_labels = splits.test.dataset.tensors[1]
    assert torch.bincount(test_labels).min() >= 20  # every class present in test
    assert splits.input_shape == (1, 8, 8) and splits.num_classes == 10


def test_digits_loaders_are_deterministic():
    a = next(iter(digits_loaders(seed=3).train))[1]
    b = next(iter(digits_loaders(seed=3).train))[1]
    c = next(iter(digits_loaders(seed=4).train))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_digits_loaders_standardised_with_train_statistics():
    splits = digits_loaders(flatten=True)
    x = splits.train.dataset.tensors[0]
    assert x.shape[1] == 64
    assert abs(x.mean().item()) < 1e-5 and x.std().item() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "kwargs, word",
    [({"batch_size": 0}, "batch_size"), ({"val_fraction": 1.2}, "val_fraction"),
     ({"val_fraction": 0.6, "test_fraction": 0.5}, "val_fraction \\+ test_fraction")],
)
def test_digits_loaders_reject_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        digits_loaders(**kwargs)


def test_get_loaders_unknown_name():
    with pytest.raises(ValueError, match="name must be one of"):
        get_loaders("imagenet")


def test_missing_mnist_falls_back_to_digits_with_a_message(tmp_path):
    with pytest.warns(UserWarning, match="mnist is not in .*Falling back"):
        splits = torchvision_loaders("mnist", root=tmp_path)
    assert splits.name == "digits"


def test_missing_mnist_without_fallback_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        torchvision_loaders("mnist", root=tmp_path, fallback=False)


def _write_idx(path, array):
    dims = array.shape
    code = 0x08  # unsigned byte
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, code, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(array.astype(np.uint8).tobytes())


def test_mnist_on_disk_is_loaded_by_the_real_code(tmp_path):
    """A tiny MNIST in the official file format: the loader reads it, nothing downloads."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 40), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28)))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning allowed
        splits = torchvision_loaders("mnist", batch_size=8, root=tmp_path, val_fraction=0.25)
    assert splits.name == "mnist" and splits.input_shape == (1, 28, 28)
    assert len(splits.train.dataset) == 30 and len(splits.val.dataset) == 10
    x, y = next(iter(splits.test))
    assert x.shape == (8, 1, 28, 28) and y.tolist() == list(range(8))
