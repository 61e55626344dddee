"""Bad input to accel_lib.pruning: every error names the parameter."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib.models import MLP, SmallCNN
from accel_lib.pruning import (
    CubicSchedule,
    check_sparsity,
    cubic_sparsity,
    importance_scores,
    iterative_prune_,
    magnitude_scores,
    nm_mask,
    obd_scores,
    prune_channels_,
    prune_linear_inputs,
    prune_nm_,
    prune_unstructured_,
    taylor_scores,
    topk_mask,
)
from tests.reference import assert_raises_and_changes_nothing

# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad, error", [(-0.1, ValueError), (1.0, ValueError),
                                        (1.5, ValueError), (float("nan"), ValueError),
                                        (True, TypeError), ("0.5", TypeError),
                                        (None, TypeError)])
def test_sparsity_outside_range_is_refused(bad, error):
    """A wrong value is a ValueError, a wrong type (bools included) a TypeError."""
    with pytest.raises(error, match=r"sparsity must be a number in \[0, 1\)"):
        check_sparsity(bad)
    with pytest.raises(error, match="sparsity"):
        topk_mask(torch.ones(4), bad)
    with pytest.raises(error, match="sparsity"):
        prune_unstructured_(MLP(), bad)


def test_bad_inputs_name_the_parameter():
    with pytest.raises(ValueError, match="p must be"):
        magnitude_scores(torch.ones(2), 3)
    with pytest.raises(ValueError, match="grad must have"):
        taylor_scores(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="hessian_diag must have"):
        obd_scores(torch.ones(2), torch.ones(3))
    with pytest.raises(TypeError, match="scores must be a torch.Tensor"):
        topk_mask([1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="n must be < m"):
        nm_mask(torch.ones(4, 4), 4, 4)
    with pytest.raises(ValueError, match="scope must be"):
        prune_unstructured_(MLP(), 0.5, scope="net")
    with pytest.raises(ValueError, match="method must be"):
        importance_scores(MLP(), "hessian")
    with pytest.raises(ValueError, match="loader must be given"):
        importance_scores(MLP(), "taylor")
    with pytest.raises(ValueError, match="layers must name"):
        prune_unstructured_(MLP(), 0.5, layers=["net.0"])
    with pytest.raises(ValueError, match="at least one of"):
        prune_unstructured_(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="num_updates"):
        cubic_sparsity(1, 0.5, num_updates=0)
    with pytest.raises(ValueError, match="frequency"):
        CubicSchedule(0.5, frequency=0)
    with pytest.raises(ValueError, match="initial_sparsity must be <="):
        CubicSchedule(0.2, initial_sparsity=0.5)
    with pytest.raises(ValueError, match="non-decreasing"):
        iterative_prune_(MLP(), [], [0.5, 0.2])
    with pytest.raises(ValueError, match="spatial"):
        prune_linear_inputs(nn.Linear(10, 2), torch.tensor([0]), spatial=3)


# ------------------------------------------------------- failures change nothing


def test_prune_channels_changes_nothing_when_a_later_layer_cannot_be_cut():
    """It replaced the first BatchNorm, then refused the grouped conv that consumes it."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 4, 3, groups=2), nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.randn(2, 1, 8, 8)
    assert_raises_and_changes_nothing(lambda m: prune_channels_(m, 0.5, x), model, ValueError,
                                      "groups=1")
    cnn = SmallCNN(channels=(4, 8))
    bad_scores = {"features.3": torch.ones(3)}  # the second conv's scores: wrong shape
    assert_raises_and_changes_nothing(
        lambda m: prune_channels_(m, 0.5, x, scores=bad_scores), cnn, ValueError, "scores")


def test_prune_nm_changes_nothing_when_a_later_layer_does_not_divide():
    """It masked the first Linear, then refused the second (6 inputs, not a multiple of 4)."""
    model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 2))
    assert_raises_and_changes_nothing(prune_nm_, model, ValueError, "divisible by m=4")


def test_prune_unstructured_changes_nothing_when_a_score_is_wrong():
    model = MLP()
    scores = importance_scores(model)
    scores["net.5"] = scores["net.5"][:, :3]
    assert_raises_and_changes_nothing(lambda m: prune_unstructured_(m, 0.5, scores=scores),
                                      model, ValueError, "scores")
