"""The capstone, in one import: ``from accel_lib import capstone as CP``.

* ``pipeline``: a :class:`Pipeline` of :class:`Step` (distill, prune, sparsify, low rank,
  fold, PTQ / QAT, export to ONNX Runtime or TFLite), each step a call into the technique
  packages, each result measured (accuracy, bytes, FLOPs, bs1 / bs64 latency on the CPU and,
  when there is one, the GPU), fine-tuning with a fixed epoch budget.
* ``pareto``: the non-dominated set over (accuracy up, latency down, size down), a table and
  a plot of 2-D projections with the front highlighted (GPU latency in a panel of its own).
* ``reference``: the larger baseline, the reference pipeline and the order grid.
* ``search``: a seeded grid search over a few pipelines, cached to JSON keyed by machine and
  library version (a stale cache is ignored).
"""

from __future__ import annotations

from .pareto import OBJECTIVES, dominates, pareto_front, pareto_table, plot_pareto
from .pipeline import (
    EXPORT_KINDS,
    GPU_HEADER,
    RECORD_HEADER,
    STEP_KINDS,
    Exported,
    Pipeline,
    PipelineData,
    Step,
    StepRecord,
    apply_step,
    gpu_device,
    measure,
    ratios,
)
from .reference import (
    BASELINE_CHANNELS,
    BASELINE_EPOCHS,
    ORDER_GRID,
    REFERENCE_STEPS,
    digits_data,
    train_baseline,
)
from .search import cache_key, grid_search, load_cache

__all__ = [
    "STEP_KINDS", "EXPORT_KINDS", "Step", "StepRecord", "PipelineData", "Pipeline",
    "RECORD_HEADER", "GPU_HEADER", "Exported", "apply_step", "gpu_device", "measure", "ratios",
    "OBJECTIVES", "dominates", "pareto_front", "pareto_table", "plot_pareto",
    "grid_search", "cache_key", "load_cache",
    "BASELINE_CHANNELS", "BASELINE_EPOCHS", "REFERENCE_STEPS", "ORDER_GRID", "digits_data",
    "train_baseline",
]
