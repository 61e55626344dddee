"""The one argument-checking vocabulary: a wrong type is a TypeError, a wrong value a
ValueError, and every message names the parameter and what it accepts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accel_lib._validate import (
    check_choice,
    check_fraction,
    check_int,
    check_module,
    check_real,
    check_tensor,
)
from accel_lib.models import MLP


def test_check_int_accepts_numpy_ints_and_returns_python_ints():
    value = check_int(np.int64(4), "rank")
    assert value == 4 and type(value) is int
    assert check_int(5, "bits", 2, 16) == 5
    with pytest.raises(ValueError, match=r"bits must be an int in \[2, 16\], got 17"):
        check_int(17, "bits", 2, 16)
    with pytest.raises(ValueError, match="axis must be an int <= 1, got 2"):
        check_int(2, "axis", None, 1)
    with pytest.raises(TypeError, match="must be an int, got str '3'"):
        check_int("3", "n", None)


@pytest.mark.parametrize("value", [0.5, 0, np.float32(0.5), np.float64(0.25), np.int64(0)])
def test_check_real_accepts_every_real_number_type(value):
    out = check_real(value, "sparsity", low=0, high=1, high_open=True)
    assert type(out) is float and out == float(value)


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, r"sparsity must be a number in \[0, 1\), got bool True"),
    ("0.5", TypeError, "got str '0.5'"),
    (None, TypeError, "got NoneType None"),
    (math.nan, ValueError, "got nan"),
    (1.0, ValueError, r"\[0, 1\), got 1.0"),
    (-0.1, ValueError, "got -0.1"),
])
def test_check_real_errors(value, error, message):
    with pytest.raises(error, match=message):
        check_real(value, "sparsity", low=0, high=1, high_open=True)


def test_check_real_bounds_and_meanings():
    assert check_real(0.0, "x") == 0.0
    with pytest.raises(ValueError, match="x must be a finite number, got inf"):
        check_real(math.inf, "x")
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        check_real(0, "temperature", low=0, low_open=True)
    with pytest.raises(ValueError, match="lr must be a finite number <= 1"):
        check_real(2, "lr", high=1)
    with pytest.raises(ValueError, match=r"alpha must be a number in \(0, 1\] \(a weight\)"):
        check_fraction(0.0, "alpha", zero=False, one=True, meaning="(a weight)")
    assert check_fraction(1, "alpha", one=True) == 1.0


def test_check_choice_lists_the_choices():
    registry = {"l1": None, "l2": None}
    assert check_choice("l1", "method", registry) == "l1"
    with pytest.raises(ValueError, match=r"method must be one of \['l1', 'l2'\], got 'l3'"):
        check_choice("l3", "method", registry)
    with pytest.raises(ValueError, match="got \\[1\\]"):
        check_choice([1], "method", registry)  # unhashable: simply not a choice


def test_check_module_says_pass_an_instance_for_a_class():
    model = MLP()
    assert check_module(model) is model
    with pytest.raises(TypeError, match=r"got the class MLP: pass an instance, e.g. MLP\(\)"):
        check_module(MLP)
    with pytest.raises(TypeError, match="teacher must be an nn.Module, got str"):
        check_module("mlp", "teacher")


def test_check_tensor_kinds_dims_and_emptiness():
    t = torch.ones(2, 3)
    assert check_tensor(t, "x", ndim=2) is t
    with pytest.raises(TypeError, match=r"x must be a torch.Tensor \(convert it with "
                                        r"torch.as_tensor\), got list"):
        check_tensor([1.0], "x")
    with pytest.raises(TypeError, match="torch.as_tensor"):
        check_tensor(np.ones(3), "x")
    with pytest.raises(ValueError, match=r"x must be a 1-D tensor, got shape \(2, 3\)"):
        check_tensor(t, "x", ndim=1)
    with pytest.raises(ValueError, match="x must not be empty"):
        check_tensor(torch.ones(0), "x")
    assert check_tensor(torch.ones(0), "x", allow_empty=True).numel() == 0


def test_check_tensor_finite_counts_the_bad_values():
    x = torch.tensor([1.0, math.nan, math.inf, -math.inf, 2.0])
    with pytest.raises(ValueError, match="x must be finite, got 1 NaN and 2 infinite values of 5"):
        check_tensor(x, "x", finite=True)
    assert check_tensor(x, "x") is x  # only checked on request
    codes = torch.tensor([1, 2], dtype=torch.int8)
    assert check_tensor(codes, "q", finite=True) is codes  # integers are always finite
