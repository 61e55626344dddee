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
    from ..fusion.xla import import_tensorflow

    # triton only: torchvision would cost ~190 MB for nothing here
    tf = import_tensorflow(threads=threads or torch.get_num_threads(), first=("triton",))
    if not tf.keras.__name__.startswith("tf_keras"):
        raise RuntimeError("TensorFlow was imported before TF_USE_LEGACY_KERAS=1 was set, so "
                           "tf.keras is Keras 3 and the TF Model Optimization Toolkit cannot "
                           "run: restart the kernel and import accel_lib.export first")
    return tf


def keras() -> Any:
    """``tf.keras`` (tf_keras), after :func:`import_tf`."""
    return import_tf().keras
