"""Import TensorFlow the one safe way: after torch, with tf.keras = tf_keras.

Three traps: TensorFlow imported before triton (which torch's exporters and torchvision load)
crashes the process; the TF Model Optimization Toolkit needs ``TF_USE_LEGACY_KERAS=1`` set
*before* TensorFlow is imported (so ``tf.keras`` is tf_keras, Keras 2); TensorFlow's C++
start-up logs drown a notebook. Every function of :mod:`accel_lib.export` that needs
TensorFlow calls :func:`import_tf` inside it, so ``import accel_lib`` stays TensorFlow-free.
"""

from __future__ import annotations

import os
from typing import Any

import torch  # noqa: F401  (first: torch before TensorFlow, always)

__all__ = ["import_tf", "keras"]


def import_tf(threads: int | None = None) -> Any:
    """Return ``tensorflow``, imported after torch with legacy Keras and quiet logs.

    ``threads``: TensorFlow's intra-op threads (``None``: torch's count, so both frameworks
    use the same cores); GPUs are hidden from TensorFlow (PyTorch keeps them). Raises
    RuntimeError if TensorFlow was already imported with Keras 3.
    """
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:  # triton before TensorFlow, or a later import of it crashes the process; not
        import triton  # noqa: F401  (torchvision too: that costs ~190 MB for nothing here)
    except ImportError:
        pass
    from ..fusion.xla import _quiet_native_stderr

    threads = threads or torch.get_num_threads()
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        try:
            tf.config.set_visible_devices([], "GPU")  # TensorFlow would reserve all of it
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already initialised: its settings stay
            pass
    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError("TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set, so "
                           "tf.keras is Keras 3 and the TF Model Optimization Toolkit cannot "
                           "run: restart the kernel and import accel_lib.export first")
    return tf


def keras() -> Any:
    """``tf.keras`` (tf_keras), after :func:`import_tf`."""
    return import_tf().keras
