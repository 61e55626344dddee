"""Calibration observers against torch.ao's, and their range choices."""

from __future__ import annotations

import warnings

import pytest
import torch

from accel_lib.quantization import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    make_observer,
    quantization_mse,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch.ao.quantization as tq


# ------------------------------------------------------------------------ observers

def test_moving_average_observer_matches_torch():
    ref = tq.MovingAverageMinMaxObserver(averaging_constant=0.1)
    mine = MovingAverageMinMaxObserver(0.1)
    for i in range(5):
        x = torch.randn(100) * (i + 1)
        ref(x)
        mine(x)
    lo, hi = mine.range()
    assert torch.allclose(lo, ref.min_val) and torch.allclose(hi, ref.max_val)


def test_per_channel_minmax_observer_across_batches():
    obs = MinMaxObserver(axis=1)
    a, b = torch.randn(8, 3, 4), torch.randn(8, 3, 4) * 5
    obs(a)
    obs(b)
    both = torch.cat([a, b]).transpose(0, 1).reshape(3, -1)
    lo, hi = obs.range()
    assert torch.equal(lo, both.amin(1)) and torch.equal(hi, both.amax(1))
    with pytest.raises(ValueError, match="channels"):
        obs(torch.randn(8, 4, 4))


def test_percentile_observer_clips_outliers_minmax_does_not():
    x = torch.randn(10_000)
    x[0] = 100.0
    pct, mm = PercentileObserver(99.9), MinMaxObserver()
    pct(x)
    mm(x)
    assert mm.range()[1] == 100.0
    lo, hi = pct.range()
    assert hi.item() == pytest.approx(torch.quantile(x.double(), 0.999).item(), rel=1e-5)
    inliers = x[1:]  # the one clipped outlier pays, every other value gets a finer step
    assert quantization_mse(inliers, pct.qparams(8)) < quantization_mse(inliers, mm.qparams(8)) / 10


def test_mse_observer_never_worse_than_minmax_and_clips_more_at_low_bits():
    x = torch.distributions.Laplace(0.0, 1.0).sample((20_000,))
    mse, mm = MSEObserver(grid=50), MinMaxObserver()
    mse(x)
    mm(x)
    for bits in (3, 8):
        assert quantization_mse(x, mse.qparams(bits)) <= quantization_mse(x, mm.qparams(bits))
    assert mse.range(3)[1] < mse.range(8)[1] < mm.range()[1]
    per_channel = MSEObserver(grid=20, axis=0)
    per_channel(torch.randn(4, 100))
    assert per_channel.qparams(4).scale.shape == (4,)


def test_observer_bad_inputs():
    for name in ("minmax", "moving_average", "percentile", "mse"):
        obs = make_observer(name)
        with pytest.raises(ValueError, match="observed no data"):
            obs.qparams(8)
        with pytest.raises(ValueError, match="empty"):
            obs.update(torch.empty(0))
    with pytest.raises(ValueError, match="observer must be one of"):
        make_observer("histogram")
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(20)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(0.0)


