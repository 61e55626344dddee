"""A seeded grid search over a few pipelines, cached to a JSON file.

The cache is keyed by the machine (CPU model, GPU, PyTorch version, threads) and accel_lib's
version, and by the grid itself: a cache written elsewhere, by another version or for
another grid is stale and ignored (re-run and overwritten).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._validate import check_int, check_module
from ..runtime import cpu_model, set_seed
from .pipeline import Pipeline, PipelineData, Step

__all__ = ["cache_key", "load_cache", "grid_search", "grid_labels"]


def _source_digest() -> str:
    """A hash of the capstone package's source: an edited pipeline makes old results stale
    even before the version number changes."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def cache_key() -> dict[str, str]:
    """What a cached result depends on: machine, GPU, threads, PyTorch and accel_lib versions
    (and the capstone package's source)."""
    from .. import __version__

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "none"
    return {"machine": f"{platform.machine()} {cpu_model()}",
            "gpu": gpu, "torch": torch.__version__, "threads": str(torch.get_num_threads()),
            "accel_lib": __version__, "source": _source_digest()}


def grid_labels(grid: Sequence[Sequence[Step]]) -> list[str]:
    return [Pipeline(steps).label for steps in grid]


def load_cache(path: str | os.PathLike, grid: Sequence[Sequence[Step]],
               seed: int) -> list[dict[str, Any]] | None:
    """The cached results if ``path`` holds this machine's, version's, grid's and seed's;
    else None (missing, unreadable or stale)."""
    try:
        blob = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if (not isinstance(blob, dict) or blob.get("key") != cache_key()
            or blob.get("grid") != grid_labels(grid) or blob.get("seed") != seed):
        return None
    return blob.get("results")


def grid_search(baseline: nn.Module, data: PipelineData, grid: Sequence[Sequence[Step]], *,
                seed: int = 0, cache: str | os.PathLike | None = None, time: bool = True,
                repeats: int = 5, gpu: str | torch.device | None = "auto",
                on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Run every pipeline of ``grid`` on ``baseline`` (seeded before each), return one dict
    per pipeline: its label, its final record's measurements and each step's. ``time``,
    ``repeats`` and ``gpu`` are :func:`~accel_lib.capstone.pipeline.measure`'s.

    With ``cache`` a fresh cache is returned without running anything, and a run writes it.
    """
    check_module(baseline, "baseline")
    check_int(seed, "seed", minimum=0)
    grid = [list(steps) for steps in grid]
    if not grid:
        raise ValueError("grid must hold at least one pipeline (a list of Steps), got none")
    if cache is not None:
        hit = load_cache(cache, grid, seed)
        if hit is not None:
            return hit
    results = []
    for steps in grid:
        set_seed(seed)
        pipe = Pipeline(steps)
        records = pipe.run(baseline, data, time=time, repeats=repeats, gpu=gpu)
        result = records[-1].as_dict() | {"name": pipe.label,
                                          "steps": [r.as_dict() for r in records]}
        results.append(result)
        if on_result:
            on_result(result)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        Path(cache).write_text(json.dumps({"key": cache_key(), "grid": grid_labels(grid),
                                           "seed": seed, "results": results}, indent=1))
    return results
