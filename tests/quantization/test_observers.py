"""Calibration observers against torch.ao's, and their range choices."""

from __future__ import annotations

import warnings

import numpy as np
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


# ------------------------------------------------------- sampling under a budget

def _wide_then_narrow() -> list[torch.Tensor]:
    """One wide batch (sigma 10) and seven narrow ones (sigma 1), 10,000 values each."""
    g = torch.Generator().manual_seed(0)
    return [torch.randn(10_000, generator=g) * 10] + \
        [torch.randn(10_000, generator=g) for _ in range(7)]


@pytest.mark.parametrize("reverse", [False, True])
def test_percentile_under_a_budget_does_not_depend_on_batch_order(reverse):
    """A uniform sample of all 80,000 values: the 99th percentile is numpy's over all of them
    (14.2) within sampling error, first batch wide or last (the halving scheme gave 2.3 and
    20.4)."""
    batches = _wide_then_narrow()
    expected = np.percentile(torch.cat(batches).numpy(), 99)
    obs = PercentileObserver(99, max_samples=10_000)
    for x in reversed(batches) if reverse else batches:
        obs(x)
    assert obs.range()[1].item() == pytest.approx(expected, rel=0.1)


@pytest.mark.parametrize("name", ["percentile", "mse"])
@pytest.mark.parametrize("reverse", [False, True])
def test_sample_budget_is_kept_exactly_and_every_batch_weighs_the_same(name, reverse):
    """The first batch's values lie in [100, 101), the others' in [0, 1): whatever the order,
    one sampled value in eight comes from it, and the sample holds exactly the budget."""
    g = torch.Generator().manual_seed(1)
    batches = [torch.rand(7_500, generator=g) + 100] + \
        [torch.rand(7_500, generator=g) for _ in range(7)]
    obs = make_observer(name, max_samples=1_000)
    for x in reversed(batches) if reverse else batches:
        obs(x)
    assert obs.samples.shape == (1, 1_000)
    assert (obs.samples >= 100).float().mean().item() == pytest.approx(1 / 8, abs=0.04)


def test_per_channel_sampling_keeps_a_budget_and_each_columns_channels_together():
    obs = PercentileObserver(99, axis=1, max_samples=1_001)
    for _ in range(5):
        x = torch.randn(400, 1)
        obs(torch.cat([x, -2 * x, x + 5], dim=1))  # (N, 3): channels tied to one another
    s = obs.samples
    assert s.shape == (3, 333)  # 1,001 // 3 columns of three channels
    assert torch.equal(s[1], -2 * s[0]) and torch.equal(s[2], s[0] + 5)
    with pytest.raises(ValueError, match="max_samples"):
        PercentileObserver(axis=0, max_samples=2)(torch.randn(3, 4))


def test_everything_is_kept_exactly_while_it_fits():
    batches = [torch.randn(300) * (i + 1) for i in range(4)]
    obs = PercentileObserver(99.9, max_samples=1_200)
    for x in batches:
        obs(x)
    both = torch.cat(batches)
    assert torch.equal(obs.samples, both.reshape(1, -1))
    assert obs.range()[1].item() == torch.quantile(both.double(), 0.999).float().item()


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
    with pytest.raises(TypeError, match=r"percentile must be a number in \(50, 100\], got str"):
        PercentileObserver("99.9")  # was "'<' not supported between 'int' and 'str'"
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(0.0)


