"""torchrun runs the data-parallel script; TensorFlow's MirroredStrategy matches one device."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from accel_lib import parallel as PA

ROOT = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).with_name("torchrun")


def _env() -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def test_torchrun_two_processes_trains_like_one_process(tmp_path):
    args = ["-m", "accel_lib.parallel.ddp_script", "--steps", "20", "--batch-size", "64"]
    two = subprocess.run([str(TORCHRUN), "--standalone", "--nproc-per-node", "2", *args,
                          "--out", str(tmp_path / "two.pt")], capture_output=True, text=True,
                         timeout=180, env=_env(), cwd=ROOT)
    assert two.returncode == 0, two.stderr[-3000:]
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one.pt")],
                         capture_output=True, text=True, timeout=120, env=_env(), cwd=ROOT)
    assert one.returncode == 0, one.stderr[-3000:]
    summary = json.loads(two.stdout.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["steps"] == 20
    assert json.loads(one.stdout.strip().splitlines()[-1])["world_size"] == 1
    a, b = torch.load(tmp_path / "two.pt"), torch.load(tmp_path / "one.pt")
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-5


def test_script_docstring_documents_single_and_multi_node():
    from accel_lib.parallel import ddp_script

    doc = ddp_script.__doc__
    assert "torchrun --standalone --nproc-per-node 2" in doc
    assert "--nnodes" in doc and "--rdzv-backend c10d" in doc and "--rdzv-endpoint" in doc


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    res = PA.mirrored_vs_single(steps=5)
    assert res["replicas"] == 2
    assert res["max_abs_diff"] <= 1e-5
