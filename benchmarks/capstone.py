"""The capstone (notebook 10): the reference compression pipeline and the Pareto front.

The baseline is :func:`accel_lib.capstone.train_baseline` (SmallCNN (32, 64) on the
digits); the reference pipeline is :data:`accel_lib.capstone.REFERENCE_STEPS`. Sizes are
state-dict bytes, FLOPs of one example, accuracy on the 270-image test split (one image =
0.37 pts). Speedups are baseline vs final model measured side by side
(accel_lib.bench.compare, interleaved samples) in one process.
"""

from __future__ import annotations

import torch

from accel_lib import capstone as CP
from accel_lib.bench import compare

from .record import Record


def records() -> list[Record]:
    data = CP.digits_data()
    base = CP.train_baseline(data)
    pipe = CP.Pipeline(CP.REFERENCE_STEPS)
    recs = pipe.run(base, data, time=False, gpu=None)
    first, last = recs[0], recs[-1]
    r = CP.ratios(first, last)
    label = f"SmallCNN{CP.BASELINE_CHANNELS} -> {pipe.label}"
    out = [
        Record("capstone/size-ratio", r["size_ratio"], "x", 4.0,
               f"{label}: state-dict bytes {first.size_bytes} -> {last.size_bytes}; "
               "baseline = the deliverable's target"),
        Record("capstone/flops-ratio", r["flops_ratio"], "x", 3.0,
               f"{label}: FLOPs per example {first.flops} -> {last.flops} (int8 layers keep "
               "their float layers' multiply-adds); baseline = the deliverable's target"),
        Record("capstone/accuracy-drop-pts", r["accuracy_drop_pts"], "pts", 1.0,
               f"{label}: test accuracy {100 * first.accuracy:.2f} -> "
               f"{100 * last.accuracy:.2f} %; baseline = the deliverable's limit"),
    ]
    threads = torch.get_num_threads()
    for batch in (1, 64):
        x = data.example[:1].expand(batch, -1, -1, -1).contiguous()
        with torch.inference_mode():
            c = compare(lambda: base(x), lambda: last.model(x),  # noqa: B023
                        warmup=5, repeats=40, verbose=False)
        out.append(Record(f"capstone/speedup-bs{batch}", c.speedup, "x", 1.0,
                          f"{label}, batch {batch}, {threads} threads: eager float baseline vs "
                          f"the pipeline's model ({c.baseline.median_ms:.3f} vs "
                          f"{c.optimized.median_ms:.3f} ms, median of 40 interleaved samples; "
                          "the integer layers run accel_lib's reference int8 path)"))
    # the same pruned, folded model handed to the two int8 runtimes, vs the float baseline
    x1 = data.example[:1].contiguous()
    for kind, runtime in (("export", "ort"), ("tflite", "tflite")):
        steps = (CP.Step("prune", 0.5, 3), CP.Step("fold"), CP.Step(kind, 8))
        model = CP.Pipeline(steps).run(base, data, time=False, gpu=None)[-1].model
        with torch.inference_mode():
            c = compare(lambda: base(x1), lambda: model(x1),  # noqa: B023
                        warmup=5, repeats=40, verbose=False)
        out.append(Record(f"capstone/{runtime}-int8-speedup-bs1", c.speedup, "x", 1.0,
                          f"SmallCNN{CP.BASELINE_CHANNELS} -> {CP.Pipeline(steps).label} "
                          f"({model.runtime}, {threads} threads), batch 1: eager float "
                          f"baseline vs the exported int8 model ({c.baseline.median_ms:.3f} vs "
                          f"{c.optimized.median_ms:.3f} ms, median of 40 interleaved samples)"))
    results = CP.grid_search(base, data, CP.ORDER_GRID, repeats=5)
    points = [CP.measure(base, data, "baseline", repeats=5).as_dict()
              | {"name": "baseline"}] + results
    front = CP.pareto_front(points)
    out.append(Record("capstone/pareto-points", float(len(front)), "variants",
                      float(len(points)),
                      f"non-dominated (accuracy up, bs1 latency down, size down) among the "
                      f"baseline and the {len(results)} pipelines of ORDER_GRID: "
                      f"{', '.join(points[i]['name'] for i in front)}; baseline = variants "
                      "measured"))
    return out
