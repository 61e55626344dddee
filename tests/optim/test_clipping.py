"""Gradient clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from accel_lib import optim as O
from accel_lib.models import MLP


def _model_with_grads(scale: float, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = MLP(hidden_sizes=(16,))
    model.net[1].bias.requires_grad_(False)  # one parameter without a gradient
    x, y = torch.randn(8, 64), torch.randint(0, 10, (8,))
    (scale * nn.functional.cross_entropy(model(x), y)).backward()
    return model


def _twin(model: nn.Module) -> nn.Module:
    """A deep copy with the gradients too (deepcopy of a Parameter drops its .grad)."""
    twin = copy.deepcopy(model)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        b.grad = None if a.grad is None else a.grad.clone()
    return twin


def _grads(model: nn.Module) -> list[torch.Tensor]:
    return [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("scale,max_norm", [(1.0, 0.5), (100.0, 1.0), (1e-3, 1.0)])
def test_clip_grad_norm_equals_torch(norm_type, scale, max_norm):
    ours = _model_with_grads(scale)
    theirs = _twin(ours)
    total = O.clip_grad_norm_(ours.parameters(), max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type)
    torch.testing.assert_close(total, expected, rtol=1e-6, atol=0)
    for a, b in zip(_grads(ours), _grads(theirs), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-12)


def test_clip_by_global_norm_hand_computed():
    a, b = nn.Parameter(torch.zeros(2, dtype=torch.float64)), \
        nn.Parameter(torch.zeros(1, dtype=torch.float64))
    a.grad, b.grad = torch.tensor([3.0, 0.0], dtype=torch.float64), \
        torch.tensor([4.0], dtype=torch.float64)
    total = O.clip_grad_norm_([a, b], 1.0)  # global norm 5: every gradient x 1 / (5 + 1e-6)
    assert total.item() == 5.0
    coef = 1.0 / (5.0 + 1e-6)
    assert a.grad.tolist() == pytest.approx([3 * coef, 0.0], rel=1e-15)
    assert b.grad.tolist() == pytest.approx([4 * coef], rel=1e-15)
    # per-tensor clipping would give (1, 0) and (1): a different direction
    assert O.global_grad_norm([a, b]).item() == pytest.approx(1.0, rel=1e-6)
    O.clip_grad_norm_([a, b], 10.0)  # below the threshold: unchanged, never amplified
    assert b.grad.tolist() == pytest.approx([4 * coef], rel=1e-15)


def test_clip_grad_value_equals_torch():
    ours = _model_with_grads(50.0)
    theirs = _twin(ours)
    O.clip_grad_value_(ours.parameters(), 0.1)
    torch.nn.utils.clip_grad_value_(theirs.parameters(), 0.1)
    for a, b in zip(_grads(ours), _grads(theirs), strict=True):
        assert torch.equal(a, b)
    assert max(g.abs().max().item() for g in _grads(ours)) == pytest.approx(0.1)


def test_clipping_edge_cases_and_errors():
    p = nn.Parameter(torch.zeros(3))
    assert O.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients at all
    p.grad = torch.zeros(3)
    assert O.clip_grad_norm_(p, 1.0).item() == 0.0 and p.grad.tolist() == [0, 0, 0]
    p.grad = torch.tensor([float("nan"), 1.0, 1.0])
    before = p.grad.clone()
    with pytest.raises(RuntimeError, match="non-finite|nan"):
        O.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)
    assert torch.equal(p.grad.isnan(), before.isnan())  # nothing scaled
    with pytest.raises(ValueError, match="max_norm must be"):
        O.clip_grad_norm_(p, -1.0)
    with pytest.raises(ValueError, match="clip_value must be"):
        O.clip_grad_value_(p, -0.5)
    with pytest.raises(TypeError, match="parameters must be tensors"):
        O.clip_grad_norm_([1.0, 2.0], 1.0)
