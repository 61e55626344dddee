"""Calibration observers: watch activations (or weights) and choose the range to quantize.

The range trades two errors. Rounding error grows with the step ``s = range / (2^b - 1)``
(its mean square is about ``s^2 / 12``); clipping error comes from every value outside the
range. Min-max never clips but wastes steps on outliers; a percentile or an MSE search
clips a few outliers to make the step smaller for everything else.

* :class:`MinMaxObserver`: running min and max (``torch.ao.quantization.MinMaxObserver``).
* :class:`MovingAverageMinMaxObserver`: ``m <- m + c (m_batch - m)`` per batch.
* :class:`PercentileObserver`: the ``p``-th and ``(100 - p)``-th percentiles of the samples.
* :class:`MSEObserver`: the shrunken range ``alpha [min, max]`` whose round trip has the
  least mean squared error, searched on a grid of ``alpha`` for the requested bit width.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validate import check_choice, check_int, check_real
from .ops import QParams, channel_minmax, channel_rows, choose_qparams, fake_quantize, quant_range

__all__ = [
    "Observer",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "PercentileObserver",
    "MSEObserver",
    "OBSERVERS",
    "make_observer",
    "check_percentile",
]


def check_percentile(percentile: float, name: str = "percentile") -> float:
    """Return ``percentile`` as a float if it is a number in (50, 100]."""
    return check_real(percentile, name, low=50, high=100, low_open=True)


class Observer:
    """Base class: ``update(x)`` with batches, then ``qparams(bits, symmetric=...)``.

    Args:
        axis: ``None`` for one range per tensor, or the channel axis for one range per slice.

    Shapes: per channel, every batch must have the same size along ``axis``.
    """

    def __init__(self, axis: int | None = None) -> None:
        self.axis = None if axis is None else check_int(axis, "axis", None)
        self.batches = 0

    def update(self, x: torch.Tensor) -> None:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Observe ``x`` and return it unchanged (so an observer can sit in a forward pass)."""
        self.update(x)
        return x

    def _check_seen(self) -> None:
        if self.batches == 0:
            raise ValueError(f"{type(self).__name__} observed no data: call update() with "
                             "calibration batches before asking for its range or qparams")

    def range(self, bits: int = 8, *, symmetric: bool = False,
              signed: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(min_val, max_val)``: 0-d per tensor, (C,) per channel."""
        raise NotImplementedError

    def qparams(self, bits: int = 8, *, symmetric: bool = False,
                signed: bool | None = None) -> QParams:
        """Scale and zero point for ``bits``-wide codes over the observed range."""
        lo, hi = self.range(bits, symmetric=symmetric, signed=signed)
        return choose_qparams(lo, hi, bits, symmetric=symmetric, signed=signed, axis=self.axis)

    def _shape_out(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(()) if self.axis is None else t


class MinMaxObserver(Observer):
    """Running minimum and maximum of everything observed: never clips."""

    def __init__(self, axis: int | None = None) -> None:
        super().__init__(axis)
        self.min_val: torch.Tensor | None = None
        self.max_val: torch.Tensor | None = None

    def _combine(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        self.min_val = lo if self.min_val is None else torch.minimum(self.min_val, lo)
        self.max_val = hi if self.max_val is None else torch.maximum(self.max_val, hi)

    def update(self, x: torch.Tensor) -> None:
        lo, hi = channel_minmax(x, self.axis)
        if self.min_val is not None and self.min_val.numel() != lo.numel():
            raise ValueError(f"x has {lo.numel()} channels along axis {self.axis}, "
                             f"earlier batches had {self.min_val.numel()}")
        self._combine(lo, hi)
        self.batches += 1

    def range(self, bits: int = 8, *, symmetric: bool = False,
              signed: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_seen()
        return self._shape_out(self.min_val), self._shape_out(self.max_val)


class MovingAverageMinMaxObserver(MinMaxObserver):
    """Exponential moving average of per-batch min and max (QAT's default range tracker).

    ``min <- min + c (min_batch - min)`` (the first batch sets it), likewise for max; the
    same rule as ``torch.ao.quantization.MovingAverageMinMaxObserver``.
    """

    def __init__(self, averaging_constant: float = 0.01, axis: int | None = None) -> None:
        super().__init__(axis)
        self.averaging_constant = check_real(averaging_constant, "averaging_constant", low=0,
                                             high=1, low_open=True)

    def _combine(self, lo: torch.Tensor, hi: torch.Tensor) -> None:
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
            return
        c = self.averaging_constant
        self.min_val = self.min_val + c * (lo - self.min_val)
        self.max_val = self.max_val + c * (hi - self.max_val)


_KEY_STREAM = 0x5EED  # salts the sampling keys' stream: no data generator shares it


class _SampleObserver(Observer):
    """Keeps the observed values for range searches: all of them while they fit in
    ``max_samples``, then a uniform random sample of that size.

    Reservoir sampling with random keys (Efraimidis & Spirakis, equal weights): every
    column of values (one value per channel, kept together) draws a key ``u ~ U(0, 1)``
    and the ``k = max_samples // C`` columns with the smallest keys stay. Every value seen
    so far is then kept with the same probability ``k / n``, whatever the batch sizes and
    order, and the sample never exceeds the budget. The keys come from the observer's own
    generator (numpy's PCG64 on a salted child stream of ``SeedSequence(seed)``): repeatable,
    and unrelated to data drawn with the same seed from torch's or numpy's default generator
    (keys from ``torch.manual_seed(0)`` would mirror ``torch.randn`` data made after
    ``set_seed(0)``, and sample the wide values of such a batch half as often as the rest).

    Shapes: per channel, the sample is (C, k) with ``C k <= max_samples``.
    """

    def __init__(self, axis: int | None = None, max_samples: int = 2**20, seed: int = 0) -> None:
        super().__init__(axis)
        self.max_samples = check_int(max_samples, "max_samples", minimum=2)
        self.seed = check_int(seed, "seed", minimum=0)
        self._generator = np.random.default_rng(
            np.random.SeedSequence(self.seed, spawn_key=(_KEY_STREAM,)))
        self._chunks: list[torch.Tensor] = []  # (C, n_i) values, in arrival order
        self._keys: list[torch.Tensor] = []  # (n_i,) one key per column, on the CPU

    def update(self, x: torch.Tensor) -> None:
        rows = channel_rows(x, self.axis)  # (C, n)
        channels = rows.shape[0]
        if self._chunks and self._chunks[0].shape[0] != channels:
            raise ValueError(f"x has {channels} channels along axis {self.axis}, "
                             f"earlier batches had {self._chunks[0].shape[0]}")
        capacity = self.max_samples // channels  # columns kept
        if capacity == 0:
            raise ValueError(f"max_samples must be at least the number of channels "
                             f"({channels}) to keep one value of each, got {self.max_samples}")
        self._chunks.append(rows)
        self._keys.append(torch.from_numpy(self._generator.random(rows.shape[1])))
        if sum(k.numel() for k in self._keys) > capacity:  # keep the smallest keys
            keys = torch.cat(self._keys)
            keep = torch.topk(keys, capacity, largest=False).indices.sort().values
            merged = torch.cat(self._chunks, dim=1)
            self._chunks = [merged[:, keep.to(merged.device)]]
            self._keys = [keys[keep]]
        self.batches += 1

    @property
    def samples(self) -> torch.Tensor:
        """Observed values (or their sample), (C, N) per channel or (1, N) per tensor."""
        self._check_seen()
        if len(self._chunks) > 1:
            self._chunks = [torch.cat(self._chunks, dim=1)]
            self._keys = [torch.cat(self._keys)]
        return self._chunks[0]


class PercentileObserver(_SampleObserver):
    """Range from the ``(100 - p)``-th to the ``p``-th percentile: clips the rarest outliers."""

    def __init__(self, percentile: float = 99.99, axis: int | None = None,
                 max_samples: int = 2**20, seed: int = 0) -> None:
        super().__init__(axis, max_samples, seed)
        self.percentile = check_percentile(percentile)

    def range(self, bits: int = 8, *, symmetric: bool = False,
              signed: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.samples.double()
        q = torch.tensor([1 - self.percentile / 100, self.percentile / 100], dtype=torch.float64)
        lo, hi = torch.quantile(rows, q.to(rows.device), dim=1).float()  # each (C,)
        return self._shape_out(lo), self._shape_out(hi)


class MSEObserver(_SampleObserver):
    """The range ``alpha [min, max]`` minimising the round trip's mean squared error.

    ``alpha`` runs over ``grid`` values in ``(0, 1]`` (1 = min-max, so this never does worse
    than min-max on the observed data); the best one depends on ``bits``: fewer bits make
    rounding costlier, so the search clips more.
    """

    def __init__(self, grid: int = 100, axis: int | None = None, max_samples: int = 2**20,
                 seed: int = 0) -> None:
        super().__init__(axis, max_samples, seed)
        self.grid = check_int(grid, "grid")

    def range(self, bits: int = 8, *, symmetric: bool = False,
              signed: bool | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        quant_range(bits)  # validates bits
        rows = self.samples  # (C, N)
        lo, hi = rows.amin(dim=1), rows.amax(dim=1)
        best_err = torch.full_like(lo, float("inf"))
        best_lo, best_hi = lo.clone(), hi.clone()
        for alpha in torch.linspace(1.0, 1.0 / self.grid, self.grid).tolist():
            qp = choose_qparams(alpha * lo, alpha * hi, bits, symmetric=symmetric,
                                signed=signed, axis=0)
            err = ((fake_quantize(rows, qp) - rows) ** 2).mean(dim=1)  # (C,)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best_lo = torch.where(better, alpha * lo, best_lo)
            best_hi = torch.where(better, alpha * hi, best_hi)
        return self._shape_out(best_lo), self._shape_out(best_hi)


OBSERVERS: dict[str, type[Observer]] = {
    "minmax": MinMaxObserver,
    "moving_average": MovingAverageMinMaxObserver,
    "percentile": PercentileObserver,
    "mse": MSEObserver,
}


def make_observer(name: str, axis: int | None = None, **kwargs: float) -> Observer:
    """An observer by name: one of :data:`OBSERVERS` (keyword arguments go to its constructor)."""
    check_choice(name, "observer", OBSERVERS)
    return OBSERVERS[name](axis=axis, **kwargs)
