"""A tf.keras twin of a trained PyTorch model: the same layers, the same weights.

:func:`keras_from_torch` rebuilds a *chain* of layers (each layer's output is the next one's
input: ``SmallCNN``, ``MLP``, and what pruning, low rank, BatchNorm folding and unstructured
sparsity leave of them) as a ``tf.keras.Sequential`` and copies every weight across, so a
PyTorch model can be handed to the TFLite converter. The chain is read from one forward
pass (hooks on the leaf modules, in the order they run), and the twin is checked against
PyTorch on that example: a model that is not a chain (a residual, a concat) gives a
ValueError, never a twin that computes something else.

Layout is the one trap: PyTorch is NCHW, TensorFlow NHWC. A conv kernel ``(O, I, kh, kw)``
becomes ``(kh, kw, I, O)``, and the first Linear after a Flatten of an image has its input
features permuted from PyTorch's (C, H, W) order to Keras's (H, W, C) order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from .._validate import check_module

__all__ = ["TWIN_LAYERS", "keras_from_torch", "keras_twin", "torch_chain"]

# what keras_from_torch translates (Identity and Dropout vanish in eval mode)
TWIN_LAYERS = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear,
               nn.Identity, nn.Dropout)
_ELEMENTWISE = (nn.ReLU, nn.Identity, nn.Dropout)


def _linear_act(tf: Any) -> Any:
    return tf.keras.activations.get(None)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def torch_chain(model: nn.Module, example: torch.Tensor) -> list[tuple[nn.Module, tuple[int, ...]]]:
    """The leaf modules ``model`` calls on ``example``, in call order, each with the shape
    of its input. Raises ValueError naming a leaf :func:`keras_from_torch` cannot translate."""
    check_module(model)
    calls: list[tuple[nn.Module, tuple[int, ...]]] = []
    hooks = []
    for name, m in model.named_modules():
        if next(m.children(), None) is not None:
            continue
        if not isinstance(m, TWIN_LAYERS):
            raise ValueError(f"model has a layer a Keras twin cannot copy: {name!r} is "
                             f"{type(m).__name__}; accepted: "
                             f"{', '.join(t.__name__ for t in TWIN_LAYERS)}")
        hooks.append(m.register_forward_hook(
            lambda mod, inp, out: calls.append((mod, tuple(inp[0].shape)))))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return calls


def _conv(kl: Any, m: nn.Conv2d) -> tuple[list[Any], list[np.ndarray]]:
    if m.groups != 1 or _pair(m.dilation) != (1, 1) or isinstance(m.padding, str) \
            or m.padding_mode != "zeros":
        raise ValueError(f"a Keras twin copies convs with groups=1, dilation=1 and numeric zero "
                         f"padding, got groups={m.groups}, dilation={m.dilation}, "
                         f"padding={m.padding!r}, padding_mode={m.padding_mode!r}")
    (kh, kw), (sh, sw), (ph, pw) = _pair(m.kernel_size), _pair(m.stride), _pair(m.padding)
    layers: list[Any] = []
    same = (sh, sw) == (1, 1) and kh % 2 == 1 and kw % 2 == 1 and (ph, pw) == (kh // 2, kw // 2)
    if (ph or pw) and not same:
        layers.append(kl.ZeroPadding2D((ph, pw)))
    layers.append(kl.Conv2D(m.out_channels, (kh, kw), strides=(sh, sw),
                           padding="same" if same else "valid", use_bias=m.bias is not None))
    weights = [_np(m.weight).transpose(2, 3, 1, 0)]  # (O, I, kh, kw) -> (kh, kw, I, O)
    if m.bias is not None:
        weights.append(_np(m.bias))
    return layers, weights


def _bn(kl: Any, m: nn.BatchNorm2d) -> tuple[list[Any], list[np.ndarray]]:
    if m.running_mean is None or m.running_var is None:
        raise ValueError("a Keras twin needs BatchNorm with running statistics "
                         "(track_running_stats=True)")
    c = m.num_features
    gamma = _np(m.weight) if m.affine else np.ones(c, np.float32)
    beta = _np(m.bias) if m.affine else np.zeros(c, np.float32)
    return ([kl.BatchNormalization(epsilon=m.eps)],
            [gamma, beta, _np(m.running_mean), _np(m.running_var)])


def _linear(kl: Any, m: nn.Linear, chw: tuple[int, int, int] | None
            ) -> tuple[list[Any], list[np.ndarray]]:
    w = _np(m.weight)  # (out, in)
    if chw is not None:  # inputs flattened from NCHW: reorder them as Keras's NHWC flatten
        c, h, wd = chw
        w = w.reshape(m.out_features, c, h, wd).transpose(0, 2, 3, 1).reshape(m.out_features, -1)
    weights = [np.ascontiguousarray(w.T)]
    if m.bias is not None:
        weights.append(_np(m.bias))
    return [kl.Dense(m.out_features, use_bias=m.bias is not None)], weights


def keras_from_torch(model: nn.Module, example: torch.Tensor, *, atol: float = 1e-4) -> Any:
    """A ``tf.keras.Sequential`` computing what ``model`` (in eval mode) computes.

    ``example``: one input batch as PyTorch takes it, (N, C, H, W) or (N, features); the
    twin takes the same data in TensorFlow's layout, (N, H, W, C) or (N, features)
    (:func:`accel_lib.export.to_nhwc`). The twin is checked against ``model`` on
    ``example``; a difference above ``atol`` raises ValueError (the model is not a chain).
    A ReLU right after a Conv2d or Linear becomes that layer's activation.
    """
    from ._tf import import_tf

    check_module(model)
    _check_example(example)
    return keras_twin(model, example, import_tf(), atol=atol)


def _check_example(example: object) -> None:
    if not isinstance(example, torch.Tensor) or example.dim() not in (2, 4) or not len(example):
        raise ValueError("example must be a non-empty (N, C, H, W) or (N, features) tensor, got "
                         f"{getattr(example, 'shape', type(example).__name__)}")


def keras_twin(model: nn.Module, example: torch.Tensor, tf: Any, *, atol: float = 1e-4) -> Any:
    """:func:`keras_from_torch` with the ``tensorflow`` module given (an already imported
    one, whichever Keras it carries)."""
    from .tflite import to_nhwc

    check_module(model)
    _check_example(example)
    model = model.eval()
    example = example.detach().cpu().float()
    chain = torch_chain(model, example)
    L = tf.keras.layers
    shape = tuple(example.shape[1:])
    keras_shape = (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape
    layers: list[Any] = []
    weights: list[tuple[Any, list[np.ndarray]]] = []
    chw: tuple[int, int, int] | None = None  # set by a Flatten of an image, until a Linear
    for m, in_shape in chain:
        if isinstance(m, _ELEMENTWISE):
            if isinstance(m, nn.ReLU):
                last = layers[-1] if layers else None
                if isinstance(last, (L.Conv2D, L.Dense)) and last.activation is _linear_act(tf):
                    last.activation = tf.keras.activations.relu
                else:
                    layers.append(L.ReLU())
            continue
        if chw is not None and not isinstance(m, nn.Linear):
            raise ValueError(f"a Keras twin needs a Linear right after Flatten, got "
                             f"{type(m).__name__}")
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(f"a Keras twin copies Flatten(start_dim=1, end_dim=-1) only, got "
                                 f"start_dim={m.start_dim}, end_dim={m.end_dim}")
            if len(in_shape) == 4:
                chw = (in_shape[1], in_shape[2], in_shape[3])
                layers.append(L.Flatten())
            continue
        if isinstance(m, nn.MaxPool2d):
            if _pair(m.padding) != (0, 0) or _pair(m.dilation) != (1, 1) or m.ceil_mode:
                raise ValueError("a Keras twin copies MaxPool2d without padding, dilation or "
                                 f"ceil_mode, got {m}")
            stride = m.stride if m.stride is not None else m.kernel_size
            layers.append(L.MaxPool2D(_pair(m.kernel_size), strides=_pair(stride)))
            continue
        if isinstance(m, nn.Conv2d):
            new, w = _conv(L, m)
        elif isinstance(m, nn.BatchNorm2d):
            new, w = _bn(L, m)
        else:  # nn.Linear
            new, w = _linear(L, m, chw)
            chw = None
        layers += new
        weights.append((new[-1], w))
    twin = tf.keras.Sequential([tf.keras.Input(keras_shape, name="x"), *layers],
                               name=f"keras_twin_{type(model).__name__}")
    for layer, w in weights:
        layer.set_weights(w)
    with torch.no_grad():
        want = model(example).numpy()
    x = to_nhwc(example.numpy()) if example.dim() == 4 else example.numpy()
    got = np.asarray(twin(x, training=False))
    diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
    if diff > atol:
        raise ValueError(f"the Keras twin differs from the model by {diff:.3g} (atol {atol:g}) on "
                         "the example: the model is not a chain of layers (a residual or a "
                         "concat?), which a Sequential twin cannot copy")
    return twin
