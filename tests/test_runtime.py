import os
import random

import numpy as np
import pytest
import torch

from accel_lib.runtime import available_devices, get_device, set_seed, synchronize


def test_set_seed_makes_every_generator_repeat():
    g1 = set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g1))
    g2 = set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g2))
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("0", TypeError),
                                        (True, TypeError)])
def test_set_seed_rejects_bad_seed(bad, error):
    with pytest.raises(error, match="seed"):
        set_seed(bad)


def test_get_device_auto_prefers_cuda_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else None
    device = get_device()
    if expected:
        assert device.type == expected
    assert device in [torch.device(d.type) for d in available_devices()]
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad, error", [("gpu", ValueError), ("tpu", ValueError), (3, TypeError)])
def test_get_device_rejects_unknown_names(bad, error):
    with pytest.raises(error, match="name"):
        get_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_get_device_cuda_missing_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        get_device("cuda")


def test_synchronize_on_cpu_is_a_no_op():
    synchronize("cpu")
    synchronize(None)


def test_check_int_names_the_parameter_and_range():
    from accel_lib._validate import check_int

    assert check_int(3, "rank") == 3 and check_int(0, "seed", minimum=0) == 0
    for bad, minimum, error, message in [
            (0, 1, ValueError, "rank must be a positive int, got 0"),
            (-1, 0, ValueError, "rank must be a non-negative int, got -1"),
            (8, 16, ValueError, "rank must be an int >= 16, got 8"),
            (True, 1, TypeError, "rank must be a positive int, got bool True"),
            (2.0, 1, TypeError, "rank must be a positive int, got float 2.0")]:
        with pytest.raises(error, match=message):
            check_int(bad, "rank", minimum=minimum)


# usable_cpus: the CPU quota, from fake /sys/fs/cgroup trees (tmp_path), never the host's.

def _fake_cgroups(tmp_path, proc_lines, files):
    root = tmp_path / "cgroup"
    root.mkdir()
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text("\n".join(proc_lines) + "\n")
    return root, proc


@pytest.mark.parametrize("proc_lines, files, expected", [
    # cgroup v2 inside a container (cgroup namespace: path "/")
    (["0::/"], {"cpu.max": "150000 100000"}, 1.5),
    (["0::/"], {"cpu.max": "max 100000"}, None),
    (["0::/"], {"cpu.max": "200000 50000"}, 4.0),
    # v2 without a namespace: the process's group and its parents; the tightest wins
    (["0::/user.slice/job"], {"cpu.max": "max 100000", "user.slice/cpu.max": "300000 100000",
                              "user.slice/job/cpu.max": "100000 100000"}, 1.0),
    (["0::/user.slice/job"], {"cpu.max": "50000 100000", "user.slice/job/cpu.max": "max 100000"},
     0.5),
    # v2, the host path is not under the mount: the mount is the process's own group
    (["0::/system.slice/docker-abc.scope"], {"cpu.max": "200000 100000"}, 2.0),
    # v1: cfs quota over period, -1 = unlimited; the controller directory varies
    (["4:cpu,cpuacct:/", "3:memory:/"], {"cpu,cpuacct/cpu.cfs_quota_us": "250000",
                                         "cpu,cpuacct/cpu.cfs_period_us": "100000"}, 2.5),
    (["1:cpu:/"], {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"}, None),
    (["2:cpuacct,cpu:/docker/x"], {"cpuacct,cpu/docker/x/cpu.cfs_quota_us": "100000",
                                   "cpuacct,cpu/docker/x/cpu.cfs_period_us": "100000"}, 1.0),
    # hybrid: v1 controllers plus v2 at unified/ (no cpu controller there)
    (["1:cpu:/", "0::/"], {"cpu/cpu.cfs_quota_us": "50000", "cpu/cpu.cfs_period_us": "100000",
                           "unified/cgroup.procs": ""}, 0.5),
    # nothing readable, or garbage: no quota
    (["0::/"], {}, None),
    (["0::/"], {"cpu.max": "lots"}, None),
    (["not a cgroup line"], {"cpu.max": "100000 100000"}, None),
    (["5:memory:/"], {"memory/memory.limit_in_bytes": "1"}, None),
])
def test_cgroup_cpu_limit_reads_v1_and_v2_quotas(tmp_path, proc_lines, files, expected):
    from accel_lib.runtime import _cgroup_cpu_limit

    root, proc = _fake_cgroups(tmp_path, proc_lines, files)
    assert _cgroup_cpu_limit(root, proc) == expected


def test_cgroup_cpu_limit_without_proc_file_is_none(tmp_path):
    from accel_lib.runtime import _cgroup_cpu_limit

    assert _cgroup_cpu_limit(tmp_path, tmp_path / "missing") is None


@pytest.mark.parametrize("affinity, quota_line, cpu_count, expected", [
    ({0, 1, 2, 3, 4, 5, 6, 7}, "200000 100000", 64, 2),  # Binder-like: quota 2 of a big host
    ({0, 1, 2, 3, 4, 5, 6, 7}, "150000 100000", 64, 2),  # a fractional quota rounds up
    ({0, 1, 2, 3, 4, 5, 6, 7}, "10000 100000", 64, 1),   # never below 1
    ({3, 5}, "max 100000", 64, 2),                       # pinned to two CPUs, no quota
    ({0, 1, 2, 3}, "800000 100000", 64, 4),              # quota above the affinity
    (None, "max 100000", 6, 6),                          # no sched_getaffinity (macOS)
    (None, "200000 100000", 6, 2),
    (None, "max 100000", None, 1),                       # os.cpu_count() unknown
])
def test_usable_cpus_is_the_smallest_of_affinity_and_quota(tmp_path, monkeypatch, affinity,
                                                          quota_line, cpu_count, expected):
    from accel_lib import runtime

    root, proc = _fake_cgroups(tmp_path, ["0::/"], {"cpu.max": quota_line})
    monkeypatch.setattr(runtime, "_CGROUP_ROOT", root)
    monkeypatch.setattr(runtime, "_PROC_SELF_CGROUP", proc)
    if affinity is None:
        monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    else:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(affinity))
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)
    assert runtime.usable_cpus() == expected


def test_usable_cpus_on_this_machine_is_within_the_core_count():
    from accel_lib.runtime import usable_cpus

    cpus = usable_cpus()
    assert isinstance(cpus, int) and 1 <= cpus <= (os.cpu_count() or cpus)


def test_cpu_features_reads_x86_and_arm_flags(tmp_path):
    from accel_lib.runtime import cpu_features

    x86 = tmp_path / "x86"
    x86.write_text("processor\t: 0\nflags\t\t: fpu AVX2 avx512_vnni amx_bf16\n\n"
                   "processor\t: 1\nflags\t\t: fpu\n")
    assert cpu_features(x86) == {"fpu", "avx2", "avx512_vnni", "amx_bf16"}
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd asimddp bf16\n")
    assert cpu_features(arm) == {"fp", "asimd", "asimddp", "bf16"}


def test_cpu_features_falls_back_when_cpuinfo_is_missing(tmp_path, monkeypatch):
    import platform

    from accel_lib.runtime import cpu_features

    missing = tmp_path / "none"
    monkeypatch.setattr(platform, "machine", lambda: "arm64")
    assert cpu_features(missing) is None  # not x86: unknown, never a guess
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    flags = cpu_features(missing)
    assert flags is not None and flags <= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                           "amx_tile", "amx_fp16", "amx_int8", "amx_bf16"}
    assert ("avx2" in flags) == torch.cpu._is_avx2_supported()


def test_cpu_model_reads_the_model_name_line_or_falls_back(tmp_path):
    import platform

    from accel_lib.runtime import cpu_model

    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                    "model name\t: AMD EPYC 7B13 64-Core Processor\nflags\t\t: fpu avx2\n")
    assert cpu_model(info) == "AMD EPYC 7B13 64-Core Processor"
    info.write_text("processor\t: 0\nflags\t\t: fpu\n")  # no model name (e.g. some Arm boards)
    assert cpu_model(info) == (platform.processor() or platform.machine())
    assert cpu_model(tmp_path / "missing") == (platform.processor() or platform.machine())
