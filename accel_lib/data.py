"""Data sets for the course, offline first.

The default, ``digits``, ships inside scikit-learn (1,797 8x8 handwritten digits), so every
notebook runs without a network. MNIST and CIFAR-10 come through torchvision when they
are already on disk, or when the caller asks to download them; when neither works the
loader says so and falls back to digits.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from ._validate import check_fraction, check_int

__all__ = ["DataSplits", "load_digits_arrays", "digits_loaders", "torchvision_loaders",
           "get_loaders", "DATASETS"]

DATASETS = ("digits", "mnist", "cifar10")


@dataclass(frozen=True)
class DataSplits:
    """Deterministic train / validation / test loaders and what they hold."""

    train: DataLoader
    val: DataLoader
    test: DataLoader
    name: str
    input_shape: tuple[int, ...]  # one example, e.g. (1, 8, 8)
    num_classes: int


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        check_fraction(f, name, zero=False)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")


def _check_batch_size(batch_size: int) -> None:
    check_int(batch_size, "batch_size")


def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The scikit-learn digits as ``X`` (N, 1, 8, 8) float32 in [0, 1] and ``y`` (N,) int64."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]  # (N, 1, 8, 8)
    return x, bunch.target.astype(np.int64)


def _loaders(train: Dataset, val: Dataset, test: Dataset, batch_size: int,
             seed: int) -> tuple[DataLoader, DataLoader, DataLoader]:
    generator = torch.Generator().manual_seed(seed)
    return (
        DataLoader(train, batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(val, batch_size=batch_size, shuffle=False),
        DataLoader(test, batch_size=batch_size, shuffle=False),
    )


def digits_loaders(
    batch_size: int = 64,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    flatten: bool = False,
) -> DataSplits:
    """Stratified, seeded train/val/test splits of the digits, standardised with train statistics.

    Args:
        batch_size: examples per batch.
        seed: fixes the split and the training shuffle order.
        val_fraction, test_fraction: shares of the 1,797 images held out.
        flatten: give (N, 64) vectors for an MLP instead of (N, 1, 8, 8) images.
    """
    from sklearn.model_selection import train_test_split

    _check_batch_size(batch_size)
    _check_fractions(val_fraction, test_fraction)
    x, y = load_digits_arrays()
    idx = np.arange(len(y))
    rest, test_idx = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                      stratify=y)
    train_idx, val_idx = train_test_split(
        rest, test_size=val_fraction / (1 - test_fraction), random_state=seed, stratify=y[rest])
    mean, std = x[train_idx].mean(), x[train_idx].std()
    x = (x - mean) / std
    if flatten:
        x = x.reshape(len(x), -1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def part(i: np.ndarray) -> TensorDataset:
        return TensorDataset(xt[i], yt[i])

    train, val, test = _loaders(part(train_idx), part(val_idx), part(test_idx), batch_size, seed)
    return DataSplits(train, val, test, "digits", tuple(x.shape[1:]), 10)


_TV_SPECS = {
    # name: (torchvision class name, mean, std, input shape)
    "mnist": ("MNIST", (0.1307,), (0.3081,), (1, 28, 28)),
    "cifar10": ("CIFAR10", (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616), (3, 32, 32)),
}


def torchvision_loaders(
    name: str,
    batch_size: int = 64,
    *,
    root: str | Path = "data",
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    fallback: bool = True,
) -> DataSplits:
    """MNIST or CIFAR-10 from ``root`` (downloaded only if ``download=True``).

    The official test split is the test set; ``val_fraction`` of the training split,
    chosen with ``seed``, is the validation set. If the files are not there and cannot be
    downloaded, a warning says so and (with ``fallback=True``) the digits are returned.
    """
    from torchvision import datasets, transforms

    if name not in _TV_SPECS:
        raise ValueError(f"name must be one of {tuple(_TV_SPECS)}, got {name!r}")
    _check_batch_size(batch_size)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    cls_name, mean, std, shape = _TV_SPECS[name]
    cls = getattr(datasets, cls_name)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    try:
        train_full = cls(str(root), train=True, download=download, transform=tf)
        test = cls(str(root), train=False, download=download, transform=tf)
    except (RuntimeError, OSError) as err:  # not on disk, or the download failed
        how = "could not be downloaded" if download else "is not in " + repr(str(root))
        message = (f"{name} {how} ({err}). Pass download=True to fetch it, or put the files "
                   f"under {str(root)!r}.")
        if not fallback:
            raise FileNotFoundError(message) from err
        warnings.warn(message + " Falling back to the bundled digits data set.", stacklevel=2)
        return digits_loaders(batch_size, seed=seed)
    order = torch.randperm(len(train_full), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, int(round(val_fraction * len(train_full))))
    val = Subset(train_full, order[:n_val].tolist())
    train = Subset(train_full, order[n_val:].tolist())
    loaders = _loaders(train, val, test, batch_size, seed)
    return DataSplits(*loaders, name, shape, 10)


def get_loaders(name: str = "digits", batch_size: int = 64, **kwargs: object) -> DataSplits:
    """Loaders for any course data set by name: ``digits`` (bundled), ``mnist``, ``cifar10``."""
    if name == "digits":
        return digits_loaders(batch_size, **kwargs)  # type: ignore[arg-type]
    if name in _TV_SPECS:
        return torchvision_loaders(name, batch_size, **kwargs)  # type: ignore[arg-type]
    raise ValueError(f"name must be one of {DATASETS}, got {name!r}")
