"""Argument checks shared by every module: errors that name the parameter and what it accepts.

One vocabulary, one rule for the exception type everywhere in ``accel_lib``:

* the wrong *kind* of thing (a string for a number, a class for a model, a list for a
  tensor) is a ``TypeError``;
* the right kind with a wrong *value* (a negative rank, a sparsity of 1.5, an unknown
  name, an empty tensor) is a ``ValueError``.

Numbers accept every real type, numpy scalars included (``np.float32(0.5)`` from a sweep
is as good as ``0.5``), but never ``bool``: ``True`` as a bit width is a mistake.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "check_int",
    "check_real",
    "check_fraction",
    "check_choice",
    "check_module",
    "check_tensor",
]


def _kind(value: object) -> str:
    return type(value).__name__


def check_int(value: object, name: str, minimum: int | None = 1,
              maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``.

    ``None`` bounds are open. Raises TypeError for a non-integer (bools included) and
    ValueError outside the range; the message names ``name`` and the accepted range, e.g.
    ``"rank must be a positive int, got 0"``.
    """
    if minimum is None and maximum is None:
        accepted = "an int"
    elif maximum is None:
        accepted = {0: "a non-negative int", 1: "a positive int"}.get(
            minimum, f"an int >= {minimum}")
    elif minimum is None:
        accepted = f"an int <= {maximum}"
    else:
        accepted = f"an int in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {accepted}, got {_kind(value)} {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return int(value)


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    if low is None and high is None:
        return "a finite number"
    if high is None:
        return f"a finite number {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"a finite number {'<' if high_open else '<='} {high:g}"
    return f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_real(value: object, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, meaning: str = "") -> float:
    """Return ``value`` as a ``float`` if it is a finite real number inside the interval.

    ``low``/``high`` are the bounds (``None``: unbounded), closed unless ``low_open`` /
    ``high_open``. ``meaning`` is appended to the message, e.g. "(the fraction of weights
    removed)". Raises TypeError for a non-number (bools and strings included) and
    ValueError for NaN, infinities or a value outside the interval.
    """
    accepted = _interval(low, high, low_open, high_open) + (f" {meaning}" if meaning else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {accepted}, got {_kind(value)} {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    too_low = low is not None and (v <= low if low_open else v < low)
    too_high = high is not None and (v >= high if high_open else v > high)
    if too_low or too_high:
        raise ValueError(f"{name} must be {accepted}, got {value!r}")
    return v


def check_fraction(value: object, name: str, *, zero: bool = True, one: bool = False,
                   meaning: str = "") -> float:
    """``check_real`` on ``[0, 1]``, with 0 and 1 each allowed or not (default ``[0, 1)``)."""
    return check_real(value, name, low=0.0, high=1.0, low_open=not zero, high_open=not one,
                      meaning=meaning)


def check_choice(value: object, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices`` (e.g. a registry dict's keys).

    Raises ValueError naming the accepted values, e.g.
    ``"method must be one of ['l1', 'l2'], got 'l3'"``.
    """
    options = list(choices)
    try:
        known = value in options
    except TypeError:  # an unhashable or oddly comparing value is simply not a choice
        known = False
    if not known:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return value


def check_module(value: object, name: str = "model") -> nn.Module:
    """Return ``value`` if it is an ``nn.Module`` instance.

    Raises TypeError; for a class rather than an instance (``MLP`` for ``MLP()``) the
    message says so: ``"model must be an nn.Module instance, got the class MLP: pass an
    instance, e.g. MLP()"``.
    """
    if isinstance(value, nn.Module):
        return value
    if isinstance(value, type) and issubclass(value, nn.Module):
        raise TypeError(f"{name} must be an nn.Module instance, got the class "
                        f"{value.__name__}: pass an instance, e.g. {value.__name__}()")
    raise TypeError(f"{name} must be an nn.Module, got {_kind(value)}")


def check_tensor(value: object, name: str, *, ndim: int | None = None,
                 allow_empty: bool = False, finite: bool = False) -> torch.Tensor:
    """Return ``value`` if it is a ``torch.Tensor`` (of ``ndim`` dims, non-empty by default,
    and with no NaN or infinity when ``finite``).

    Raises TypeError for anything else (a list or a numpy array: wrap it with
    ``torch.as_tensor``) and ValueError for the wrong number of dims, an empty tensor, or
    (``finite=True``) NaN / infinite values, e.g. ``"x must be finite, got 1 NaN and 0
    infinite values of 6"``.
    """
    if not isinstance(value, torch.Tensor):
        hint = " (convert it with torch.as_tensor)" if isinstance(value, (list, tuple)) or \
            type(value).__module__ == "numpy" else ""
        raise TypeError(f"{name} must be a torch.Tensor{hint}, got {_kind(value)}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name} must be a {ndim}-D tensor, got shape {tuple(value.shape)}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")
    if finite and (value.is_floating_point() or value.is_complex()) and \
            not bool(torch.isfinite(value).all()):
        nans, infs = int(torch.isnan(value).sum()), int(torch.isinf(value).sum())
        raise ValueError(f"{name} must be finite, got {nans} NaN and {infs} infinite values "
                         f"of {value.numel()}")
    return value
