"""Assertions for exercises: they say what was expected, what came, and where they differ."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["check_close", "check_equal", "check_shape"]


def _as_array(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


def check_shape(actual: Any, expected_shape: tuple[int, ...], name: str) -> None:
    """Assert ``actual`` has ``expected_shape``."""
    shape = tuple(np.shape(actual)) if not isinstance(actual, torch.Tensor) else tuple(actual.shape)
    if shape != tuple(expected_shape):
        raise AssertionError(f"{name}: expected shape {tuple(expected_shape)}, got {shape}")


def check_close(actual: Any, expected: Any, name: str, *, rtol: float = 1e-5,
                atol: float = 1e-8) -> None:
    """Assert two numbers or arrays agree within ``atol + rtol * |expected|``.

    The message names the check, the expected and actual values (or the worst element).
    """
    if actual is None:
        raise AssertionError(f"{name}: got None; did the function forget to `return`?")
    try:
        a = _as_array(actual)
    except (TypeError, ValueError) as err:
        kind = type(actual).__name__
        raise AssertionError(f"{name}: expected a number or array, got {kind}") from err
    e = _as_array(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: expected shape {e.shape}, got {a.shape}")
    if np.isnan(a).any() and not np.isnan(e).any():
        raise AssertionError(f"{name}: result contains NaN")
    bad = ~np.isclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        if a.ndim == 0:
            raise AssertionError(f"{name}: expected {e.item():.6g}, got {a.item():.6g}")
        i = tuple(int(j) for j in np.argwhere(bad)[0])
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {a.size} values differ; first at index {i}: "
            f"expected {e[i]:.6g}, got {a[i]:.6g}")


def check_equal(actual: Any, expected: Any, name: str) -> None:
    """Assert ``actual == expected`` (exact), with a message naming both."""
    if actual != expected:
        raise AssertionError(f"{name}: expected {expected!r}, got {actual!r}")
