import numpy as np
import pytest
import torch

from accel_lib.checks import check_close, check_equal, check_shape


def test_check_close_passes_within_tolerance():
    check_close(1.0 + 1e-9, 1.0, "x")
    check_close(torch.ones(3), np.ones(3), "vec")


def test_check_close_messages_teach():
    with pytest.raises(AssertionError, match=r"speed: expected 2, got 3"):
        check_close(3, 2, "speed")
    with pytest.raises(AssertionError, match=r"1 of 3 values differ; first at index \(1,\)"):
        check_close([1, 5, 3], [1, 2, 3], "v")
    with pytest.raises(AssertionError, match="forget to `return`"):
        check_close(None, 1, "f()")
    with pytest.raises(AssertionError, match="expected shape"):
        check_close([1, 2], [1, 2, 3], "s")
    with pytest.raises(AssertionError, match="NaN"):
        check_close(float("nan"), 1.0, "n")


def test_check_equal_and_shape():
    check_equal("memory", "memory", "bound")
    with pytest.raises(AssertionError, match="expected 'compute', got 'memory'"):
        check_equal("memory", "compute", "bound")
    check_shape(torch.zeros(2, 3), (2, 3), "t")
    with pytest.raises(AssertionError, match=r"expected shape \(3,\)"):
        check_shape([1, 2], (3,), "t")
