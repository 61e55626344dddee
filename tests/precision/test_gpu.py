"""GPU-only checks (``@pytest.mark.gpu``: skipped without CUDA, run by ``make gpu-check``)."""

import math

import pytest
import torch
from torch import nn

from accel_lib import precision as PR
from accel_lib.models import SmallCNN

pytestmark = pytest.mark.gpu


def test_autocast_fp16_training_on_cuda(digits):
    r = PR.train_mixed(SmallCNN(), digits, torch.float16, "cuda", epochs=2)
    assert r.accuracy > 0.8 and r.scales


def test_autocast_bf16_on_cuda(digits):
    assert PR.train_mixed(SmallCNN(), digits, torch.bfloat16, "cuda", epochs=2).accuracy > 0.8


def test_grad_scaler_on_cuda_equals_loss_scaler():
    stream = [1.0] * 4 + [math.inf] + [1.0] * 5 + [1e36, 0.5, 0.5]
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**10, growth_interval=3)
    w = nn.Parameter(torch.zeros(1, device="cuda"))
    opt = torch.optim.SGD([w], lr=1e-3)
    theirs = []
    for g in stream:
        before = w.detach().clone()
        opt.zero_grad()
        s = scaler.get_scale()
        scaler.scale((w * torch.tensor([g], device="cuda")).sum()).backward()
        scaler.step(opt)
        scaler.update()
        theirs.append((s, bool(torch.equal(before, w.detach()))))
    assert theirs == PR.loss_scaler_decisions(stream, init_scale=2.0**10, growth_interval=3)


def test_fp16_matmul_on_tensor_cores_and_tf32():
    peaks = PR.dtype_peaks("cuda", n=4096, dtypes=(torch.float32, torch.float16,
                                                   torch.bfloat16))
    assert all(v and v > 0 for v in peaks.values())
    assert PR.tf32_ratio(n=2048, repeats=3) > 0
    assert PR.hardware_report().gpu_name is not None
