"""Seeds, devices and CPUs: the helpers every notebook calls first.

`set_seed` is the one place the course fixes randomness; `get_device` picks the fastest
device present (cuda -> mps -> cpu); `synchronize` waits for queued device work, which is
what makes a GPU timing honest; `usable_cpus` says how many threads this process can really
run at once (the CPU quota of a container, not the host's core count); `cpu_features` says
which of the instructions that make int8, bf16 and fp16 fast this CPU has.
"""

from __future__ import annotations

import math
import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

from ._validate import check_int

__all__ = ["set_seed", "get_device", "synchronize", "available_devices", "usable_cpus",
           "cpu_features", "cpu_model", "INT8_DOT_FLAGS", "BF16_FLAGS", "FP16_FLAGS"]

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


# Where Linux exposes the control groups; module attributes so tests can point them elsewhere.
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_PROC_SELF_CGROUP = Path("/proc/self/cgroup")
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _quota_cpus(quota: str, period: str) -> float | None:
    """CPUs granted by ``quota`` microseconds of CPU time per ``period`` (None: unlimited)."""
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:  # "max" (v2) or garbage: no limit
        return None
    if quota_us <= 0 or period_us <= 0:  # -1 (v1): no limit
        return None
    return quota_us / period_us


def _own_dirs(mount: Path, cgroup_path: str) -> list[Path]:
    """The process's cgroup directory under ``mount`` and its ancestors up to ``mount``.

    Inside a container the cgroup namespace usually makes the path ``/`` (the mount is the
    container's own group); without one the host's path may not exist under the mount, and
    then the mount itself is the group to read.
    """
    dirs = [mount]
    parts = [p for p in cgroup_path.strip().split("/") if p]
    for i in range(1, len(parts) + 1):
        candidate = mount.joinpath(*parts[:i])
        if not candidate.is_dir():
            break
        dirs.append(candidate)
    return dirs


def _group_cpus(directory: Path, version: int) -> float | None:
    """The CPU quota set on one cgroup directory, in CPUs (None: none set or unreadable)."""
    if version == 2:  # cpu.max: "<quota_us> <period_us>" or "max <period_us>"
        fields = (_read(directory / "cpu.max") or "").split()
        return _quota_cpus(*fields) if len(fields) == 2 else None
    quota, period = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    return _quota_cpus(quota, period) if quota and period else None


def _cgroup_cpu_limit(root: Path = _CGROUP_ROOT,
                      proc_self_cgroup: Path = _PROC_SELF_CGROUP) -> float | None:
    """The tightest CPU quota of this process's control groups, in CPUs (None: no quota).

    ``proc_self_cgroup`` lists the process's groups, one ``id:controllers:path`` per line:
    ``0::path`` is cgroup v2 (``cpu.max``), a line whose controllers include ``cpu`` is
    cgroup v1 (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``, ``-1`` = no limit). A quota
    on an ancestor group applies too, so the smallest one found wins.
    """
    text = _read(proc_self_cgroup)
    if text is None:
        return None
    limits = []
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        hierarchy, controllers, path = fields
        if hierarchy == "0" and controllers == "":
            version, mounts = 2, [root / "unified", root]  # hybrid systems mount v2 at unified/
        elif "cpu" in controllers.split(","):
            version, mounts = 1, [root / name for name in _V1_CPU_DIRS]
        else:
            continue
        mount = next((m for m in mounts if m.is_dir()), None)
        if mount is None:
            continue
        for directory in _own_dirs(mount, path):
            cpus = _group_cpus(directory, version)
            if cpus is not None:
                limits.append(cpus)
    return min(limits) if limits else None


def usable_cpus() -> int:
    """How many CPUs this process can really use at once: the thread count worth asking for.

    ``os.cpu_count()`` counts the host's cores. A container (Binder, CI, a cluster job) may
    be pinned to fewer (CPU affinity) or given a share of time (a cgroup CPU quota: 1.5
    CPUs = 150 ms of CPU time per 100 ms); more threads than that only queue for the
    same CPUs and run *slower*. This returns the smallest of

    * the CPUs the process may run on, ``len(os.sched_getaffinity(0))`` (Linux),
    * the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``),
      rounded up (a fractional quota still lets that many threads make progress),

    falling back to ``os.cpu_count()`` where neither exists (macOS, Windows). At least 1.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_limit(_CGROUP_ROOT, _PROC_SELF_CGROUP)
    if quota is not None:
        cpus = min(cpus, math.ceil(quota))
    return max(1, cpus)


# CPU feature flags (as Linux's /proc/cpuinfo spells them) that decide low-precision speed.
INT8_DOT_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni", "i8mm", "asimddp")  # int8 dot products
BF16_FLAGS = ("amx_bf16", "avx512_bf16", "bf16")  # bf16 arithmetic (x86, Arm)
FP16_FLAGS = ("amx_fp16", "avx512_fp16", "asimdhp")  # fp16 arithmetic (x86, Arm)

# torch's own CPU probes (private, x86 only): the fallback where /proc/cpuinfo is missing.
_TORCH_PROBES = {"avx2": "_is_avx2_supported", "avx512f": "_is_avx512_supported",
                 "avx512_vnni": "_is_vnni_supported", "avx512_bf16": "_is_avx512_bf16_supported",
                 "amx_tile": "_is_amx_tile_supported", "amx_fp16": "_is_amx_fp16_supported"}


def _flags_from_cpuinfo(text: str) -> frozenset[str] | None:
    """The flags of the first processor in a /proc/cpuinfo text (x86 ``flags``, Arm
    ``Features``), or None if it lists none."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() in ("flags", "features"):
            return frozenset(value.lower().split())
    return None


def cpu_model(cpuinfo: str | Path = "/proc/cpuinfo") -> str:
    """The CPU's model name (Linux's ``model name`` line, e.g. ``"Intel(R) Xeon(R) ..."``),
    else what :mod:`platform` knows (``"x86_64"`` at worst): what a timing belongs to."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine()


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The CPU's feature flags, lower case as Linux spells them (``"avx2"``, ``"avx512_vnni"``,
    ``"amx_bf16"``, Arm's ``"asimddp"``...), or None where they cannot be known.

    Read from ``cpuinfo`` (Linux); elsewhere on x86, from PyTorch's own CPU probes (fewer
    flags: AVX2, AVX-512, VNNI, AVX-512 BF16, AMX); None on other systems. Compare with
    :data:`INT8_DOT_FLAGS`, :data:`BF16_FLAGS`, :data:`FP16_FLAGS`.
    """
    try:
        flags = _flags_from_cpuinfo(Path(cpuinfo).read_text(errors="replace"))
    except OSError:
        flags = None
    if flags is not None:
        return flags
    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return None
    probes = {flag: getattr(torch.cpu, fn, None) for flag, fn in _TORCH_PROBES.items()}
    if any(p is None for p in probes.values()):
        return None
    found = {flag for flag, probe in probes.items() if probe()}
    if "amx_tile" in found:  # every CPU with AMX tiles so far has the int8 and bf16 ones
        found |= {"amx_int8", "amx_bf16"}
    return frozenset(found)
