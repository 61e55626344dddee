"""What a step costs: every implementation computes the same step; state and temporaries."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib import optim as O


@pytest.mark.parametrize("name,hyper", [("adam", {"lr": 1e-2, "weight_decay": 1e-2}),
                                        ("adamw", {"lr": 1e-2}),
                                        ("sgd", {"lr": 0.1, "momentum": 0.9})])
def test_every_step_variant_computes_the_same_step(name, hyper):
    params = O.many_small_params(12, (5, 3))
    variants = O.step_variants(params, name, **hyper)
    assert {"torch loop", "torch foreach", "own loop", "own foreach"} <= set(variants)
    assert ("torch fused" in variants) == O.fused_available(name)
    for opt in variants.values():
        for _ in range(5):
            opt.step()
    expected = [p.detach() for p in variants["torch loop"].param_groups[0]["params"]]
    for variant, opt in variants.items():
        got = [p.detach() for p in opt.param_groups[0]["params"]]
        for a, b in zip(got, expected, strict=True):
            if variant == "torch fused":  # its own kernel: a different order of operations
                torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
            else:
                assert torch.equal(a, b), variant
    assert all(p.grad is not None for p in params), "the originals are untouched"
    assert all(p.abs().sum() > 0 for p in params)


def test_state_bytes_count_extra_copies_of_the_weights():
    params = [nn.Parameter(torch.zeros(10, 10)), nn.Parameter(torch.zeros(10))]
    for p in params:
        p.grad = torch.ones_like(p)
    expected = {O.SGD(params, lr=0.1): 0.0, O.SGD(params, lr=0.1, momentum=0.9): 1.0,
                O.Adam(params): 2.0, O.AdamW(params, amsgrad=True): 3.0, O.Lion(params): 1.0,
                O.Adagrad(params): 1.0, O.RMSprop(params, momentum=0.5, centered=True): 3.0}
    for opt, ratio in expected.items():
        opt.step()
        assert O.param_bytes(opt) == 110 * 4
        assert O.state_bytes_ratio(opt) == ratio, type(opt).__name__
    torch_adam = torch.optim.Adam(params)
    torch_adam.step()
    assert O.state_bytes(torch_adam) == 2 * 110 * 4 + 2 * 4  # + one float32 `step` per tensor
    with pytest.raises(TypeError, match="optimizer must be"):
        O.state_bytes("adam")


def test_measure_steps_reports_timings_and_temporaries():
    params = O.many_small_params(20, (8, 8))
    costs = O.measure_steps(O.step_variants(params, "adam", lr=1e-3), rounds=2, repeats=2)
    assert set(costs) >= {"torch loop", "own loop", "own foreach"}
    for cost in costs.values():
        assert len(cost.timing.samples_ms) == 4 and cost.timing.median_ms > 0
    # the loop holds two temporaries of one tensor at a time; foreach one for every tensor
    assert costs["own loop"].peak_bytes == 2 * 8 * 8 * 4
    assert costs["own foreach"].peak_bytes == 20 * 8 * 8 * 4
    if "torch fused" in costs:
        assert costs["torch fused"].peak_bytes == 0


def test_cost_errors():
    with pytest.raises(ValueError, match="name must be one of"):
        O.fused_available("lion")
    with pytest.raises(ValueError, match="variant must be one of"):
        O.step_variants(O.many_small_params(2), "adam", variants=("torch jit",))
    with pytest.raises(ValueError, match="n_tensors must be a positive int"):
        O.many_small_params(0)
