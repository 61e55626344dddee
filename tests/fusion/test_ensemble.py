"""Ensembles (hard and soft voting, concatenated features, learned fusion) and soups."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from accel_lib.fusion import (
    Ensemble,
    FeatureConcat,
    LearnedFusion,
    average_state_dicts,
    greedy_soup,
    majority_vote,
    member_logits,
    penultimate_features,
    soft_vote,
    uniform_soup,
)
from accel_lib.models import MLP, SmallCNN


def _brute_force_vote(predictions: torch.Tensor) -> list[int]:
    out = []
    for column in predictions.t().tolist():
        counts = {c: column.count(c) for c in column}
        best = max(counts.values())
        out.append(min(c for c, n in counts.items() if n == best))
    return out


def test_majority_vote_hand_computed_and_ties_go_to_the_lowest_class():
    predictions = torch.tensor([[3, 1, 2, 0],
                                [3, 2, 1, 4],
                                [1, 2, 0, 5]])  # (M=3, B=4)
    # 3 wins 2:1; 2 wins 2:1; three-way tie 2/1/0 -> 0; three-way tie 0/4/5 -> 0
    assert majority_vote(predictions).tolist() == [3, 2, 0, 0]
    assert majority_vote(torch.tensor([[7], [2]])).tolist() == [2]  # not the first member's


def test_majority_vote_equals_brute_force():
    gen = torch.Generator().manual_seed(0)
    for members, classes in itertools.product((1, 2, 3, 4, 5), (2, 3, 10)):
        predictions = torch.randint(0, classes, (members, 50), generator=gen)
        assert majority_vote(predictions, classes).tolist() == _brute_force_vote(predictions)


def test_soft_vote_averages_probabilities_not_logits():
    logits = torch.tensor([[[10.0, 0.0]], [[0.0, 1.0]], [[0.0, 1.0]]])  # (M=3, B=1, C=2)
    p = soft_vote(logits)
    expected = torch.softmax(logits, -1).mean(0)
    torch.testing.assert_close(p, expected)
    assert p.argmax(-1).item() == 0  # the confident member wins on probabilities...
    assert logits.mean(0).argmax(-1).item() == 0
    assert torch.softmax(logits.mean(0), -1)[0, 0] > p[0, 0]  # ...a different number
    w = soft_vote(logits, [0.0, 1.0, 1.0])  # weights are normalised
    torch.testing.assert_close(w, torch.softmax(logits[1], -1))
    torch.testing.assert_close(soft_vote(torch.randn(4, 6, 5)).sum(-1), torch.ones(6))


def test_bad_votes_are_refused():
    with pytest.raises(TypeError, match="integer class indices"):
        majority_vote(torch.randn(3, 4))
    with pytest.raises(ValueError, match="beyond num_classes=3"):
        majority_vote(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="3-D"):
        soft_vote(torch.randn(4, 5))
    with pytest.raises(ValueError, match="one weight per member"):
        soft_vote(torch.randn(2, 3, 4), [1.0])
    with pytest.raises(ValueError, match=">= 0"):
        soft_vote(torch.randn(2, 3, 4), [1.0, -1.0])


def test_members_with_different_output_sizes_are_refused():
    members = [MLP(num_classes=10), MLP(num_classes=5)]
    with pytest.raises(ValueError, match=r"same shape.*member 0: \(2, 10\), member 1: \(2, 5\)"):
        member_logits(members, torch.randn(2, 64))
    with pytest.raises(ValueError, match="same shape"):
        Ensemble(members)(torch.randn(2, 64))
    with pytest.raises(TypeError, match="list of nn.Modules"):
        Ensemble(MLP())
    with pytest.raises(ValueError, match="method must be one of"):
        Ensemble([MLP()], method="mean")


def test_ensemble_forward_matches_the_votes():
    members = [MLP(hidden_sizes=(16,)) for _ in range(3)]
    x = torch.randn(20, 64)
    logits = member_logits(members, x)
    soft = Ensemble(members)
    with torch.no_grad():
        torch.testing.assert_close(torch.softmax(soft(x), -1), soft_vote(logits))
        hard = Ensemble(members, method="hard")(x)
    assert hard.argmax(-1).tolist() == majority_vote(logits.argmax(-1), 10).tolist()


def test_members_stay_frozen_and_in_eval_mode():
    members = [SmallCNN(channels=(4,)), SmallCNN(channels=(6,))]
    x = torch.randn(8, 1, 8, 8)
    concat = FeatureConcat(members, x, 10)
    assert concat.features(x).shape == (8, 4 * 16 + 6 * 16)
    assert penultimate_features(members[0], x).shape == (8, 64)
    concat.train()
    assert all(not m.training for m in concat.members.modules())
    stats = members[0].features[1].running_mean.clone()
    opt = torch.optim.SGD([p for p in concat.parameters() if p.requires_grad], lr=0.1)
    nn.functional.cross_entropy(concat(x), torch.randint(0, 10, (8,))).backward()
    opt.step()
    assert torch.equal(members[0].features[1].running_mean, stats)
    assert [n for n, p in concat.named_parameters() if p.requires_grad] == ["head.weight",
                                                                            "head.bias"]


def test_learned_fusion_starts_as_the_logit_average():
    members = [MLP(hidden_sizes=(16,)) for _ in range(3)]
    x = torch.randn(5, 64)
    fusion = LearnedFusion(members, 10)
    with torch.no_grad():
        torch.testing.assert_close(fusion(x), member_logits(members, x).mean(0))


def test_uniform_soup_averages_weights():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    soup = uniform_soup([a, b])
    torch.testing.assert_close(soup.weight, (a.weight + b.weight) / 2)
    torch.testing.assert_close(soup.bias, (a.bias + b.bias) / 2)
    same = uniform_soup([a, copy.deepcopy(a), copy.deepcopy(a)])
    torch.testing.assert_close(same.weight, a.weight)
    sd = average_state_dicts([a.state_dict(), b.state_dict()], weights=[3, 1])
    torch.testing.assert_close(sd["weight"], 0.75 * a.weight + 0.25 * b.weight)


def test_soup_keeps_integer_buffers_and_refuses_other_architectures():
    m1, m2 = SmallCNN(channels=(4,)), SmallCNN(channels=(4,))
    m1.features[1].num_batches_tracked.fill_(7)
    m2.features[1].num_batches_tracked.fill_(3)
    sd = average_state_dicts([m1.state_dict(), m2.state_dict()])
    assert sd["features.1.num_batches_tracked"].item() == 7
    with pytest.raises(ValueError, match="shape"):
        average_state_dicts([m1.state_dict(), SmallCNN(channels=(8,)).state_dict()])
    with pytest.raises(ValueError, match="other keys"):
        average_state_dicts([m1.state_dict(), SmallCNN(channels=(4, 4)).state_dict()])
    with pytest.raises(ValueError, match="weights"):
        average_state_dicts([m1.state_dict()], weights=[-1])


def test_greedy_soup_keeps_only_models_that_do_not_hurt():
    target = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        target.weight.fill_(1.0)
    models = []
    for w in (0.9, 1.1, 5.0):  # the last one drags the average away from the target
        m = nn.Linear(2, 1, bias=False)
        with torch.no_grad():
            m.weight.fill_(w)
        models.append(m)

    def score(m: nn.Module) -> float:
        return -float((m.weight.detach() - 1.0).abs().sum())

    soup, chosen = greedy_soup(models, score)
    assert chosen == [0, 1]  # 0.9 and 1.1 tie for best: stable order, then 1.1 helps
    torch.testing.assert_close(soup.weight, torch.ones(1, 2))
