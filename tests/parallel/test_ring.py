"""Ring all-reduce on send/recv vs dist.all_reduce, its schedule and its bytes on the wire."""

from __future__ import annotations

import pytest

from accel_lib import parallel as PA

SIZES = (1, 2, 5, 7, 1000, 1001)


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ring_equals_all_reduce_and_sends_the_formula_bytes(world_size):
    per_rank = PA.launch(PA.ring_check_worker, world_size, (SIZES,), timeout=90)
    for rank_results in per_rank:
        for r in rank_results:
            assert r["max_abs_diff"] <= 1e-6, r
            n_bytes = r["size"] * 8
            if r["size"] % world_size == 0:
                assert r["bytes_sent"] == r["expected_bytes"] == PA.ring_bytes(n_bytes, world_size)
            else:  # uneven chunks: within one element per message of the formula
                assert abs(r["bytes_sent"] - r["expected_bytes"]) <= 2 * (world_size - 1) * 8
    # Bytes summed over ranks are exact for any size: every element travels 2 (p - 1) times.
    for i, n in enumerate(SIZES):
        assert sum(rr[i]["bytes_sent"] for rr in per_rank) == 2 * (world_size - 1) * n * 8


def test_schedule_by_hand_for_three_ranks():
    steps = PA.ring_schedule(3)
    assert len(steps) == 4
    # reduce-scatter: rank r sends chunk r - s, receives r - s - 1
    assert steps[0] == [(0, 2), (1, 0), (2, 1)]
    assert steps[1] == [(2, 1), (0, 2), (1, 0)]
    # all-gather starts with the chunk each rank finished: r + 1
    assert steps[2] == [(1, 0), (2, 1), (0, 2)]


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5])
def test_schedule_invariants(p):
    steps = PA.ring_schedule(p)
    assert len(steps) == 2 * (p - 1)
    for s in steps:
        for r in range(p):
            # what rank r receives is what rank r - 1 sends
            assert s[r][1] == s[(r - 1) % p][0]
        assert sorted(sent for sent, _ in s) == list(range(p))  # each chunk once per step
    if p > 1:  # after the reduce-scatter, rank r owns chunk r + 1 (the next one it sends)
        assert [steps[p - 1][r][0] for r in range(p)] == [(r + 1) % p for r in range(p)]


def test_bytes_formula_and_errors():
    assert PA.ring_bytes(100, 1) == 0
    assert PA.ring_bytes(100, 2) == 100
    assert PA.ring_bytes(400, 4) == 600
    with pytest.raises(ValueError, match="world_size"):
        PA.ring_schedule(0)
    with pytest.raises(ValueError, match="world_size"):
        PA.ring_bytes(10, 0)
