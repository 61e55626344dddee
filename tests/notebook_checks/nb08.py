"""Notebook 08 (parallel): wrong answers the visible tests must name, and the measured prose."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_RING = '''
def ring_chunk_schedule(world_size):
    p = world_size
    steps = [[({rs_send}, {rs_recv}) for r in range(p)] for s in range(p - 1)]
    {gather}
    return steps
'''
_RING_RIGHT = dict(rs_send="(r - s) % p", rs_recv="(r - s - 1) % p",
                   gather="steps += [[((r + 1 - s) % p, (r - s) % p) for r in range(p)] "
                          "for s in range(p - 1)]")


def _ring(**changes: str) -> str:
    return _RING.format(**{**_RING_RIGHT, **changes})


_SHARD = '''
def shard_linear(linear, dim, rank, world_size):
    w = linear.weight.detach()
    if dim == "column":
        n = w.shape[0] // world_size
        return {col_w}, linear.bias.detach()[rank * n:(rank + 1) * n].clone()
    n = w.shape[1] // world_size
    return w[:, rank * n:(rank + 1) * n].clone(), {row_b}
'''
_SHARD_RIGHT = dict(col_w="w[rank * n:(rank + 1) * n].clone()", row_b="None")

_MEGATRON = '''
def megatron_partials(block, x, world_size):
    fc1, fc2 = block[0], block[2]
    parts = []
    for r in range(world_size):
        w1, b1 = shard_linear(fc1, "column", r, world_size)
        w2, _ = shard_linear(fc2, "row", r, world_size)
        parts.append({expr})
    return parts
'''

MISTAKES = [
    # Exercise 1: the ring schedule
    Mistake("ex1_ring", "reduce-scatter only", _ring(gather="pass"), r"all-gather is missing"),
    Mistake("ex1_ring", "all-gather starts from chunk r",
            _ring(gather="steps += [[((r - s) % p, (r - s - 1) % p) for r in range(p)] "
                         "for s in range(p - 1)]"),
            r"chunk it finished reducing"),
    Mistake("ex1_ring", "received chunk not the neighbour's",
            _ring(rs_send="(r + s) % p", rs_recv="(r + s + 1) % p"),
            r"receives what rank\s+r - 1 sends"),
    # Exercise 2: averaging gradients
    Mistake("ex2_avg", "summed, not averaged", '''
def average_gradients(per_rank_grads):
    return [sum(grads) for grads in zip(*per_rank_grads)]
''', r"the sum.*divide by the\s+number of ranks"),
    Mistake("ex2_avg", "accumulated into rank 0's tensors", '''
def average_gradients(per_rank_grads):
    out = per_rank_grads[0]
    for other in per_rank_grads[1:]:
        for acc, g in zip(out, other):
            acc.add_(g)
    for acc in out:
        acc.div_(len(per_rank_grads))
    return out
''', r"do not change them in place"),
    Mistake("ex2_avg", "divided by the number of parameters", '''
def average_gradients(per_rank_grads):
    return [sum(grads) / len(per_rank_grads[0]) for grads in zip(*per_rank_grads)]
''', r"divide by the number of ranks"),
    Mistake("ex2_avg", "averaged over the parameters of each rank", '''
def average_gradients(per_rank_grads):
    return [sum(grads) / len(grads) for grads in per_rank_grads]
''', r"mean over the 2 ranks"),
    # Exercise 3: the bubble
    Mistake("ex3_bubble", "p idle slots", '''
def bubble_fraction(stages, micro_batches):
    return stages / (micro_batches + stages)
''', r"(no bubble|idle slots are p - 1)"),
    Mistake("ex3_bubble", "idle over busy", '''
def bubble_fraction(stages, micro_batches):
    return (stages - 1) / micro_batches
''', r"not by the m busy ones"),
    # Exercise 4: sharding a Linear
    Mistake("ex4_shard", "column split along the inputs",
            _SHARD.format(col_w="w[:, rank * n:(rank + 1) * n].clone()", row_b="None"),
            r"splits\s+the OUTPUT features"),
    Mistake("ex4_shard", "row shard keeps the bias",
            _SHARD.format(col_w=_SHARD_RIGHT["col_w"], row_b="linear.bias.detach().clone()"),
            r"added world_size times"),
    Mistake("ex4_shard", "interleaved rows",
            _SHARD.format(col_w="w[rank::world_size].clone()", row_b="None"),
            r"interleaved"),
    # Exercise 5: the Megatron block
    Mistake("ex5_megatron", "fc2 bias on every rank",
            _MEGATRON.format(expr="F.gelu(x @ w1.T + b1) @ w2.T + fc2.bias"), r"leave it out"),
    Mistake("ex5_megatron", "no GELU", _MEGATRON.format(expr="(x @ w1.T + b1) @ w2.T"),
            r"missing the GELU"),
]

# Every sentence the notebook printed from a measurement, checked against the numbers.
CLAIMS = r'''
assert caught.rank == 1 and "ValueError" in caught.worker_traceback
assert ring_max_diff <= 1e-6
for r in ring_run:
    for c in r["check"]:
        if c["size"] % 2 == 0:
            assert c["bytes_sent"] == c["expected_bytes"], c
assert abs(ring_ratio - ring_ms / gloo_ms) < 1e-12
assert ring_story == ("slower than" if ring_ratio > 1.1 else
                      ("faster than" if ring_ratio < 0.9 else "as fast as"))
assert max(dp_diff.values()) <= 1e-5 and moved > 1e-3
assert abs(efficiency - one_ms / two_ms) < 1e-12
assert dp_story == ("close to linear" if efficiency >= 0.9 else
                    ("partial" if efficiency >= 0.5 else "poor"))
assert abs(overhead_ms - max(two_ms - one_ms, 0.0)) < 1e-12
assert 0 < nvlink_eff <= 1 and all(v[1] <= v[2] <= 1 for v in paper.values())
assert abs(bubble_excess - (bubble_measured[-1] - bubble_formula[-1])) < 1e-12
assert pipe_out_diff <= 1e-5 and pipe_grad_diff <= 1e-5 and tp_diff <= 1e-5
assert tf_result is None or tf_result["max_abs_diff"] <= 1e-5
'''
