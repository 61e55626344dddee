"""The TensorFlow Model Optimization Toolkit (tfmot) on a tf.keras model: magnitude pruning,
quantization-aware training, weight clustering, and the sizes that show what each buys.

* pruning: ``prune_low_magnitude`` with a ``PolynomialDecay`` schedule raises the sparsity
  from 0 to ``final_sparsity`` while fine-tuning (``UpdatePruningStep`` advances it);
  ``strip_pruning`` removes the wrappers. Zeros only shrink a file once it is compressed:
  the gain shows in :func:`zipped_size_bytes`, not in the raw ``.tflite``.
* QAT: ``quantize_model`` inserts fake-quant ops (straight-through gradients) so training
  adapts to int8 rounding; the converter then makes an int8 model.
* clustering: ``cluster_weights`` ties each layer's weights to ``n`` shared values
  (k-means centroids): again, compression sees the repetition.

tfmot requires ``TF_USE_LEGACY_KERAS=1`` (tf_keras) set before TensorFlow is imported: see
:mod:`accel_lib.export._tf`.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from .._validate import check_fraction, check_int
from ._tf import import_tf
from .tflite import train_keras

__all__ = ["zipped_size_bytes", "kernel_sparsity", "prune_keras", "qat_keras",
           "cluster_keras", "unique_weights"]


def _tfmot() -> Any:
    import_tf()
    import tensorflow_model_optimization as tfmot

    return tfmot


def zipped_size_bytes(content: bytes) -> int:
    """Bytes of ``content`` in a deflate-compressed zip archive (what a download costs)."""
    if not isinstance(content, (bytes, bytearray)):
        raise TypeError("content must be bytes (e.g. a TFLite model), got "
                        f"{type(content).__name__}")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("model", bytes(content))
    return buf.getbuffer().nbytes


def _kernels(model: Any) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights if "kernel" in w.name]


def kernel_sparsity(model: Any) -> float:
    """Fraction of exactly-zero entries over every kernel (conv and dense weights)."""
    kernels = _kernels(model)
    total = sum(k.size for k in kernels)
    return float(sum((k == 0).sum() for k in kernels) / max(total, 1))


def unique_weights(model: Any) -> list[int]:
    """Number of distinct values in each kernel (after clustering: at most the cluster count)."""
    return [int(np.unique(k).size) for k in _kernels(model)]


def prune_keras(model: Any, x: np.ndarray, y: np.ndarray, *, final_sparsity: float = 0.8,
                epochs: int = 2, batch_size: int = 64, lr: float = 1e-3) -> Any:
    """Magnitude-prune a trained tf.keras model to ``final_sparsity`` while fine-tuning it,
    with a ``PolynomialDecay`` schedule over all ``epochs``; returns the stripped model."""
    check_fraction(final_sparsity, "final_sparsity", zero=False)
    check_int(epochs, "epochs")
    tfmot = _tfmot()
    steps = epochs * int(np.ceil(len(x) / batch_size))
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=final_sparsity, begin_step=0,
        end_step=max(steps - 1, 1), frequency=max(steps // 10, 1))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    train_keras(pruned, x, y, epochs=epochs, batch_size=batch_size, lr=lr,
                callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def qat_keras(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 1,
              batch_size: int = 64, lr: float = 1e-3) -> Any:
    """Quantization-aware fine-tuning (``quantize_model``) of a trained tf.keras model."""
    check_int(epochs, "epochs")
    tfmot = _tfmot()
    q = tfmot.quantization.keras.quantize_model(model)
    return train_keras(q, x, y, epochs=epochs, batch_size=batch_size, lr=lr)


def cluster_keras(model: Any, x: np.ndarray, y: np.ndarray, *, clusters: int = 16,
                  epochs: int = 1, batch_size: int = 64, lr: float = 1e-3) -> Any:
    """Weight clustering (``cluster_weights``, k-means++ centroids) of a trained tf.keras
    model, fine-tuned ``epochs``; returns the stripped model (``strip_clustering``)."""
    check_int(clusters, "clusters", minimum=2)
    check_int(epochs, "epochs")
    tfmot = _tfmot()
    ck = tfmot.clustering.keras
    clustered = ck.cluster_weights(
        model, number_of_clusters=clusters,
        cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS)
    train_keras(clustered, x, y, epochs=epochs, batch_size=batch_size, lr=lr)
    return ck.strip_clustering(clustered)
