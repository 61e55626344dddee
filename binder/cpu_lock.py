"""Print requirements.lock as Binder installs it: the same versions, CPU-only PyTorch.

PyPI's torch wheel for Linux x86_64 is the CUDA build, and with it come the CUDA libraries
(nvidia-*, cuda-*) and triton: over 4 GB that only the CUDA build uses. Binder has no GPU, so
its image takes PyTorch's CPU-only builds of the *same* releases (torch==2.14.1+cpu: the lock's
version plus the local label "+cpu", from PyTorch's CPU index) and leaves the CUDA-only packages
out. Every other pin is printed unchanged. binder/postBuild runs

    python binder/cpu_lock.py requirements.lock > "$req" && python -m pip install -r "$req"

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Packages PyTorch also publishes as CPU-only builds, pinned here as "<lock version>+cpu".
CPU_BUILDS = {"torch", "torchvision"}
# Packages in the lock only because PyPI's torch is the CUDA build (normalised names).
CUDA_ONLY = re.compile(r"nvidia-.*|cuda-.*|triton")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def cpu_lock(lock_text: str) -> list[str]:
    """The lines of a requirements file: the CPU index, then the lock's pins for Binder."""
    lines = [f"--extra-index-url {CPU_INDEX}"]
    for line in lock_text.splitlines():
        pin = line.split("#", 1)[0].strip()
        if not pin:
            continue
        name, version = pin.split("==")
        if CUDA_ONLY.fullmatch(norm(name)):
            continue
        if norm(name) in CPU_BUILDS:
            version += "+cpu"
        lines.append(f"{name}=={version}")
    return lines


def main(argv: list[str]) -> None:
    lock = Path(argv[1] if len(argv) > 1 else "requirements.lock")
    print("\n".join(cpu_lock(lock.read_text())))


if __name__ == "__main__":
    main(sys.argv)
