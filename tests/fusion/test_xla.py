"""XLA in TensorFlow: imported after torch, same function in both frameworks. No timing is
asserted."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from accel_lib.fusion import (
    elementwise_chain,
    import_tensorflow,
    keras_mlp_from_torch,
    tf_elementwise_chain,
    xla_compare,
)
from accel_lib.models import MLP

# Not pytest.importorskip: it would import TensorFlow at collection, before triton (the
# import-order crash); the fixture imports it through import_tensorflow, triton first.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                reason="TensorFlow is not installed")


@pytest.fixture(scope="module")
def tf():
    return import_tensorflow(threads=1)


def test_keras_twin_computes_the_same_function(tf):
    mlp = MLP(hidden_sizes=(32, 16)).eval()
    keras_model = keras_mlp_from_torch(mlp)
    x = torch.randn(7, 64)
    with torch.no_grad():
        np.testing.assert_allclose(keras_model(x.numpy()).numpy(), mlp(x).numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="model must be an MLP"):
        keras_mlp_from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()))


def test_xla_matches_the_graph_and_torch(tf):
    x = torch.randn(1000)
    result = xla_compare(tf_elementwise_chain(3), tf.constant(x.numpy()), repeats=3, warmup=1)
    assert result.max_abs_diff < 1e-5 and result.backend == "XLA (jit_compile)"
    np.testing.assert_allclose(result.compiled(tf.constant(x.numpy())).numpy(),
                               elementwise_chain(3)(x).numpy(), atol=1e-5)
    mlp = MLP(hidden_sizes=(32,)).eval()
    keras_model = keras_mlp_from_torch(mlp)
    result = xla_compare(lambda t: keras_model(t, training=False),
                         tf.random.normal((4, 64)), name="mlp", repeats=3, warmup=1)
    assert result.name == "mlp" and result.max_abs_diff < 1e-4


def test_bad_arguments_are_refused(tf):
    with pytest.raises(TypeError, match="fn must be callable"):
        xla_compare(None, tf.ones(2))
    with pytest.raises(ValueError, match="threads must be a positive int"):
        import_tensorflow(threads=0)
