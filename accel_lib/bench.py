"""One timer for every measurement in the course.

``time_fn`` warms up, synchronises the device around every sample, and reports the median
and spread in milliseconds; ``compare`` measures a baseline and an optimised callable side
by side (interleaved, in one process) and prints a baseline / optimised / ratio table.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ._validate import check_int
from .runtime import synchronize

__all__ = [
    "Timing",
    "Comparison",
    "summarize_ms",
    "time_fn",
    "compare",
    "ratio_table",
    "markdown_table",
]


def summarize_ms(samples_ms: Sequence[float]) -> tuple[float, float]:
    """Robust summary of timing samples: the median and the inter-quartile range (IQR).

    ``median`` is the middle sample (mean of the two middle ones for an even count) and
    ``IQR = Q3 - Q1`` with quartiles interpolated linearly (``numpy.percentile``'s default).
    Both ignore the occasional slow outlier that a mean and a standard deviation do not.

    Shapes: ``samples_ms`` is a flat sequence of n >= 1 numbers.
    """
    values = [float(s) for s in samples_ms]
    if not values:
        raise ValueError("samples_ms must hold at least one sample, got an empty sequence")
    if any(not math.isfinite(v) or v < 0 for v in values):
        raise ValueError("samples_ms must be finite, non-negative milliseconds")
    values.sort()
    return statistics.median(values), _quantile(values, 0.75) - _quantile(values, 0.25)


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class Timing:
    """Timing samples of one callable, in milliseconds per call."""

    name: str
    samples_ms: tuple[float, ...]
    device: str = "cpu"

    @property
    def median_ms(self) -> float:
        return summarize_ms(self.samples_ms)[0]

    @property
    def iqr_ms(self) -> float:
        return summarize_ms(self.samples_ms)[1]

    @property
    def min_ms(self) -> float:
        return min(self.samples_ms)

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.samples_ms)

    def throughput(self, items_per_call: float) -> float:
        """Items per second at the median latency (e.g. images/s for a batch)."""
        return items_per_call / (self.median_ms / 1e3)

    def __str__(self) -> str:
        return (
            f"{self.name} [{self.device}]: {self.median_ms:.3f} ms median "
            f"(IQR {self.iqr_ms:.3f} ms, n={len(self.samples_ms)})"
        )


def _check_counts(warmup: int, repeats: int, number: int | None) -> None:
    check_int(warmup, "warmup", minimum=0)
    check_int(repeats, "repeats")
    if number is not None:
        check_int(number, "number")


def _calls_per_sample(fn: Callable[[], Any], device: torch.device, min_sample_ms: float) -> int:
    """How many calls make one sample last at least ``min_sample_ms`` (timer resolution)."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    once_ms = (time.perf_counter() - start) * 1e3
    if once_ms >= min_sample_ms:
        return 1
    return min(1000, max(1, math.ceil(min_sample_ms / max(once_ms, 1e-4))))


def _sample_ms(fn: Callable[[], Any], device: torch.device, number: int) -> float:
    synchronize(device)  # start from an idle device, or we time earlier work too
    start = time.perf_counter()
    for _ in range(number):
        fn()
    synchronize(device)  # wait for the work we queued, or we time only the launch
    return (time.perf_counter() - start) * 1e3 / number


def time_fn(
    fn: Callable[[], Any],
    *,
    warmup: int = 3,
    repeats: int = 20,
    number: int | None = None,
    device: torch.device | str | None = None,
    name: str | None = None,
    min_sample_ms: float = 0.5,
) -> Timing:
    """Time ``fn()`` honestly: warm up, synchronise around each sample, keep every sample.

    Args:
        fn: a callable with no arguments (wrap arguments with a lambda).
        warmup: calls made and discarded first (allocator, caches, lazy init, JIT).
        repeats: number of samples kept.
        number: calls per sample; ``None`` picks enough that a sample lasts
            ``min_sample_ms`` (so microsecond ops are not lost in timer resolution).
        device: the device the work runs on; CUDA/MPS work is synchronised.
        name: a label for tables.

    Returns:
        A :class:`Timing` with per-call milliseconds.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    _check_counts(warmup, repeats, number)
    device = torch.device(device) if device is not None else torch.device("cpu")
    for _ in range(warmup):
        fn()
    calls = number or _calls_per_sample(fn, device, min_sample_ms)
    samples = tuple(_sample_ms(fn, device, calls) for _ in range(repeats))
    label = name or getattr(fn, "__name__", "fn")
    return Timing(label, samples, str(device))


@dataclass(frozen=True)
class Comparison:
    """A baseline and an optimised callable, measured side by side."""

    baseline: Timing
    optimized: Timing

    @property
    def speedup(self) -> float:
        """baseline median / optimised median: > 1 means the optimised one is faster."""
        return self.baseline.median_ms / self.optimized.median_ms

    def table(self) -> str:
        return markdown_table(
            ["", "median ms", "IQR ms", "ratio"],
            [
                [self.baseline.name, self.baseline.median_ms, self.baseline.iqr_ms, 1.0],
                [self.optimized.name, self.optimized.median_ms, self.optimized.iqr_ms,
                 self.speedup],
            ],
        )


def compare(
    baseline: Callable[[], Any],
    optimized: Callable[[], Any],
    *,
    names: tuple[str, str] = ("baseline", "optimized"),
    warmup: int = 3,
    repeats: int = 20,
    device: torch.device | str | None = None,
    verbose: bool = True,
) -> Comparison:
    """Measure two callables side by side and return (and print) their speed ratio.

    Samples alternate baseline, optimised, baseline, ... so that drift in the machine's
    load or clock affects both alike. The ratio is ``baseline median / optimised median``.
    """
    for label, fn in (("baseline", baseline), ("optimized", optimized)):
        if not callable(fn):
            raise ValueError(f"{label} must be callable, got {type(fn).__name__}")
    if len(names) != 2:
        raise ValueError(f"names must hold two labels, got {names!r}")
    _check_counts(warmup, repeats, None)
    device = torch.device(device) if device is not None else torch.device("cpu")
    for _ in range(warmup):
        baseline()
        optimized()
    calls = [_calls_per_sample(f, device, 0.5) for f in (baseline, optimized)]
    base_samples, opt_samples = [], []
    for _ in range(repeats):
        base_samples.append(_sample_ms(baseline, device, calls[0]))
        opt_samples.append(_sample_ms(optimized, device, calls[1]))
    result = Comparison(
        Timing(names[0], tuple(base_samples), str(device)),
        Timing(names[1], tuple(opt_samples), str(device)),
    )
    if verbose:
        print(result.table())
    return result


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return f"{value:.3e}"
    return str(value)


def _cell(value: Any) -> str:
    """One table cell: formatted, ``|`` escaped as ``\\|``, line breaks as ``<br>``."""
    text = _fmt(value).replace("|", "\\|")
    return "<br>".join(text.splitlines())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Render rows as a GitHub markdown table (numbers formatted; rows as wide as the header).

    Characters that would break a cell are escaped: ``|`` becomes ``\\|`` (a ``|`` in the
    text, not a column border) and a line break becomes ``<br>`` (a newline would end the row).
    """
    if not header:
        raise ValueError("header must name at least one column")
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"rows[{i}] has {len(row)} cells, header has {len(header)}")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_table(rows: Sequence[tuple[str, float, float, str]]) -> str:
    """The course's summary table: metric, original, optimised, ratio (original / optimised).

    Args:
        rows: ``(metric, original, optimized, unit)`` tuples, e.g.
            ``("latency", 4.1, 1.3, "ms")``.
    """
    out = []
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise ValueError(f"rows[{i}] must be (metric, original, optimized, unit), got {row!r}")
        metric, original, optimized, unit = row
        ratio = original / optimized if optimized else math.inf
        out.append([metric, unit, original, optimized, ratio])
    return markdown_table(["metric", "unit", "original", "optimised", "ratio"], out)
