"""One row per deployed variant: framework, format, precision, size, accuracy, latency."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..bench import time_fn

__all__ = ["Variant", "VARIANT_HEADER", "measure_variant", "accuracy", "digits_arrays",
           "cpu_description"]

VARIANT_HEADER = ["framework", "format", "precision", "size (KB)", "accuracy",
                  "bs1 (ms)", "bs64 (ms)"]


@dataclass(frozen=True)
class Variant:
    """A deployed model and what it measured (latencies: median ms per batch)."""

    framework: str
    format: str
    precision: str
    size_bytes: int
    accuracy: float
    bs1_ms: float
    bs64_ms: float

    @property
    def name(self) -> str:
        return f"{self.format} {self.precision}"

    def row(self) -> list[object]:
        return [self.framework, self.format, self.precision, round(self.size_bytes / 1024, 1),
                round(self.accuracy, 4), round(self.bs1_ms, 4), round(self.bs64_ms, 4)]


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of logits (N, C) against labels (N,)."""
    logits, y = np.asarray(logits), np.asarray(y)
    if logits.ndim != 2 or len(logits) != len(y):
        raise ValueError(f"logits must be (N, C) with N = len(y) = {len(y)}, got {logits.shape}")
    return float((logits.argmax(-1) == y).mean())


def measure_variant(framework: str, fmt: str, precision: str, size_bytes: int,
                    predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, y: np.ndarray,
                    *, repeats: int = 15) -> Variant:
    """Accuracy of ``predict`` on all of ``x`` and its latency at batch 1 and batch 64."""
    acc = accuracy(predict(x), y)
    one, batch = x[:1], x[:64]
    bs1 = time_fn(lambda: predict(one), warmup=3, repeats=repeats).median_ms
    bs64 = time_fn(lambda: predict(batch), warmup=3, repeats=repeats).median_ms
    return Variant(framework, fmt, precision, int(size_bytes), acc, bs1, bs64)


def digits_arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The course's digits split as numpy: ``x_train, y_train, x_test, y_test``; images
    (N, 1, 8, 8) float32, standardised with the training statistics (as
    :func:`accel_lib.data.digits_loaders` does), labels (N,) int64."""
    import torch

    from ..data import digits_loaders

    splits = digits_loaders(batch_size=256, seed=seed)

    def cat(loader: object) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = zip(*loader, strict=True)  # type: ignore[call-overload]
        return torch.cat(xs).numpy(), torch.cat(ys).numpy()

    (xtr, ytr), (xte, yte) = cat(splits.train), cat(splits.test)
    return xtr, ytr, xte, yte


def cpu_description() -> str:
    """This machine's CPU and its widest vector ISA, e.g. ``"Intel(R) Xeon(R) ... (AVX-512
    VNNI)"``: what a deployment table's latencies belong to."""
    from ..runtime import cpu_features, cpu_model

    name = cpu_model()
    flags = cpu_features() or frozenset()
    isa = ("AVX-512 VNNI" if "avx512_vnni" in flags else "AVX-512" if "avx512f" in flags else
           "AVX2" if "avx2" in flags else "Arm dot-product" if "asimddp" in flags else
           "no AVX2 or unknown ISA")
    return f"{name} ({isa})"
