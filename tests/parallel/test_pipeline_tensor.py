"""Pipeline (GPipe) and tensor (Megatron) parallelism equal the unsplit model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib import parallel as PA


def test_pipeline_outputs_and_gradients_equal_the_unsplit_model():
    m, batch = 4, 16
    per_rank = PA.launch(PA.pipeline_worker, 2, (m, batch), timeout=90)
    full = PA.pipeline_model(0)
    gen = torch.Generator().manual_seed(1)
    x, target = torch.randn(batch, 32, generator=gen), torch.randn(batch, 32, generator=gen)
    out = full(x)
    loss = nn.MSELoss(reduction="sum")(out, target) / batch
    loss.backward()
    last = per_rank[-1]
    assert torch.allclose(last["outputs"], out.detach(), atol=1e-6)
    assert last["loss"] == pytest.approx(loss.item(), rel=1e-5)
    grads = {**per_rank[0]["grads"], **per_rank[1]["grads"]}
    assert set(grads) == {n for n, _ in full.named_parameters()}
    for name, p in full.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-6), name
    for r in per_rank:
        assert 0 <= r["idle_s"] <= r["total_s"]


def test_split_stages_cuts_consecutive_parts():
    model = PA.pipeline_model(0, 8, 3)  # 6 layers
    parts = PA.split_stages(model, 4)
    assert sorted(len(p) for p in parts) == [1, 1, 2, 2]
    assert [m for p in parts for m in p] == list(model)
    x = torch.randn(2, 8)
    y = x
    for p in parts:
        y = p(y)
    assert torch.equal(y, model(x))


def test_split_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"stages must be <= the number of layers \(2\)"):
        PA.split_stages(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 3)
    with pytest.raises(ValueError, match="nn.Sequential"):
        PA.split_stages(nn.Linear(2, 2), 1)
    with pytest.raises(ValueError, match="stages"):
        PA.split_stages(nn.Sequential(nn.Linear(2, 2)), 0)


def test_bubble_formula():
    assert PA.bubble_fraction(1, 8) == 0
    assert PA.bubble_fraction(2, 1) == 0.5
    assert PA.bubble_fraction(2, 4) == pytest.approx(0.2)
    assert PA.bubble_fraction(4, 8) == pytest.approx(3 / 11)
    with pytest.raises(ValueError, match="micro_batches"):
        PA.bubble_fraction(2, 0)


def test_megatron_mlp_equals_the_single_device_block_with_one_all_reduce():
    per_rank = PA.launch(PA.tensor_parallel_worker, 2, timeout=90)
    for r in per_rank:
        assert r["max_abs_diff"] <= 1e-5
        assert r["all_reduces"] == 1
        # each rank holds half of fc1 (weights + bias), half of fc2's weight, all of fc2's bias
        assert r["params"] == (32 * 128 + 128) // 2 + 128 * 32 // 2 + 32


def test_column_and_row_shards_reassemble_the_layer():
    lin = nn.Linear(6, 4)
    cols = [PA.shard_linear(lin, "column", r, 2) for r in range(2)]
    assert torch.equal(torch.cat([w for w, _ in cols]), lin.weight.detach())
    assert torch.equal(torch.cat([b for _, b in cols]), lin.bias.detach())
    rows = [PA.shard_linear(lin, "row", r, 2) for r in range(2)]
    assert torch.equal(torch.cat([w for w, _ in rows], dim=1), lin.weight.detach())
    assert rows[0][1] is None
    x = torch.randn(3, 6)
    # column: concatenated outputs; row: summed partial products + bias once
    col = torch.cat([PA.ColumnParallelLinear(lin, r, 2)(x) for r in range(2)], dim=1)
    assert torch.allclose(col, lin(x), atol=1e-6)
    row = sum(x[:, 3 * r:3 * (r + 1)] @ rows[r][0].T for r in range(2)) + lin.bias
    assert torch.allclose(row, lin(x), atol=1e-6)
    one = PA.RowParallelLinear(lin, 0, 1)  # world of one: no all-reduce needed
    assert torch.allclose(one(x), lin(x), atol=1e-6)


def test_shard_errors():
    lin = nn.Linear(5, 4)
    with pytest.raises(ValueError, match=r"world_size must divide linear.in_features \(5\)"):
        PA.shard_linear(lin, "row", 0, 2)
    with pytest.raises(ValueError, match="dim"):
        PA.shard_linear(lin, "diagonal", 0, 2)
    with pytest.raises(ValueError, match="rank"):
        PA.shard_linear(lin, "column", 2, 2)
    with pytest.raises(ValueError, match="nn.Linear"):
        PA.shard_linear(nn.ReLU(), "column", 0, 1)


def test_megatron_partials_sum_to_the_block():
    block = PA.mlp_block(8, 16)
    x = torch.randn(3, 8)
    for world in (1, 2, 4):
        parts = PA.megatron_partials(block, x, world)
        assert len(parts) == world
        assert torch.allclose(sum(parts) + block[2].bias, block(x), atol=1e-6)


def test_model_parallel_demo_worker_batches_pipeline_tensor_and_bubble():
    per_rank = PA.launch(PA.model_parallel_demo_worker, 2, (2, 8, (1, 2)), timeout=90)
    for r in per_rank:
        assert r["tensor"]["max_abs_diff"] <= 1e-5
        assert [b["micro_batches"] for b in r["bubble"]] == [1, 2]
        assert [b["formula"] for b in r["bubble"]] == [0.5, 1 / 3]
        assert all(0 <= b["idle_fraction"] <= 1 for b in r["bubble"])
