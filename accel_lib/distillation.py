"""Knowledge distillation: a small student learns from a large teacher's softened outputs.

Softmax at temperature ``T`` turns logits ``z`` into ``p_i = exp(z_i / T) / sum_j exp(z_j / T)``;
``T > 1`` flattens the distribution and exposes the teacher's "dark knowledge" (which wrong
classes it finds plausible). Hinton et al.'s loss mixes the hard-label cross-entropy with the
KL divergence between the softened teacher and student distributions:

    L = alpha * CE(y, softmax(z_s)) + (1 - alpha) * T^2 * KL(softmax(z_t / T) || softmax(z_s / T))

The gradient of the KL term with respect to ``z_s`` is ``(p_s - p_t) / T``, and for large
``T`` ``p_s - p_t ~ (z_s - z_t) / (N T)``: it shrinks as ``1 / T^2``. The ``T^2`` factor
keeps the soft term's weight independent of the temperature.

Two tiers: pure tensor functions (``softmax_with_temperature``, ``soft_target_kl``,
``distillation_loss``, ``hint_loss``), then training (``distill_step``, ``distill``) and
feature ("hint") distillation through forward hooks (``FeatureHint``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_fraction, check_module, check_real, check_tensor
from .runtime import get_device
from .train import History, TrainConfig, make_optimizer, train

__all__ = [
    "DistillConfig",
    "softmax_with_temperature",
    "log_softmax_with_temperature",
    "soft_target_kl",
    "distillation_loss",
    "hint_loss",
    "make_adapter",
    "FeatureHint",
    "distill_step",
    "distill",
]


def _check_temperature(temperature: float) -> float:
    return check_real(temperature, "temperature", low=0, low_open=True)


def _check_alpha(alpha: float) -> float:
    return check_fraction(alpha, "alpha", one=True, meaning="(the hard-label weight)")


def _check_logits(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    for name, t in (("student_logits", student_logits), ("teacher_logits", teacher_logits)):
        check_tensor(t, name, ndim=2)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")


@dataclass(frozen=True)
class DistillConfig:
    """The distillation loss's knobs: ``temperature`` > 0, ``alpha`` (hard-label weight) in
    [0, 1], and ``hint_weight`` >= 0 for a feature-matching term (0: none)."""

    temperature: float = 4.0
    alpha: float = 0.5
    hint_weight: float = 0.0

    def __post_init__(self) -> None:  # stored as Python floats (np.int64(4) -> 4.0)
        object.__setattr__(self, "temperature", _check_temperature(self.temperature))
        object.__setattr__(self, "alpha", _check_alpha(self.alpha))
        object.__setattr__(self, "hint_weight",
                           check_real(self.hint_weight, "hint_weight", low=0))


def softmax_with_temperature(logits: torch.Tensor, temperature: float = 1.0,
                             dim: int = -1) -> torch.Tensor:
    """``p_i = exp(z_i / T) / sum_j exp(z_j / T)``: T = 1 is the softmax, T -> inf uniform.

    Shapes: ``logits`` (..., N) -> probabilities of the same shape, summing to 1 along ``dim``.
    """
    _check_temperature(temperature)
    z = logits / temperature
    z = z - z.amax(dim=dim, keepdim=True)  # stable: exp never overflows
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax_with_temperature(logits: torch.Tensor, temperature: float = 1.0,
                                 dim: int = -1) -> torch.Tensor:
    """``log p_i = z_i / T - logsumexp_j(z_j / T)``, computed stably.

    Shapes: ``logits`` (..., N) -> log-probabilities of the same shape.
    """
    _check_temperature(temperature)
    z = logits / temperature
    return z - torch.logsumexp(z, dim=dim, keepdim=True)


def soft_target_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """Batch-mean ``KL(p_t || p_s) = 1/B sum_b sum_i p_t,i (log p_t,i - log p_s,i)`` at T.

    ``p_t = softmax(z_t / T)``, ``p_s = softmax(z_s / T)``; equals
    ``F.kl_div(log p_s, log p_t, log_target=True, reduction="batchmean")``. Not scaled by T^2.

    Computed so that it is accurate and never negative at any temperature: in float64, and
    as a sum of terms that are each >= 0. With ``d_i = log p_s,i - log p_t,i`` and
    ``sum_i p_t,i e^(d_i) = sum_i p_s,i = 1``,

        KL = sum_i p_t,i (e^(d_i) - 1 - d_i)

    where ``e^d - 1 - d ~ d^2 / 2`` comes from ``expm1`` without cancellation. At large T
    the plain form is a small difference of large sums: in float32 at T = 1e4 it came out
    negative. The result has the logits' dtype.

    Shapes: both logits (B, N) -> a scalar.
    """
    temperature = _check_temperature(temperature)
    _check_logits(student_logits, teacher_logits)
    dtype = torch.promote_types(student_logits.dtype, teacher_logits.dtype)
    log_ps = log_softmax_with_temperature(student_logits.double(), temperature)
    log_pt = log_softmax_with_temperature(teacher_logits.double(), temperature)
    d = log_ps - log_pt  # (B, N)
    p_s, p_t = log_ps.exp(), log_pt.exp()
    small = d.clamp(max=1.0)  # e^d - 1 - d by expm1 where it cancels; p_s - p_t - p_t d beyond
    terms = torch.where(d <= 1.0, p_t * (torch.expm1(small) - small), p_s - p_t - p_t * d)
    return terms.clamp_min(0).sum(dim=1).mean().to(dtype)  # clamp: last-bit rounding only


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      target: torch.Tensor, temperature: float = 4.0,
                      alpha: float = 0.5) -> torch.Tensor:
    """Hinton's loss ``alpha CE(y, softmax(z_s)) + (1 - alpha) T^2 KL(p_t^T || p_s^T)``.

    ``alpha = 1`` is plain training on labels; ``alpha = 0`` learns from the teacher alone.
    The teacher's logits should carry no gradient (compute them under ``torch.no_grad()``).

    Shapes: logits (B, N), ``target`` (B,) class indices -> a scalar.

    Raises:
        ValueError: ``temperature <= 0``, ``alpha`` outside [0, 1], logits of different
            shapes, or ``target`` not (B,).
    """
    _check_temperature(temperature)
    _check_alpha(alpha)
    _check_logits(student_logits, teacher_logits)
    check_tensor(target, "target")
    if target.shape != student_logits.shape[:1]:
        shape = tuple(target.shape)
        raise ValueError(f"target must be a ({student_logits.shape[0]},) tensor of class "
                         f"indices, got {shape}")
    hard = F.cross_entropy(student_logits, target)
    soft = soft_target_kl(student_logits, teacher_logits.detach(), temperature)
    return alpha * hard + (1 - alpha) * temperature**2 * soft


def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor,
              adapter: nn.Module | None = None) -> torch.Tensor:
    """FitNets' hint loss ``mean((r(h_s) - h_t)^2)``, ``r`` a small trainable regressor.

    Shapes: ``student_features`` (B, ...) -> ``adapter`` -> same shape as ``teacher_features``.
    """
    mapped = adapter(student_features) if adapter is not None else student_features
    if mapped.shape != teacher_features.shape:
        raise ValueError(f"student_features (after the adapter) must match teacher_features' "
                         f"shape {tuple(teacher_features.shape)}, got {tuple(mapped.shape)}")
    return F.mse_loss(mapped, teacher_features.detach())


def make_adapter(student_shape: tuple[int, ...], teacher_shape: tuple[int, ...]) -> nn.Module:
    """The regressor from a student feature to a teacher feature (one example's shapes).

    ``(C_s,) -> (C_t,)``: ``nn.Linear(C_s, C_t)``; ``(C_s, H, W) -> (C_t, H, W)``: a 1x1
    ``nn.Conv2d(C_s, C_t)``. Other shapes (e.g. different spatial sizes) raise ValueError.
    """
    s, t = tuple(student_shape), tuple(teacher_shape)
    if len(s) == 1 and len(t) == 1:
        return nn.Linear(s[0], t[0])
    if len(s) == 3 and len(t) == 3 and s[1:] == t[1:]:
        return nn.Conv2d(s[0], t[0], kernel_size=1)
    raise ValueError(f"student_shape and teacher_shape must be (C,) and (C',) or (C, H, W) and "
                     f"(C', H, W) with the same H, W; got {s} and {t}")


class FeatureHint:
    """Capture an intermediate output of the student and of the teacher with forward hooks,
    and regress one onto the other through an adapter (hint / feature distillation).

    Usage::

        hint = FeatureHint(student, "net.2", teacher, "net.2", example_x)
        loss = kd_loss + beta * hint.loss()   # after a forward of both models
        hint.remove()

    The adapter is built from the shapes seen on ``example`` (:func:`make_adapter`) and
    placed on the student's device; train it with the student (``hint.adapter.parameters()``).
    """

    def __init__(self, student: nn.Module, student_layer: str, teacher: nn.Module,
                 teacher_layer: str, example: torch.Tensor) -> None:
        check_module(student, "student")
        check_module(teacher, "teacher")
        s_mod = dict(student.named_modules()).get(student_layer)
        t_mod = dict(teacher.named_modules()).get(teacher_layer)
        if s_mod is None:
            raise ValueError(f"student_layer must name a module of the student, got "
                             f"{student_layer!r}")
        if t_mod is None:
            raise ValueError(f"teacher_layer must name a module of the teacher, got "
                             f"{teacher_layer!r}")
        self.student_features: torch.Tensor | None = None
        self.teacher_features: torch.Tensor | None = None
        self._handles = [
            s_mod.register_forward_hook(lambda m, a, out: setattr(self, "student_features", out)),
            t_mod.register_forward_hook(lambda m, a, out: setattr(self, "teacher_features", out)),
        ]
        with torch.no_grad():
            student(example)
            teacher(example)
        self.adapter = make_adapter(tuple(self.student_features.shape[1:]),
                                    tuple(self.teacher_features.shape[1:]))
        self.adapter.to(self.student_features.device)

    def loss(self) -> torch.Tensor:
        """``hint_loss`` of the features captured by the last forward of both models."""
        if self.student_features is None or self.teacher_features is None:
            raise RuntimeError("run a forward pass of the student and the teacher first")
        return hint_loss(self.student_features, self.teacher_features, self.adapter)

    def remove(self) -> None:
        """Detach the hooks (the models behave as before)."""
        for h in self._handles:
            h.remove()
        self._handles = []


def distill_step(student: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 optimizer: torch.optim.Optimizer, config: DistillConfig | None = None,
                 hint: FeatureHint | None = None) -> tuple[float, torch.Tensor]:
    """One optimisation step of the student on the distillation loss.

    The teacher runs in eval mode without gradients; the student is updated by ``optimizer``.

    Shapes: ``x`` (B, ...), ``y`` (B,) -> (the loss as a float, the student's logits (B, N)).
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    config = config or DistillConfig()
    if hint is None and config.hint_weight > 0:
        raise ValueError("hint must be a FeatureHint when config.hint_weight > 0")
    teacher.eval()
    with torch.no_grad():
        teacher_logits = teacher(x)  # (B, N)
    optimizer.zero_grad(set_to_none=True)
    logits = student(x)  # (B, N)
    loss = distillation_loss(logits, teacher_logits, y, config.temperature, config.alpha)
    if hint is not None and config.hint_weight > 0:
        loss = loss + config.hint_weight * hint.loss()
    loss.backward()
    optimizer.step()
    return loss.item(), logits.detach()


def distill(
    student: nn.Module,
    teacher: nn.Module,
    loader: Iterable,
    config: TrainConfig | None = None,
    kd: DistillConfig | None = None,
    *,
    val_loader: Iterable | None = None,
    hint: FeatureHint | None = None,
) -> History:
    """Train ``student`` in place to mimic ``teacher`` (and the labels); like ``train.train``.

    Args:
        student, teacher: both are moved to ``config.device``; the teacher is only evaluated.
        loader: yields ``(x, y)`` batches (the transfer set).
        config: epochs, optimizer, learning rate (:class:`accel_lib.train.TrainConfig`).
        kd: temperature, alpha and hint weight (:class:`DistillConfig`).
        val_loader: if given, the student's validation accuracy is recorded every epoch.
        hint: a :class:`FeatureHint` whose adapter is trained along with the student.
    """
    check_module(student, "student")
    check_module(teacher, "teacher")
    config = config or TrainConfig()
    kd = kd or DistillConfig()
    device = get_device(config.device)
    student.to(device)
    teacher.to(device).eval()
    params = list(student.parameters())
    if hint is not None:
        hint.adapter.to(device)
        params += list(hint.adapter.parameters())
    optimizer = make_optimizer(params, config)
    return train(student, loader, config, val_loader=val_loader,
                 step=lambda x, y: distill_step(student, teacher, x, y, optimizer, kd, hint))
