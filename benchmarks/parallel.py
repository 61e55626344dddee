"""Parallel training with real processes (notebook 08): gloo on this machine's CPU cores.

Every figure comes from ``accel_lib.parallel.launch`` runs of 2 processes (1 thread each).
Times are per-call medians; the ring and gloo's all-reduce are sampled alternately in the
same processes. Scaling efficiency is weak scaling: the same per-process batch on 1 and on 2
processes, ``time per step on 1 / time per step on 2``.
"""

from __future__ import annotations

import statistics

from accel_lib import parallel as PA

from .record import Record

RING_NUMEL = 1 << 20  # 4 MB of float32
STEPS, BATCH_PER_RANK = 60, 32


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _ring() -> Record:
    res = PA.launch(PA.allreduce_time_worker, 2, (RING_NUMEL, 15, 3), timeout=300)
    ring = _median([max(a, b) for a, b in zip(res[0]["ring_ms"], res[1]["ring_ms"], strict=True)])
    gloo = _median([max(a, b) for a, b in zip(res[0]["gloo_ms"], res[1]["gloo_ms"], strict=True)])
    return Record("parallel/ring-allreduce-vs-gloo-time-ratio", ring / gloo, "x", 1.0,
                  f"4 MB float32 tensor, 2 processes (gloo, 1 thread each): ring all-reduce on "
                  f"isend/irecv vs dist.all_reduce, median of 15 alternated samples, slower rank "
                  f"({ring:.2f} vs {gloo:.2f} ms); > 1 means the hand-made ring is slower")


def _ddp() -> list[Record]:
    times = {}
    for world in (1, 2):
        res = PA.launch(PA.data_parallel_worker, world,
                        ("ddp", STEPS, BATCH_PER_RANK * world), timeout=300)
        times[world] = max(_median(r["step_ms"][10:]) for r in res)
    eff = times[1] / times[2]
    per_rank = PA.launch(PA.data_parallel_modes_worker, 2, (PA.MODES, 20, 64), timeout=300)
    single = PA.single_process_train(steps=20, batch_size=64)
    diff = max((r[mode]["state"][k] - v).abs().max().item() for r in per_rank
               for mode in PA.MODES for k, v in single["state"].items())
    return [
        Record("parallel/ddp-2proc-scaling-efficiency", eff, "fraction", 1.0,
               f"digits MLP 64-64-10, DDP (gloo), {BATCH_PER_RANK} examples per process per "
               f"step: throughput on 2 processes / (2 x throughput on 1) = step time 1 proc / "
               f"2 procs ({times[1]:.3f} / {times[2]:.3f} ms, medians of {STEPS - 10} steps)"),
        Record("parallel/ddp-vs-single-max-weight-diff", diff, "abs", 1e-5,
               "digits MLP after 20 SGD steps of global batch 64: max |w| difference between "
               "2-process training (by hand and DDP, DistributedSampler shards) and one "
               "process on the concatenated batch; baseline = tolerance"),
    ]


def _pipeline() -> list[Record]:
    res = PA.launch(PA.bubble_worker, 2, ((4,), 64, 64, 2, 5, 40.0), timeout=300)
    measured = statistics.mean(r[0]["idle_fraction"] for r in res)
    formula = PA.bubble_fraction(2, 4)
    notes = ("GPipe, p=2 stages (2 processes), m=4 micro-batches of a 64-example batch, stages "
             "of equal fixed cost (40 ms forward + 80 ms backward per batch)")
    return [
        Record("parallel/pipeline-bubble-measured", measured, "fraction", formula,
               f"{notes}: idle / step time, mean over stages, median of 5 steps; baseline = "
               "the formula (the excess is per-message latency)"),
        Record("parallel/pipeline-bubble-formula", formula, "fraction", None,
               "(p - 1) / (m + p - 1) at p=2, m=4"),
    ]


def _tensor() -> Record:
    res = PA.launch(PA.tensor_parallel_worker, 2, timeout=300)
    return Record("parallel/tensor-parallel-max-abs-diff", max(r["max_abs_diff"] for r in res),
                  "abs", 1e-5, "Megatron MLP 32-128-32 (column-parallel fc1, GELU, row-parallel "
                  "fc2, one all-reduce) over 2 processes vs the single-device block, batch 8; "
                  "baseline = tolerance")


def records() -> list[Record]:
    return [_ring(), *_ddp(), *_pipeline(), _tensor()]
