"""The launcher: results in rank order, worker errors with their traceback, timeouts, no orphans."""

from __future__ import annotations

import multiprocessing.resource_tracker as rt
import os
from pathlib import Path

import pytest

from accel_lib import parallel as PA


def _children() -> list[int]:
    """Live child processes of this test process, except multiprocessing's resource tracker."""
    me, tracker = os.getpid(), getattr(rt._resource_tracker, "_pid", None)
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if int(fields[1]) == me and fields[0] != "Z" and pid != tracker:
            kids.append(pid)
    return kids


def test_results_come_back_in_rank_order_with_gloo():
    out = PA.launch(PA.spin_worker, 2, timeout=60)
    assert [r["rank"] for r in out] == [0, 1]
    assert {r["world_size"] for r in out} == {2}
    assert {r["backend"] for r in out} == {"gloo"}
    assert out[0]["pid"] != out[1]["pid"] != os.getpid()


def test_worker_error_carries_rank_and_traceback_and_leaves_no_orphans():
    with pytest.raises(PA.WorkerError) as info:
        PA.launch(PA.fail_worker, 2, (1,), timeout=60)
    assert info.value.rank == 1
    assert "ValueError: rank 1 was told to fail" in info.value.worker_traceback
    assert "fail_worker" in info.value.worker_traceback  # the worker's own frame
    assert _children() == []


def test_hung_workers_are_killed_after_the_timeout_and_leave_no_orphans():
    with pytest.raises(PA.WorkerTimeoutError, match="timeout=5"):
        PA.launch(PA.hang_worker, 2, (600.0,), timeout=5)
    assert _children() == []


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"world_size": 0}, ValueError, "world_size"),
    ({"world_size": 2.5}, TypeError, "world_size"),
    ({"world_size": 2, "backend": "mpi"}, ValueError, "backend"),
    ({"world_size": 2, "timeout": 0}, ValueError, "timeout"),
])
def test_bad_arguments_are_rejected_before_any_process_starts(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PA.launch(PA.spin_worker, **kwargs)
    assert _children() == []


def test_fn_must_be_callable():
    with pytest.raises(TypeError, match="fn"):
        PA.launch("spin_worker", 2)


def test_free_port_and_default_backend():
    assert 0 < PA.free_port() < 65536
    assert PA.default_backend() in PA.BACKENDS


def test_cpu_only_or_too_few_gpus_means_gloo():
    import torch

    if torch.cuda.device_count() < 3:
        assert PA.default_backend(3) == "gloo"
    assert PA.worker_device().type == "cpu"  # no process group here


def test_a_setup_failure_is_retried_then_reported(monkeypatch):
    from accel_lib.parallel import launcher

    calls = []

    def flaky(*args):
        calls.append(1)
        if len(calls) < 2:
            raise launcher._SetupError(0, "port taken")
        return ["ok"]

    monkeypatch.setattr(launcher, "_launch_once", flaky)
    assert PA.launch(PA.spin_worker, 1) == ["ok"] and len(calls) == 2

    def broken(*args):
        raise launcher._SetupError(0, "no network")

    monkeypatch.setattr(launcher, "_launch_once", broken)
    with pytest.raises(PA.WorkerError, match="no network"):
        PA.launch(PA.spin_worker, 1)
