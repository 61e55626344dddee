"""Device and dtype checks shared by the precision modules."""

from __future__ import annotations

import torch

AUTOCAST_DTYPES = {"cpu": (torch.bfloat16, torch.float16), "cuda": (torch.float16, torch.bfloat16)}
MATMUL_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.int8)


def check_device(device: torch.device | str) -> torch.device:
    """``device`` as a torch.device: ``"cpu"`` or ``"cuda"`` (present on this machine)."""
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a str or torch.device ('cpu' or 'cuda'), got "
                        f"{type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}") from err
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={str(device)!r} asks for CUDA, but no CUDA GPU is available "
                         "here: use device='cpu'")
    return dev


def check_dtype(dtype: object, allowed: tuple[torch.dtype, ...], name: str = "dtype",
                where: str = "") -> torch.dtype:
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"{name} must be a torch.dtype, one of {[str(d) for d in allowed]}, "
                        f"got {type(dtype).__name__}")
    if dtype not in allowed:
        raise ValueError(f"{name} must be one of {[str(d) for d in allowed]}{where}, got {dtype}")
    return dtype
