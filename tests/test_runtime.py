import random

import numpy as np
import pytest
import torch

from accel_lib.runtime import available_devices, get_device, set_seed, synchronize


def test_set_seed_makes_every_generator_repeat():
    g1 = set_seed(123)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g1))
    g2 = set_seed(123)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g2))
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (1.5, TypeError), ("0", TypeError),
                                        (True, TypeError)])
def test_set_seed_rejects_bad_seed(bad, error):
    with pytest.raises(error, match="seed"):
        set_seed(bad)


def test_get_device_auto_prefers_cuda_then_cpu():
    expected = "cuda" if torch.cuda.is_available() else None
    device = get_device()
    if expected:
        assert device.type == expected
    assert device in [torch.device(d.type) for d in available_devices()]
    assert get_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("bad, error", [("gpu", ValueError), ("tpu", ValueError), (3, TypeError)])
def test_get_device_rejects_unknown_names(bad, error):
    with pytest.raises(error, match="name"):
        get_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error path")
def test_get_device_cuda_missing_is_a_clear_error():
    with pytest.raises(ValueError, match="no CUDA device"):
        get_device("cuda")


def test_synchronize_on_cpu_is_a_no_op():
    synchronize("cpu")
    synchronize(None)


def test_check_int_names_the_parameter_and_range():
    from accel_lib._validate import check_int

    assert check_int(3, "rank") == 3 and check_int(0, "seed", minimum=0) == 0
    for bad, minimum, error, message in [
            (0, 1, ValueError, "rank must be a positive int, got 0"),
            (-1, 0, ValueError, "rank must be a non-negative int, got -1"),
            (8, 16, ValueError, "rank must be an int >= 16, got 8"),
            (True, 1, TypeError, "rank must be a positive int, got bool True"),
            (2.0, 1, TypeError, "rank must be a positive int, got float 2.0")]:
        with pytest.raises(error, match=message):
            check_int(bad, "rank", minimum=minimum)
