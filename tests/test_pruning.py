"""Pruning: scores, masks against torch.nn.utils.prune, persistence through training,
N:M masks, the cubic schedule, sensitivity, and channel surgery (SmallCNN, VGG)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from accel_lib.data import digits_loaders
from accel_lib.models import MLP, SmallCNN, vision_model
from accel_lib.pruning import (
    check_sparsity,
    global_masks,
    gradient_statistics,
    importance_scores,
    magnitude_scores,
    make_permanent_,
    masks,
    obd_scores,
    prune_unstructured_,
    sparsity_report,
    taylor_scores,
    topk_mask,
)
from accel_lib.pruning_nm import nm_mask, prune_nm_, semi_structured_available, to_semi_structured_
from accel_lib.pruning_schedule import (
    CubicSchedule,
    cubic_sparsity,
    iterative_prune_,
    sensitivity_scan,
)
from accel_lib.pruning_structured import (
    channel_groups,
    channel_keep_indices,
    channel_scores,
    prune_batchnorm2d,
    prune_channels_,
    prune_conv2d,
    prune_linear_inputs,
    trace_chain,
)
from accel_lib.train import TrainConfig, evaluate, train


@pytest.fixture(scope="module")
def digits():
    return digits_loaders(batch_size=64)


# ---------------------------------------------------------------- scores


def test_scores_hand_computed():
    w = torch.tensor([[1.0, -2.0], [0.5, -0.1]])
    g = torch.tensor([[0.5, 0.5], [-4.0, 1.0]])
    torch.testing.assert_close(magnitude_scores(w, 1), w.abs())
    torch.testing.assert_close(magnitude_scores(w, 2), w**2)
    torch.testing.assert_close(taylor_scores(w, g), torch.tensor([[0.5, 1.0], [2.0, 0.1]]))
    torch.testing.assert_close(obd_scores(w, g**2), 0.5 * w**2 * g**2)


def test_gradient_statistics_match_per_batch_autograd(digits):
    model = SmallCNN(channels=(4, 8))
    batches = [b for _, b in zip(range(3), digits.train, strict=False)]
    mean, fisher = gradient_statistics(model, batches)
    grads = []
    for x, y in batches:
        model.zero_grad()
        nn.functional.cross_entropy(model.eval()(x), y).backward()
        grads.append(model.features[0].weight.grad.clone())
    g = torch.stack(grads)
    torch.testing.assert_close(mean["features.0"], g.mean(0))
    torch.testing.assert_close(fisher["features.0"], (g**2).mean(0))
    scores = importance_scores(model, "obd", batches)
    torch.testing.assert_close(scores["features.0"],
                               0.5 * model.features[0].weight.detach()**2 * (g**2).mean(0))
    scores = importance_scores(model, "taylor", batches)
    torch.testing.assert_close(scores["classifier.1"],
                               (model.classifier[1].weight * mean["classifier.1"]).abs().detach())


# ---------------------------------------------------------------- unstructured vs torch.prune


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.999])
def test_layer_mask_equals_torch_l1_unstructured(sparsity):
    lin = nn.Linear(37, 23)
    ours = topk_mask(lin.weight.abs(), sparsity)
    torch_prune.l1_unstructured(lin, "weight", amount=sparsity)
    assert torch.equal(ours, lin.weight_mask.bool())


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


# ---------------------------------------------------------------- N:M


def test_nm_mask_hand_computed_and_invariants():
    w = torch.tensor([[0.1, -3.0, 2.0, 0.2, 1.0, 1.5, -0.1, 0.0]])
    assert nm_mask(w).int().tolist() == [[0, 1, 1, 0, 1, 1, 0, 0]]
    w = torch.randn(16, 32)
    mask = nm_mask(w, 2, 4)
    assert torch.all(mask.reshape(-1, 4).sum(1) == 2)
    torch.testing.assert_close(nm_mask(w * mask), mask)  # idempotent on its own output
    assert torch.all(nm_mask(w, 1, 8).reshape(-1, 8).sum(1) == 1)


def test_nm_mask_matches_torch_ao_weight_norm_sparsifier():
    sparsifier_mod = pytest.importorskip("torch.ao.pruning")
    model = nn.Sequential(nn.Linear(16, 8))
    ours = nm_mask(model[0].weight)
    sparsifier = sparsifier_mod.WeightNormSparsifier(sparsity_level=1.0,
                                                     sparse_block_shape=(1, 4), zeros_per_block=2)
    sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}])
    sparsifier.step()
    theirs = model[0].parametrizations.weight[0].mask.bool()
    assert torch.equal(ours, theirs)


def test_prune_nm_model_and_semi_structured_cpu_path():
    model = MLP(hidden_sizes=(32,))
    x = torch.randn(4, 64)
    prune_nm_(model)
    for mask in masks(model).values():
        assert torch.all(mask.reshape(-1, 4).sum(1) == 2)
    ref = model(x)
    if not semi_structured_available():
        to_semi_structured_(model)  # no GPU: stays masked dense, same outputs
        torch.testing.assert_close(model(x), ref)
    with pytest.raises(ValueError, match="divisible by m"):
        prune_nm_(nn.Sequential(nn.Linear(6, 2)))


@pytest.mark.skipif(not semi_structured_available(), reason="needs a GPU with sparse tensor cores")
def test_semi_structured_gpu_matches_masked_dense():
    model = nn.Sequential(nn.Linear(128, 128)).half().cuda()
    prune_nm_(model)
    x = torch.randn(64, 128, device="cuda", dtype=torch.half)
    ref = model(x)
    to_semi_structured_(model)
    assert "SparseSemiStructured" in type(model[0].weight.data).__name__ or \
        "SparseSemiStructured" in type(model[0].weight).__name__
    torch.testing.assert_close(model(x), ref, rtol=1e-2, atol=1e-2)


# ---------------------------------------------------------------- schedule and loops


def test_cubic_schedule_hand_computed():
    # s_t = 0.8 + (0 - 0.8)(1 - t/4)^3 with t0 = 0, n = 4, dt = 1
    assert cubic_sparsity(0, 0.8, num_updates=4) == 0.0
    assert cubic_sparsity(2, 0.8, num_updates=4) == pytest.approx(0.8 - 0.8 * 0.125)
    assert cubic_sparsity(4, 0.8, num_updates=4) == pytest.approx(0.8)
    assert cubic_sparsity(99, 0.8, num_updates=4) == pytest.approx(0.8)
    assert cubic_sparsity(-5, 0.8, initial_sparsity=0.1, num_updates=4) == pytest.approx(0.1)
    s = CubicSchedule(0.9, initial_sparsity=0.1, begin_step=10, num_updates=5, frequency=2)
    assert s.update_steps() == [10, 12, 14, 16, 18, 20]
    values = s.sparsities()
    assert values[0] == pytest.approx(0.1) and values[-1] == pytest.approx(0.9)
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    assert all(x > y for x, y in zip(steps, steps[1:], strict=False)), "prunes fast, then slow"


def test_iterative_prune_and_sensitivity(digits):
    model = SmallCNN(channels=(8, 16))
    train(model, digits.train, TrainConfig(epochs=2, device="cpu", progress=False))
    base = evaluate(model, digits.val)
    targets = CubicSchedule(0.8, num_updates=2).sparsities()[1:]
    history = iterative_prune_(model, digits.train, targets,
                               evaluate=lambda m: evaluate(m, digits.val))
    assert [s for s, _ in history] == pytest.approx([0.7, 0.8])
    assert abs(sparsity_report(model).overall - 0.8) < 1e-3
    assert history[-1][1] > base - 0.1
    fresh = SmallCNN(channels=(8, 16))
    train(fresh, digits.train, TrainConfig(epochs=2, device="cpu", progress=False))
    state = copy.deepcopy(fresh.state_dict())
    scan = sensitivity_scan(fresh, lambda m: evaluate(m, digits.val), [0.0, 0.5, 0.99])
    assert set(scan) == {"features.0", "features.3", "classifier.1"}
    for accs in scan.values():
        assert accs[0] == pytest.approx(evaluate(fresh, digits.val))
        assert accs[-1] < accs[0]
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, state[k]), f"sensitivity_scan changed {k}"


# ---------------------------------------------------------------- structured surgery


def test_channel_scores_and_keep():
    w = torch.zeros(3, 2, 1, 1)
    w[0] = 1.0
    w[1, 0] = -3.0
    w[2] = 0.5
    torch.testing.assert_close(channel_scores(w, 1), torch.tensor([2.0, 3.0, 1.0]))
    torch.testing.assert_close(channel_scores(w, 2), torch.tensor([2**0.5, 3.0, 0.5**0.5]))
    assert channel_keep_indices(torch.tensor([2.0, 3.0, 1.0]), 0.34).tolist() == [0, 1]
    assert channel_keep_indices(torch.tensor([2.0, 3.0, 1.0]), 0.99).tolist() == [1]


def test_single_layer_surgery_matches_slicing():
    conv, bn, lin = nn.Conv2d(4, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Linear(6 * 4, 5)
    bn.running_mean.uniform_()
    keep_out, keep_in = torch.tensor([0, 2, 5]), torch.tensor([1, 3])
    x = torch.randn(2, 4, 2, 2)
    small = prune_conv2d(conv, keep_out, keep_in)
    assert small.weight.shape == (3, 2, 3, 3)
    expected = nn.functional.conv2d(x[:, keep_in], conv.weight[keep_out][:, keep_in],
                                    conv.bias[keep_out], padding=1)
    torch.testing.assert_close(small(x[:, keep_in]), expected)
    sbn = prune_batchnorm2d(bn.eval(), keep_out).eval()
    h = torch.randn(2, 6, 2, 2)
    torch.testing.assert_close(sbn(h[:, keep_out]), bn(h)[:, keep_out])
    slin = prune_linear_inputs(lin, keep_out, spatial=4)
    h[:, [1, 3, 4]] = 0  # removed channels are zero: the smaller linear gives the same result
    torch.testing.assert_close(slin(h[:, keep_out].flatten(1)), lin(h.flatten(1)))


def _zero_channels(model: nn.Module, x: torch.Tensor, sparsity: float) -> None:
    """Make the lowest channels of each prunable conv exactly zero after BN (and bias)."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for g in channel_groups(model, x):
            conv = modules[g.conv]
            n = round(sparsity * conv.out_channels)
            drop = torch.randperm(conv.out_channels)[:n]
            conv.weight[drop] = 0
            if conv.bias is not None:
                conv.bias[drop] = 0
            for bn in g.batchnorms:
                modules[bn].weight[drop] = 0
                modules[bn].bias[drop] = 0


def test_smallcnn_surgery_is_exact_when_removed_channels_are_zero(digits):
    model = SmallCNN(channels=(8, 16, 16))
    train(model, digits.train, TrainConfig(epochs=1, device="cpu", progress=False))
    x = next(iter(digits.val))[0]
    _zero_channels(model, x, 0.5)
    ref = model(x)
    params = sum(p.numel() for p in model.parameters())
    prune_channels_(model, 0.5, x)
    assert [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)] == [4, 8, 8]
    assert model.classifier[1].in_features == 8 * 16
    assert sum(p.numel() for p in model.parameters()) < params / 2
    torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    # the smaller model trains (fine-tuning after surgery)
    train(model, digits.train, TrainConfig(epochs=1, device="cpu", progress=False))


def test_vgg11_surgery_is_exact_across_the_flatten_boundary():
    model = vision_model("vgg11", num_classes=10)
    # a small classifier keeps the test light; flatten(avgpool 7x7) -> Linear stays
    model.classifier[0], model.classifier[3] = nn.Linear(512 * 49, 32), nn.Linear(32, 32)
    model.classifier[6] = nn.Linear(32, 10)
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    groups = channel_groups(model, x)
    assert len(groups) == 8 and groups[-1].consumer == "classifier.0" and groups[-1].spatial == 49
    _zero_channels(model, x, 0.5)
    ref = model(x)
    prune_channels_(model, 0.5, x)
    assert model.classifier[0].in_features == 256 * 49
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_per_layer_sparsity_and_custom_scores():
    model = SmallCNN(channels=(8, 16)).eval()
    x = torch.randn(2, 1, 8, 8)
    scores = {"features.0": torch.arange(8.0)}
    prune_channels_(model, {"features.0": 0.25}, x, scores=scores)
    assert model.features[0].out_channels == 6 and model.features[3].in_channels == 6
    assert model.features[3].out_channels == 16  # not named: untouched


def test_surgery_refuses_what_it_cannot_handle():
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="not a chain"):
        trace_chain(vision_model("resnet18", num_classes=10), x)
    grouped = nn.Sequential(nn.Conv2d(4, 4, 3, groups=2), nn.Conv2d(4, 2, 1))
    with pytest.raises(ValueError, match="groups"):
        prune_channels_(grouped, 0.5, torch.randn(1, 4, 5, 5))
    odd = nn.Sequential(nn.Conv2d(1, 4, 3), nn.LayerNorm([4, 3, 3]), nn.Conv2d(4, 2, 1))
    with pytest.raises(ValueError, match="not supported"):
        prune_channels_(odd, 0.5, torch.randn(1, 1, 5, 5))
    masked = prune_unstructured_(SmallCNN(), 0.5)
    with pytest.raises(ValueError, match="make_permanent_"):
        prune_channels_(masked, 0.5, torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="sparsity must name"):
        prune_channels_(SmallCNN(), {"classifier.1": 0.5}, torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="nothing to prune"):
        prune_channels_(nn.Sequential(nn.Conv2d(1, 2, 3)), 0.5, torch.randn(1, 1, 5, 5))


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, True, "0.5", None, float("nan")])
def test_sparsity_outside_range_is_refused(bad):
    with pytest.raises(ValueError, match="sparsity must be a number in"):
        check_sparsity(bad)
    with pytest.raises(ValueError, match="sparsity"):
        topk_mask(torch.ones(4), bad)
    with pytest.raises(ValueError, match="sparsity"):
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
