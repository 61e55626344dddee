"""Seeds and devices: the two helpers every notebook calls first.

`set_seed` is the one place the course fixes randomness; `get_device` picks the fastest
device present (cuda -> mps -> cpu); `synchronize` waits for queued device work, which is
what makes a GPU timing honest.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ._validate import check_int

__all__ = ["set_seed", "get_device", "synchronize", "available_devices"]

_DEVICE_NAMES = ("auto", "cpu", "cuda", "mps")


def set_seed(seed: int = 0, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (every device) and return a seeded torch.Generator.

    Args:
        seed: a non-negative integer.
        deterministic: also ask PyTorch for deterministic kernels where it has them
            (``warn_only``, so an op without a deterministic kernel still runs).

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for data loaders and samplers.
    """
    check_int(seed, "seed", minimum=0)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[torch.device]:
    """Every device this machine can run on, CPU first."""
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if _mps_available():
        devices.append(torch.device("mps"))
    return devices


def get_device(name: str = "auto") -> torch.device:
    """Pick a device: ``"auto"`` gives cuda, then mps, then cpu, whichever is present first.

    Args:
        name: one of ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"`` (``"cuda:1"`` also works).

    Raises:
        ValueError: ``name`` is not a device name, or names a device this machine lacks.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, one of {_DEVICE_NAMES}, got {name!r}")
    kind = name.split(":", 1)[0]
    if kind not in _DEVICE_NAMES:
        raise ValueError(f"name must be one of {_DEVICE_NAMES} (optionally 'cuda:N'), got {name!r}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"name={name!r} asks for CUDA, but no CUDA device is available")
    if kind == "mps" and not _mps_available():
        raise ValueError(f"name={name!r} asks for MPS, but no MPS device is available")
    return torch.device(name)


def synchronize(device: torch.device | str | None = None) -> None:
    """Block until all queued work on ``device`` has finished (a no-op on CPU).

    GPU kernels launch asynchronously: without this, a timer measures the launch, not the work.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()
