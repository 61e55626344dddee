"""TensorFlow Lite: a tf.keras twin of the course's models, four conversions, the LiteRT
interpreter, and the int8 parameters a converted model stores.

Conversions (``TFLiteConverter.from_keras_model``), :data:`TFLITE_MODES`:

* ``float32``: the graph as is, flattened into a FlatBuffer;
* ``dynamic-int8``: ``optimizations=[Optimize.DEFAULT]``: int8 weights, float activations
  (kernels quantize activations on the fly);
* ``int8``: full-integer: int8 weights *and* activations, ranges calibrated on a
  representative dataset, int8 input and output tensors (what a microcontroller or an
  Edge TPU needs);
* ``float16``: float16 weights (half the size), dequantized to float32 on the CPU.

The interpreter is ``ai_edge_litert.interpreter.Interpreter`` (``tf.lite.Interpreter`` is
deprecated). TensorFlow is imported inside the functions, after torch (see ``_tf``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._validate import check_choice, check_int, check_real
from ._files import check_model_file
from ._tf import import_tf

__all__ = ["TFLITE_MODES", "KERAS_KINDS", "to_nhwc", "keras_model", "train_keras",
           "representative_dataset", "convert_tflite", "LiteModel", "tensor_qparams",
           "real_value"]

TFLITE_MODES = ("float32", "dynamic-int8", "int8", "float16")
KERAS_KINDS = ("cnn", "mlp")


def to_nhwc(x: np.ndarray) -> np.ndarray:
    """PyTorch's (N, C, H, W) images as TensorFlow's (N, H, W, C)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D (N, C, H, W) array, got shape {x.shape}")
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def keras_model(kind: str = "cnn", *, channels: Sequence[int] = (8, 16),
                hidden_sizes: Sequence[int] = (128, 64), num_classes: int = 10,
                seed: int = 0) -> Any:
    """A tf.keras (tf_keras) model of the same architecture as ``accel_lib.models``:

    * ``"cnn"``: SmallCNN: [Conv3x3 (no bias) -> BatchNorm -> ReLU] per channel count,
      2x2 max-pool, Flatten, Dense; input (N, 8, 8, 1) NHWC;
    * ``"mlp"``: MLP: Flatten, [Dense -> ReLU] per hidden size, Dense; input (N, 8, 8, 1).

    Output: logits (N, num_classes).
    """
    check_choice(kind, "kind", KERAS_KINDS)
    check_int(num_classes, "num_classes")
    tf = import_tf()
    tf.keras.utils.set_random_seed(seed)
    L = tf.keras.layers
    layers: list[Any] = [tf.keras.Input((8, 8, 1), name="x")]
    if kind == "cnn":
        for c in channels:
            layers += [L.Conv2D(check_int(c, "channels"), 3, padding="same", use_bias=False),
                       L.BatchNormalization(), L.ReLU()]
        layers += [L.MaxPool2D(2), L.Flatten()]
    else:
        layers.append(L.Flatten())
        layers += [L.Dense(check_int(h, "hidden_sizes"), activation="relu")
                   for h in hidden_sizes]
    layers.append(L.Dense(num_classes, name="logits"))
    return tf.keras.Sequential(layers, name=f"keras_{kind}")


def train_keras(model: Any, x: np.ndarray, y: np.ndarray, *, epochs: int = 5,
                lr: float = 3e-3, batch_size: int = 64, callbacks: Sequence[Any] = ()) -> Any:
    """Compile (Adam, cross-entropy on logits) and fit ``model`` on NHWC ``x``; returns it."""
    check_int(epochs, "epochs")
    check_real(lr, "lr", low=0.0, low_open=True)
    tf = import_tf()
    model.compile(tf.keras.optimizers.Adam(lr),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True,
              callbacks=list(callbacks))
    return model


def representative_dataset(x: np.ndarray, n: int = 100) -> Callable[[], Iterator[list]]:
    """The converter's calibration input: a function returning a generator that yields
    ``[one example of shape (1, ...)]`` for the first ``n`` examples of ``x`` (float32).

    Raises ValueError naming ``representative_data`` when ``x`` holds no example.
    """
    data = np.asarray(x, dtype=np.float32)
    if data.ndim < 2 or len(data) == 0:
        raise ValueError("representative_data must hold at least one example (shape (N, ...) "
                         f"with N >= 1), got shape {data.shape}")
    check_int(n, "n")

    def gen() -> Iterator[list]:
        for i in range(min(n, len(data))):
            yield [data[i:i + 1]]

    return gen


def convert_tflite(model: Any, mode: str = "float32", *,
                   representative_data: np.ndarray | None = None,
                   path: str | os.PathLike | None = None) -> bytes:
    """Convert a tf.keras model to a TFLite FlatBuffer (``bytes``; also written to ``path``).

    ``mode`` is one of :data:`TFLITE_MODES`; ``"int8"`` needs ``representative_data``
    (NHWC inputs, e.g. 100 training digits).
    """
    check_choice(mode, "mode", TFLITE_MODES)
    tf = import_tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        conv.target_spec.supported_types = [tf.float16]
    if mode == "int8":
        if representative_data is None:
            raise ValueError("representative_data must be an array of inputs for mode='int8' "
                             "(e.g. 100 training examples), got None")
        conv.representative_dataset = representative_dataset(representative_data)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    from ..fusion.xla import _quiet_native_stderr

    with _quiet_native_stderr(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Statistics for quantized inputs were expected..."
        content = conv.convert()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(content)
    return content


def real_value(q: np.ndarray | int, scale: float, zero_point: int) -> np.ndarray:
    """The real number an int8 code stands for: ``(q - zero_point) * scale``."""
    return (np.asarray(q, dtype=np.float32) - zero_point) * np.float32(scale)


class LiteModel:
    """A TFLite model run by LiteRT's interpreter, float in, float logits out.

    ``LiteModel(content_or_path, threads=1)``; ``predict(x)`` takes NHWC float32 of any batch
    size: int8 inputs are quantized with the model's own input scale/zero point, int8 outputs
    dequantized with the output's.
    """

    def __init__(self, model: bytes | str | os.PathLike, *, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        check_int(threads, "threads")
        if isinstance(model, bytes):
            if model[4:8] != b"TFL3":
                raise ValueError("model must be TFLite FlatBuffer bytes (identifier 'TFL3') or "
                                 "a path to a .tflite file, got bytes that are not TFLite")
            self.content = model
        else:
            self.content = check_model_file(model, ("tflite",), "model").read_bytes()
        self.interpreter = Interpreter(model_content=self.content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self._batch = -1
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    @property
    def size_bytes(self) -> int:
        return len(self.content)

    @property
    def input_qparams(self) -> tuple[float, int]:
        """(scale, zero_point) of the input tensor; (0.0, 0) when it is float."""
        s, z = self.input["quantization"]
        return float(s), int(z)

    @property
    def output_qparams(self) -> tuple[float, int]:
        s, z = self.output["quantization"]
        return float(s), int(z)

    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if len(x) != self._batch:
            self.interpreter.resize_tensor_input(self.input["index"], [len(x), *x.shape[1:]])
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
            self.output = self.interpreter.get_output_details()[0]
            self._batch = len(x)
        if self.input["dtype"] == np.int8:
            s, z = self.input_qparams
            x = np.clip(np.round(x / s) + z, -128, 127).astype(np.int8)
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self.output["index"])
        if out.dtype == np.int8:
            out = real_value(out, *self.output_qparams)
        return out


def tensor_qparams(model: bytes | str | os.PathLike) -> list[dict[str, Any]]:
    """Every int8 tensor of a TFLite model: ``{"name", "dtype", "shape", "scale",
    "zero_point"}`` (per-channel tensors list one scale per channel), as stored in the file."""
    lite = LiteModel(model)
    out = []
    for t in lite.interpreter.get_tensor_details():
        if t["dtype"] != np.int8:
            continue
        qp = t["quantization_parameters"]
        out.append({"name": t["name"], "dtype": "int8", "shape": tuple(int(d) for d in t["shape"]),
                    "scale": np.asarray(qp["scales"]), "zero_point": np.asarray(qp["zero_points"])})
    return out
