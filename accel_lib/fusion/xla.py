"""XLA in TensorFlow: ``tf.function`` against ``tf.function(jit_compile=True)``.

``tf.function`` traces Python into a TensorFlow graph whose ops still run one kernel at a
time; ``jit_compile=True`` hands the graph to XLA, which fuses elementwise ops into the
kernels around them and generates code for the whole cluster. On a CPU, expect big gains
on memory-bound chains and little on GEMM-bound layers (and sometimes a loss: XLA's own
CPU code for some ops is slower than TensorFlow's kernels); TensorFlow's ~7x on BERT is
8 GPUs at MLPerf scale.

Import order: importing TensorFlow before triton (which torchvision and torch.compile
load) crashes the process. :func:`import_tensorflow` imports torch, triton and torchvision
first, quiets TensorFlow's logs, and keeps TensorFlow off the GPU (it would otherwise
reserve all of the GPU's memory, leaving none to PyTorch in the same process).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_module
from ..bench import compare
from .compile import CompileResult

__all__ = ["import_tensorflow", "keras_mlp_from_torch", "tf_elementwise_chain", "xla_compare"]


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence what native code writes straight to file descriptor 2 while the block runs:
    TensorFlow's C++ (absl) start-up lines ignore ``TF_CPP_MIN_LOG_LEVEL``. Python errors
    still raise as usual."""
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (some embedded interpreters): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(*, threads: int | None = None, cpu_only: bool = True,
                      first: tuple[str, ...] = ("triton", "torchvision")) -> Any:
    """Import TensorFlow safely, after torch (and triton, torchvision when installed).

    Args:
        threads: intra-op threads for TensorFlow (e.g. ``torch.get_num_threads()``, so both
            frameworks use the same cores); ``None`` leaves TensorFlow's choice.
        cpu_only: hide GPUs from TensorFlow.
        first: modules imported before TensorFlow when installed (triton at least: imported
            after TensorFlow it crashes the process; torchvision loads it too).

    Thread counts and visible devices can only be set before TensorFlow runs its first op;
    later calls leave them as they are. Returns the ``tensorflow`` module.
    """
    if threads is not None:
        check_int(threads, "threads")
    for name in first:  # before TensorFlow, or the process may crash
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet_native_stderr():
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        try:
            if cpu_only:
                tf.config.set_visible_devices([], "GPU")
            if threads is not None:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # TensorFlow already initialised in this process: settings stay
            pass
    return tf


def keras_mlp_from_torch(model: nn.Module) -> Any:
    """A ``tf.keras`` MLP with the same weights as an ``accel_lib.models.MLP`` (or any
    ``Flatten? -> [Linear -> ReLU]* -> Linear`` stack): both compute the same function.

    Shapes: input (B, in_features) -> (B, out_features), float32.
    """
    check_module(model)
    layers = list(model.net) if hasattr(model, "net") else list(model.children())
    layers = [m for m in layers if not isinstance(m, nn.Flatten)]
    linears = layers[0::2]
    relus = layers[1::2]
    if not linears or not all(isinstance(m, nn.Linear) for m in linears) or \
            not all(isinstance(m, nn.ReLU) for m in relus) or len(relus) != len(linears) - 1:
        raise ValueError("model must be an MLP: [Linear -> ReLU]* -> Linear (after an "
                         f"optional Flatten), got {[type(m).__name__ for m in layers]}")
    from ..export.twin import keras_twin

    example = torch.randn(4, linears[0].in_features, generator=torch.Generator().manual_seed(0))
    return keras_twin(model, example, import_tensorflow())


def tf_elementwise_chain(length: int) -> Callable[[Any], Any]:
    """TensorFlow's twin of :func:`accel_lib.fusion.compile.elementwise_chain`:
    ``x -> relu(x * 1.01 - 0.01)``, ``length`` times."""
    check_int(length, "length")
    tf = import_tensorflow()

    def chain(x: Any) -> Any:
        for _ in range(length):
            x = tf.nn.relu(x * 1.01 - 0.01)
        return x

    chain.__name__ = f"elementwise_chain_{length}"
    return chain


def xla_compare(fn: Callable[..., Any], *inputs: Any, name: str | None = None,
                warmup: int = 3, repeats: int = 20) -> CompileResult:
    """``tf.function(fn)`` against ``tf.function(fn, jit_compile=True)``, side by side.

    ``compile_s`` is the XLA version's first call (trace + XLA compile + run); the
    comparison's baseline is the traced graph without XLA, so the ratio is what XLA adds.
    Inputs are TensorFlow tensors (or numpy arrays), on the CPU.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_int(warmup, "warmup", minimum=0)
    check_int(repeats, "repeats")
    tf = import_tensorflow()
    graph = tf.function(fn, autograph=False)  # plain Python loops: nothing to convert
    xla = tf.function(fn, jit_compile=True, autograph=False)
    reference = graph(*inputs)
    start = time.perf_counter()
    out = xla(*inputs)
    compile_s = time.perf_counter() - start
    diff = float(np.max(np.abs(np.asarray(reference) - np.asarray(out)))) if \
        np.asarray(out).size else 0.0
    comparison = compare(lambda: graph(*inputs), lambda: xla(*inputs),
                         names=("tf.function", "tf.function(jit_compile=True)"),
                         warmup=warmup, repeats=repeats, device=torch.device("cpu"),
                         verbose=False)
    return CompileResult(name or getattr(fn, "__name__", "fn"), "XLA (jit_compile)", compile_s,
                         comparison, diff, xla)
