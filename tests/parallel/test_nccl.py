"""The same workers on GPUs with NCCL (skipped without 2 CUDA devices: one GPU per rank)."""

from __future__ import annotations

import pytest
import torch

from accel_lib import parallel as PA

pytestmark = pytest.mark.skipif(torch.cuda.device_count() < 2,
                                reason="NCCL needs one CUDA device per rank (2 here)")


def test_nccl_is_the_default_and_the_ring_matches_it():
    assert PA.default_backend(2) == "nccl"
    per_rank = PA.launch(PA.ring_check_worker, 2, ((1, 7, 1000),), timeout=120)
    assert all(c["max_abs_diff"] <= 1e-6 for r in per_rank for c in r)


def test_ddp_on_gpus_matches_one_process():
    per_rank = PA.launch(PA.data_parallel_modes_worker, 2, (PA.MODES, 20, 64), timeout=180)
    single = PA.single_process_train(steps=20, batch_size=64)
    for res in per_rank:
        for mode in PA.MODES:
            assert max((res[mode]["state"][k] - v).abs().max().item()
                       for k, v in single["state"].items()) <= 1e-4


def test_model_parallel_on_gpus():
    per_rank = PA.launch(PA.model_parallel_demo_worker, 2, timeout=120)
    assert all(r["tensor"]["max_abs_diff"] <= 1e-4 for r in per_rank)
