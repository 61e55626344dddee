import math

import pytest
import torch
from torch import nn

from accel_lib import precision as PR

STREAM = ([1.0] * 5 + [math.inf] + [1.0] * 7 + [math.nan, 1e36, 1e36] + [0.5] * 9
          + [-math.inf, 2.0, 3.0])


@pytest.mark.parametrize("interval,growth,backoff", [(3, 2.0, 0.5), (2, 3.0, 0.25), (1, 2.0, 0.5)])
def test_loss_scaler_makes_grad_scalers_decisions(interval, growth, backoff):
    kw = dict(growth_interval=interval, growth_factor=growth, backoff_factor=backoff)
    ours = PR.loss_scaler_decisions(STREAM, **kw)
    theirs = PR.grad_scaler_decisions(STREAM, **kw)
    assert ours == theirs
    assert any(skip for _, skip in ours) and not all(skip for _, skip in ours)


def test_scaler_update_hand_cases():
    assert PR.scaler_update(8.0, 0, True) == (4.0, 0)
    assert PR.scaler_update(8.0, 1, False, growth_interval=3) == (8.0, 2)
    assert PR.scaler_update(8.0, 2, False, growth_interval=3) == (16.0, 0)
    assert PR.scaler_update(8.0, 2, True, growth_interval=3) == (4.0, 0)  # tracker reset
    assert PR.scaler_update(3e38, 0, False, growth_interval=1) == (3e38, 0)  # stays finite


def test_loss_scaler_arguments():
    with pytest.raises(ValueError, match="backoff_factor"):
        PR.LossScaler(backoff_factor=2.0)
    with pytest.raises(ValueError, match="growth_interval"):
        PR.LossScaler(growth_interval=0)
    with pytest.raises(RuntimeError, match="step"):
        PR.LossScaler().update()


def test_master_weights_keep_small_updates_a_16bit_model_loses():
    p = nn.Parameter(torch.ones(4, dtype=torch.float16))
    p.grad = torch.full((4,), 1e-4, dtype=torch.float16)
    master = [p.detach().float().clone()]
    for _ in range(100):
        PR.master_weight_step([p], master, lr=1.0)
    assert master[0][0].item() == pytest.approx(1 - 100 * float(p.grad[0]), rel=1e-5)
    assert p[0].item() == pytest.approx(0.99, abs=1e-3)
    q = torch.ones(4, dtype=torch.float16)
    for _ in range(100):
        q -= 1.0 * torch.full((4,), 1e-4, dtype=torch.float16)  # 1 - 1e-4 rounds back to 1
    assert q[0].item() == 1.0
    with pytest.raises(ValueError, match="float32"):
        PR.master_weight_step([p], [p.detach().clone()], lr=1.0)


def test_master_weights_class_with_scaler():
    torch.manual_seed(0)
    model = nn.Linear(4, 2).half()
    mw = PR.MasterWeights(model, lambda ps: torch.optim.SGD(ps, lr=0.1))
    scaler = PR.LossScaler(init_scale=1024.0)
    x = torch.randn(8, 4)
    before = [m.clone() for m in mw.master]
    loss = model(x.half()).float().pow(2).mean()
    scaler.scale(loss).backward()
    assert mw.step(scaler) and scaler.update() is None
    assert all(not torch.equal(a, b) for a, b in zip(before, mw.master, strict=True))
    assert all(torch.equal(p, m.half()) for p, m in zip(mw.params, mw.master, strict=True))
