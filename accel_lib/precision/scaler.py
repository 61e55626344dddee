"""Dynamic loss scaling from scratch, and fp32 master weights.

Small gradients underflow in fp16 (below ``2^-25`` they round to 0). Multiply the loss by
``S`` and, by the chain rule, every gradient is multiplied by ``S``: they move up into
fp16's range. Divide them by ``S`` (in fp32) before the optimizer step and the update is
unchanged. ``S`` too large makes some gradient overflow to inf: then the step is **skipped**
and ``S`` is multiplied by ``backoff_factor``; after ``growth_interval`` steps in a row
without inf/NaN, ``S`` is multiplied by ``growth_factor``. This is the rule of
``torch.amp.GradScaler`` (``_amp_update_scale_``), and :class:`LossScaler` makes the same
decisions (tested side by side).

Master weights: a model stored in fp16/bf16 cannot take small updates (``w + lr g`` rounds
back to ``w`` when ``lr g`` is below half of ``w``'s spacing). Keep an fp32 copy, apply the
update there, and copy it (rounded) into the 16-bit model: :class:`MasterWeights`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from .._validate import check_int, check_module, check_real

__all__ = ["scaler_update", "LossScaler", "MasterWeights", "master_weight_step",
           "grad_scaler_decisions", "loss_scaler_decisions"]


def scaler_update(scale: float, growth_tracker: int, found_inf: bool, *,
                  growth_factor: float = 2.0, backoff_factor: float = 0.5,
                  growth_interval: int = 2000) -> tuple[float, int]:
    """One update of the scale: returns ``(new scale, new growth tracker)``.

    inf/NaN found: scale times ``backoff_factor``, tracker back to 0 (the step is skipped).
    Otherwise the tracker counts one more good step; when it reaches ``growth_interval``
    the scale grows by ``growth_factor`` (if that stays finite) and the tracker restarts.
    Arithmetic in fp32, like GradScaler's scale tensor.
    """
    f32 = np.float32
    if found_inf:
        return float(f32(scale) * f32(backoff_factor)), 0
    tracker = growth_tracker + 1
    if tracker == growth_interval:
        with np.errstate(over="ignore"):
            grown = f32(scale) * f32(growth_factor)
        return (float(grown) if np.isfinite(grown) else float(scale)), 0
    return float(scale), tracker


class LossScaler:
    """A dynamic loss scaler with GradScaler's defaults and decisions.

    Use: ``scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()``.
    ``history`` lists ``(scale used, step skipped)`` per step.
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0,
                 backoff_factor: float = 0.5, growth_interval: int = 2000) -> None:
        self.scale_value = check_real(init_scale, "init_scale", low=0, low_open=True)
        self.growth_factor = check_real(growth_factor, "growth_factor", low=1, low_open=True)
        self.backoff_factor = check_real(backoff_factor, "backoff_factor", low=0, high=1,
                                         low_open=True, high_open=True)
        self.growth_interval = check_int(growth_interval, "growth_interval")
        self.growth_tracker = 0
        self.history: list[tuple[float, bool]] = []
        self._found_inf: bool | None = None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """``loss * S`` (in fp32)."""
        return loss.float() * self.scale_value

    def unscale_(self, params: Iterable[torch.Tensor]) -> bool:
        """Divide every ``.grad`` by ``S`` in place (fp32 reciprocal, as GradScaler);
        returns whether any gradient is inf or NaN."""
        inv = float(torch.tensor(self.scale_value, dtype=torch.float64).reciprocal().float())
        found = False
        for p in params:
            if p.grad is not None:
                p.grad.mul_(inv)
                found = found or not bool(torch.isfinite(p.grad).all())
        self._found_inf = found
        return found

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale (if not done yet) and step ``optimizer`` unless a gradient is inf/NaN.
        Returns whether the step was taken."""
        if self._found_inf is None:
            self.unscale_(p for g in optimizer.param_groups for p in g["params"])
        if not self._found_inf:
            optimizer.step()
        return not self._found_inf

    def update(self) -> None:
        """Grow or back off the scale after a step (see :func:`scaler_update`)."""
        if self._found_inf is None:
            raise RuntimeError("update() needs a step() (or unscale_()) first in this iteration")
        self.history.append((self.scale_value, self._found_inf))
        self.scale_value, self.growth_tracker = scaler_update(
            self.scale_value, self.growth_tracker, self._found_inf,
            growth_factor=self.growth_factor, backoff_factor=self.backoff_factor,
            growth_interval=self.growth_interval)
        self._found_inf = None


@torch.no_grad()
def master_weight_step(params: Sequence[torch.Tensor], master: Sequence[torch.Tensor],
                       lr: float, inv_scale: float = 1.0) -> None:
    """One SGD step through fp32 master weights: ``master -= lr * grad * inv_scale`` in fp32
    (the 16-bit gradient cast up first), then each low-precision param gets its master's
    value, rounded. The 16-bit params are never updated directly."""
    check_real(lr, "lr", low=0)
    if len(params) != len(master):
        raise ValueError(f"params and master must have the same length, got {len(params)} "
                         f"and {len(master)}")
    for p, m in zip(params, master, strict=True):
        if m.dtype != torch.float32:
            raise ValueError(f"master weights must be float32, got {m.dtype}")
        if p.grad is None:
            continue
        m.add_(p.grad.float() * inv_scale, alpha=-lr)
        p.copy_(m)  # rounds to p's dtype


class MasterWeights:
    """fp32 master copies of a 16-bit model's parameters, with an optimizer over them.

    ``step(scaler)`` copies the 16-bit gradients into the fp32 copies, unscales them with the
    :class:`LossScaler` (if any), steps the optimizer (unless inf/NaN) and copies the
    updated weights back into the model, rounded to its dtype.
    """

    def __init__(self, model: nn.Module,
                 optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer]) -> None:
        check_module(model)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.master = [p.detach().float().clone().requires_grad_(True) for p in self.params]
        self.optimizer = optimizer(self.master)

    def step(self, scaler: LossScaler | None = None) -> bool:
        for p, m in zip(self.params, self.master, strict=True):
            m.grad = None if p.grad is None else p.grad.detach().float()
        if scaler is not None:
            taken = scaler.step(self.optimizer)
        else:
            self.optimizer.step()
            taken = True
        with torch.no_grad():
            for p, m in zip(self.params, self.master, strict=True):
                p.copy_(m)
        return taken

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None
        self.optimizer.zero_grad(set_to_none=True)


class _CountingSGD(torch.optim.SGD):
    """SGD that counts the steps it was asked to take (a skipped step never calls it)."""

    taken = 0

    def step(self, closure=None):  # noqa: ANN001, ANN201 (torch's signature)
        self.taken += 1
        return super().step(closure)


def _grad_stream_steps(grads: Sequence[float], step: Callable[[torch.Tensor, torch.Tensor], None],
                       ) -> list[bool]:
    w = torch.zeros(1, requires_grad=True)
    opt = _CountingSGD([w], lr=1e-3)
    skipped = []
    for g in grads:
        before = opt.taken
        opt.zero_grad(set_to_none=True)
        step((w * torch.tensor([g])).sum(), opt)
        skipped.append(opt.taken == before)  # optimizer.step() not called: skipped
    return skipped


def grad_scaler_decisions(grads: Sequence[float], *, init_scale: float = 2.0**16,
                          growth_factor: float = 2.0, backoff_factor: float = 0.5,
                          growth_interval: int = 2000) -> list[tuple[float, bool]]:
    """``(scale used, step skipped)`` of ``torch.amp.GradScaler`` (CPU) on a one-weight model
    whose gradient at step t is ``grads[t]`` (inf/NaN/huge values make it skip)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_factor=growth_factor,
                                  backoff_factor=backoff_factor, growth_interval=growth_interval)
    scales: list[float] = []

    def step(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        scales.append(scaler.get_scale())
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    skipped = _grad_stream_steps(grads, step)
    return list(zip(scales, skipped, strict=True))


def loss_scaler_decisions(grads: Sequence[float], *, init_scale: float = 2.0**16,
                          growth_factor: float = 2.0, backoff_factor: float = 0.5,
                          growth_interval: int = 2000) -> list[tuple[float, bool]]:
    """The same stream as :func:`grad_scaler_decisions`, through :class:`LossScaler`."""
    scaler = LossScaler(init_scale, growth_factor, backoff_factor, growth_interval)

    def step(loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    _grad_stream_steps(grads, step)
    return scaler.history
