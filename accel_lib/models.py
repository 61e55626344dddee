"""The small reference models the course reuses, and torchvision architectures for timing.

Nothing here downloads weights: course models train in seconds on the digits, and
torchvision architectures are built with random weights (timing does not need trained ones).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._validate import check_choice, check_int

__all__ = ["MLP", "SmallCNN", "vision_model", "build_model", "MODEL_NAMES"]



def _check_sizes(name: str, sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(sizes)
    if not sizes:
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {sizes!r}")
    return tuple(check_int(s, f"{name}[{i}]") for i, s in enumerate(sizes))


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU] x len(hidden_sizes) -> Linear.

    Shapes: input (B, *) with prod(*) == in_features; output (B, num_classes).
    """

    def __init__(self, in_features: int = 64, hidden_sizes: Sequence[int] = (128, 64),
                 num_classes: int = 10) -> None:
        super().__init__()
        sizes = _check_sizes("in_features", [in_features]) + _check_sizes(
            "hidden_sizes", hidden_sizes) + _check_sizes("num_classes", [num_classes])
        layers: list[nn.Module] = [nn.Flatten()]
        for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.net = nn.Sequential(*layers)
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.in_features:
            raise ValueError(f"x must have {self.in_features} features per example, "
                             f"got shape {tuple(x.shape)}")
        return self.net(x)


class SmallCNN(nn.Module):
    """[Conv3x3 -> BatchNorm -> ReLU] x len(channels), a 2x2 max-pool, Flatten, Linear.

    Small enough to train on the 8x8 digits in seconds; the conv -> BN -> flatten -> linear
    chain is what later notebooks fuse, prune and quantize.

    Shapes: input (B, in_channels, image_size, image_size); output (B, num_classes).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10,
                 channels: Sequence[int] = (16, 32), image_size: int = 8) -> None:
        super().__init__()
        _check_sizes("in_channels", [in_channels])
        _check_sizes("num_classes", [num_classes])
        channels = _check_sizes("channels", channels)
        check_int(image_size, "image_size", minimum=2)
        blocks: list[nn.Module] = []
        prev = in_channels
        for c in channels:
            blocks += [nn.Conv2d(prev, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            prev = c
        self.features = nn.Sequential(*blocks, nn.MaxPool2d(2))
        side = image_size // 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(prev * side * side, num_classes))
        self.input_shape = (in_channels, image_size, image_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        return self.classifier(self.features(x))  # (B, num_classes)


def vision_model(name: str, num_classes: int = 1000) -> nn.Module:
    """A torchvision architecture (e.g. ``resnet18``, ``vgg11``) with random weights."""
    from torchvision import models

    available = models.list_models(module=models)
    if name not in available:
        raise ValueError(f"name must be a torchvision classification model such as "
                         f"'resnet18' or 'vgg11', got {name!r}")
    _check_sizes("num_classes", [num_classes])
    return models.get_model(name, weights=None, num_classes=num_classes)


def build_model(name: str, **kwargs: object) -> nn.Module:
    """A course model by name: ``"mlp"`` or ``"cnn"`` (keyword arguments go to its constructor)."""
    check_choice(name, "name", MODEL_NAMES)
    return MODEL_NAMES[name](**kwargs)


# The course's own models by name (``build_model``).
MODEL_NAMES: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": SmallCNN}
