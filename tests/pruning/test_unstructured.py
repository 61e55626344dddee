"""Unstructured masks against torch.nn.utils.prune, and through training."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from accel_lib.models import MLP, SmallCNN
from accel_lib.pruning import (
    global_masks,
    make_permanent_,
    masks,
    prune_unstructured_,
    sparsity_report,
    topk_mask,
)
from accel_lib.train import TrainConfig, train

# ---------------------------------------------------------------- unstructured vs torch.prune


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.999])
def test_layer_mask_equals_torch_l1_unstructured(sparsity):
    lin = nn.Linear(37, 23)
    ours = topk_mask(lin.weight.abs(), sparsity)
    torch_prune.l1_unstructured(lin, "weight", amount=sparsity)
    assert torch.equal(ours, lin.weight_mask.bool())


def test_numpy_sparsity_works_like_torch_prune():
    """np.float32(0.5) from a sweep, which torch.nn.utils.prune accepts, works here too."""
    lin = nn.Linear(37, 23)
    amount = np.float32(0.5)
    ours = topk_mask(lin.weight.abs(), amount)
    model = prune_unstructured_(nn.Sequential(copy.deepcopy(lin)), amount)
    torch_prune.l1_unstructured(lin, "weight", amount=amount)
    assert torch.equal(ours, lin.weight_mask.bool())
    assert torch.equal(masks(model)["0"], ours)


def test_pruning_twice_keeps_an_absolute_target_where_torch_compounds():
    """Ours: sparsity is a target, 0.5 then 0.5 stays 0.5. torch's PruningContainer applies
    the second amount to the weights the first left: 0.5 then 0.5 is 0.75."""
    lin = nn.Linear(40, 30)
    model = nn.Sequential(copy.deepcopy(lin))
    for _ in range(2):
        prune_unstructured_(model, 0.5)
        torch_prune.l1_unstructured(lin, "weight", amount=0.5)
    assert (~masks(model)["0"]).float().mean().item() == 0.5
    assert (lin.weight_mask == 0).float().mean().item() == 0.75


def test_model_masks_equal_torch_prune_layerwise_and_global():
    model = SmallCNN(channels=(8, 16))
    ref = copy.deepcopy(model)
    prune_unstructured_(model, 0.6, scope="layer")
    ref_layers = {"features.0": ref.features[0], "features.3": ref.features[3],
                  "classifier.1": ref.classifier[1]}
    for module in ref_layers.values():
        torch_prune.l1_unstructured(module, "weight", amount=0.6)
    ours = masks(model)
    for name, module in ref_layers.items():
        assert torch.equal(ours[name], module.weight_mask.bool()), name

    model, ref = SmallCNN(channels=(8, 16)), None
    ref = copy.deepcopy(model)
    prune_unstructured_(model, 0.7, scope="global")
    params = [(ref.features[0], "weight"), (ref.features[3], "weight"),
              (ref.classifier[1], "weight")]
    torch_prune.global_unstructured(params, torch_prune.L1Unstructured, amount=0.7)
    ours = masks(model)
    for name, (module, _) in zip(ref_layers, params, strict=True):
        assert torch.equal(ours[name], module.weight_mask.bool()), name
        torch.testing.assert_close(model.get_submodule(name).weight, module.weight)
    report = sparsity_report(model)
    assert abs(report.overall - 0.7) < 1e-3
    assert len(set(round(v, 3) for v in report.layer_sparsity.values())) > 1  # global: uneven


def test_global_masks_pool_scores_by_hand():
    scores = {"a": torch.tensor([1.0, 5.0]), "b": torch.tensor([2.0, 3.0, 4.0, 0.5])}
    out = global_masks(scores, 0.5)  # drop the 3 smallest of 6: 0.5, 1, 2
    assert out["a"].tolist() == [False, True]
    assert out["b"].tolist() == [False, True, True, False]


def test_masks_persist_through_training_and_permanence(digits):
    model = SmallCNN(channels=(8, 16))
    prune_unstructured_(model, 0.8, scope="global")
    before = {n: m.clone() for n, m in masks(model).items()}
    train(model, digits.train, TrainConfig(epochs=1, lr=1e-2, weight_decay=1e-3,
                                           device="cpu", progress=False))
    for name, mask in before.items():
        weight = model.get_submodule(name).weight
        assert torch.all(weight[~mask] == 0), f"{name}: pruned weights moved"
        assert torch.any(weight[mask] != 0)
    out = model(torch.randn(3, 1, 8, 8))
    make_permanent_(model)
    assert masks(model) == {}
    assert not any("parametrizations" in k for k in model.state_dict())
    torch.testing.assert_close(model(torch.randn(3, 1, 8, 8)).shape, out.shape)
    assert abs(sparsity_report(model).overall - 0.8) < 1e-3


def test_masks_only_tighten_and_report():
    model = MLP(hidden_sizes=(32,))
    prune_unstructured_(model, 0.5)
    first = {n: m.clone() for n, m in masks(model).items()}
    prune_unstructured_(model, 0.75)
    for name, mask in masks(model).items():
        assert not torch.any(mask & ~first[name]), "a pruned weight came back"
        assert abs((~mask).float().mean().item() - 0.75) < 0.01
    report = sparsity_report(model)
    assert set(report.layer_sparsity) == {"net.1", "net.3"}
    assert "overall" in report.table()


