"""Data parallelism by hand and with DDP equals one process on the concatenated batch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data.distributed import DistributedSampler

from accel_lib import parallel as PA


def test_manual_and_ddp_match_single_process_after_20_steps():
    per_rank = PA.launch(PA.data_parallel_modes_worker, 2, (PA.MODES, 20, 64), timeout=120)
    single = PA.single_process_train(steps=20, batch_size=64)
    for mode in PA.MODES:
        for res in per_rank:
            diff = max((res[mode]["state"][k] - v).abs().max().item()
                       for k, v in single["state"].items())
            assert diff <= 1e-5, (mode, res["rank"] if "rank" in res else None, diff)
        # the replicas trained on different shards: their losses differ, their weights do not
        assert per_rank[0][mode]["losses"] != per_rank[1][mode]["losses"]
    init = PA.make_model(0).state_dict()
    assert max((single["state"][k] - v).abs().max().item() for k, v in init.items()) > 1e-3


def test_sampler_shards_are_disjoint_and_their_union_is_the_single_batch():
    data = PA.digits_dataset()
    assert len(data) == 1797
    shards = [list(DistributedSampler(data, 2, r, shuffle=True, seed=0, drop_last=True))
              for r in range(2)]
    one = list(DistributedSampler(data, 1, 0, shuffle=True, seed=0, drop_last=True))
    assert not set(shards[0]) & set(shards[1])
    b = 32  # per rank; the single process's batch 0 is the union of the two shards' batch 0
    assert sorted(shards[0][:b] + shards[1][:b]) == sorted(one[:2 * b])


@pytest.mark.parametrize("batch, world, match", [
    (1, 2, "batch_size must be >= world_size"),
    (7, 2, "multiple of world_size"),
    (8, 0, "world_size"),
])
def test_batch_checks(batch, world, match):
    with pytest.raises(ValueError, match=match):
        PA.check_batch(batch, world)


def test_check_batch_per_rank():
    assert PA.check_batch(64, 2) == 32
    assert PA.check_batch(3, 3) == 1


def test_worker_rejects_bad_mode_without_a_process_group():
    with pytest.raises(ValueError, match="mode"):
        PA.data_parallel_worker(0, 2, "zero")


def test_average_gradients_in_a_world_of_one():
    import torch.distributed as dist

    from accel_lib.parallel.launcher import free_port

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        model = torch.nn.Linear(3, 2)
        model(torch.ones(4, 3)).sum().backward()
        before = [p.grad.clone() for p in model.parameters()]
        PA.average_gradients_(model)
        assert all(torch.equal(a, p.grad) for a, p in zip(before, model.parameters(), strict=True))
    finally:
        dist.destroy_process_group()


def test_mean_over_ranks():
    got = PA.mean_over_ranks([[torch.tensor([1.0, 3.0]), torch.tensor(2.0)],
                              [torch.tensor([3.0, 5.0]), torch.tensor(4.0)]])
    assert torch.equal(got[0], torch.tensor([2.0, 4.0])) and got[1].item() == 3.0
    with pytest.raises(ValueError, match="per_rank"):
        PA.mean_over_ranks([])
    with pytest.raises(ValueError, match="per_rank"):
        PA.mean_over_ranks([[torch.ones(1)], []])
