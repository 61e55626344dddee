"""N:M (2:4) masks against torch.ao's sparsifier; the semi-structured kernel on a GPU."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from accel_lib.models import MLP
from accel_lib.pruning import (
    masks,
    nm_mask,
    prune_nm_,
    semi_structured_available,
    to_semi_structured_,
)

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


