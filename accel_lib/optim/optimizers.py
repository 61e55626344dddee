"""From-scratch ``torch.optim.Optimizer`` subclasses: drop-in replacements for the framework's.

Each class keeps PyTorch's constructor arguments, defaults and state names (``exp_avg``,
``momentum_buffer``, ...), skips parameters whose ``.grad`` is ``None`` (no state is
created for them), honours per-group hyper-parameters, and calls the update rules of
:mod:`accel_lib.optim.functional`. ``SGD``, ``Adam`` and ``AdamW`` take ``foreach``: the
multi-tensor path (default) or a Python loop over the parameters; both compute the same
numbers as ``torch.optim``'s. Hyper-parameters are checked when a group is added: a wrong
type is a ``TypeError``, a value out of range a ``ValueError`` naming it, and nothing is
changed when one is raised.

    from accel_lib import optim as O
    optimizer = O.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    train(model, loader, config, optimizer=optimizer)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from .._validate import check_choice, check_fraction, check_real
from . import functional as F

__all__ = ["SGD", "ClassicalMomentum", "Adagrad", "RMSprop", "Adam", "AdamW", "Lion", "LAMB",
           "OPTIMIZERS", "build_optimizer"]

Closure = Callable[[], Any] | None


def _check_lr(value: object) -> float:
    return check_real(value, "lr", low=0.0, meaning="(the learning rate)")


def _check_betas(betas: object) -> tuple[float, float]:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {betas!r}")
    return (check_fraction(betas[0], "betas[0]", meaning="(beta1, the gradient average)"),
            check_fraction(betas[1], "betas[1]", meaning="(beta2, the squared-gradient average)"))


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return value


class _Base(Optimizer):
    """Validates every parameter group as it is added (``_check`` in each subclass)."""

    def _check(self, group: dict[str, Any]) -> None:
        _check_lr(group["lr"])
        check_real(group.get("weight_decay", 0.0), "weight_decay", low=0.0)
        _check_bool(group.get("maximize", False), "maximize")

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        merged = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        self._check(merged)  # before anything is added: a bad group changes nothing
        super().add_param_group(param_group)

    @staticmethod
    def _with_grad(group: dict[str, Any]) -> list[torch.Tensor]:
        params = [p for p in group["params"] if p.grad is not None]
        for p in params:
            if p.grad.is_sparse:
                raise RuntimeError("sparse gradients are not supported "
                                   "(use torch.optim.SparseAdam)")
        return params

    def _closure(self, closure: Closure) -> Any:
        if closure is None:
            return None
        with torch.enable_grad():
            return closure()


class SGD(_Base):
    """Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and decay.

    ``v <- mu * v + (1 - dampening) * (g + wd * p)`` (``v <- g`` on the first step),
    ``p <- p - lr * v`` (or ``p <- p - lr * (g + mu * v)`` with ``nesterov``). See
    :func:`accel_lib.optim.functional.sgd_step_`.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool = True) -> None:
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["momentum"], "momentum")
        check_fraction(group["dampening"], "dampening", one=True)
        _check_bool(group["foreach"], "foreach")
        if _check_bool(group["nesterov"], "nesterov") and (
                group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            params = self._with_grad(group)
            hyper = dict(lr=group["lr"], momentum=group["momentum"],
                         dampening=group["dampening"], weight_decay=group["weight_decay"],
                         nesterov=group["nesterov"], maximize=group["maximize"])
            bufs = [self.state[p].get("momentum_buffer") for p in params]
            if group["foreach"]:
                bufs = F.sgd_foreach_(params, [p.grad for p in params], bufs, **hyper)
            else:
                bufs = [F.sgd_step_(p, p.grad, b, **hyper)
                        for p, b in zip(params, bufs, strict=True)]
            if group["momentum"] != 0:
                for p, b in zip(params, bufs, strict=True):
                    self.state[p]["momentum_buffer"] = b
        return loss


class ClassicalMomentum(_Base):
    """Heavy-ball momentum in the classical convention: ``v <- mu * v + lr * g``, ``p <- p - v``.

    The same trajectory as ``SGD(momentum=mu)`` while ``lr`` is constant; different once a
    schedule changes ``lr`` (see :func:`accel_lib.optim.functional.classical_momentum_step_`).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, maximize=maximize)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["momentum"], "momentum")

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            for p in self._with_grad(group):
                state = self.state[p]
                state["velocity"] = F.classical_momentum_step_(
                    p, p.grad, state.get("velocity"), lr=group["lr"], momentum=group["momentum"],
                    weight_decay=group["weight_decay"], maximize=group["maximize"])
        return loss


class Adagrad(_Base):
    """AdaGrad: per-coordinate steps ``lr / (sqrt(sum of g^2) + eps)``
    (:func:`accel_lib.optim.functional.adagrad_step_`)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_real(group["lr_decay"], "lr_decay", low=0.0)
        check_real(group["eps"], "eps", low=0.0)
        check_real(group["initial_accumulator_value"], "initial_accumulator_value", low=0.0)

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            for p in self._with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["sum"] = torch.full_like(p, group["initial_accumulator_value"],
                                                   memory_format=torch.preserve_format)
                state["step"] += 1
                F.adagrad_step_(p, p.grad, state["sum"], state["step"], lr=group["lr"],
                                lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                                eps=group["eps"], maximize=group["maximize"])
        return loss


class RMSprop(_Base):
    """RMSProp: steps ``lr * g / (sqrt(EMA of g^2) + eps)``, optionally centered and with
    momentum (:func:`accel_lib.optim.functional.rmsprop_step_`)."""

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered, maximize=maximize)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["alpha"], "alpha", one=True, meaning="(the squared-gradient decay)")
        check_real(group["eps"], "eps", low=0.0)
        check_fraction(group["momentum"], "momentum")
        _check_bool(group["centered"], "centered")

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            for p in self._with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["square_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(
                            p, memory_format=torch.preserve_format)
                    if group["centered"]:
                        state["grad_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                F.rmsprop_step_(p, p.grad, state["square_avg"], lr=group["lr"],
                                alpha=group["alpha"], eps=group["eps"],
                                weight_decay=group["weight_decay"], momentum=group["momentum"],
                                momentum_buffer=state.get("momentum_buffer"),
                                centered=group["centered"], grad_avg=state.get("grad_avg"),
                                maximize=group["maximize"])
        return loss


class Adam(_Base):
    """Adam with bias correction (Kingma & Ba 2015), L2 weight decay and optional AMSGrad.

    ``p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``: see
    :func:`accel_lib.optim.functional.adam_step_`. State: ``step`` and two tensors per
    parameter (``exp_avg``, ``exp_avg_sq``), i.e. twice the parameters' memory.
    """

    _decoupled = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool = True) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])
        check_real(group["eps"], "eps", low=0.0)
        _check_bool(group["amsgrad"], "amsgrad")
        _check_bool(group["foreach"], "foreach")

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            params = self._with_grad(group)
            for p in params:
                state = self.state[p]
                if not state:  # lazy initialisation: only parameters that get a gradient
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    if group["amsgrad"]:
                        state["max_exp_avg_sq"] = torch.zeros_like(
                            p, memory_format=torch.preserve_format)
                state["step"] += 1
            states = [self.state[p] for p in params]
            beta1, beta2 = group["betas"]
            hyper = dict(lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                         weight_decay=group["weight_decay"], decoupled=self._decoupled,
                         maximize=group["maximize"])
            if group["foreach"]:
                F.adam_foreach_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                                [s["exp_avg_sq"] for s in states], [s["step"] for s in states],
                                max_exp_avg_sqs=([s["max_exp_avg_sq"] for s in states]
                                                 if group["amsgrad"] else None), **hyper)
            else:
                for p, s in zip(params, states, strict=True):
                    F.adam_step_(p, p.grad, s["exp_avg"], s["exp_avg_sq"], s["step"],
                                 max_exp_avg_sq=s.get("max_exp_avg_sq"), **hyper)
        return loss


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam with *decoupled* weight decay,
    ``p <- p * (1 - lr * wd)`` apart from the adaptive step, so every weight decays at the
    same rate whatever its gradient history. Default ``weight_decay=1e-2``, as PyTorch's."""

    _decoupled = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool = True) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         foreach=foreach)


class Lion(_Base):
    """Lion (Chen et al. 2023): the sign of an interpolated momentum, one state tensor.

    Use a learning rate 3-10x smaller than AdamW's and a weight decay 3-10x larger (the
    authors' advice): every coordinate moves by ``lr`` per step. See
    :func:`accel_lib.optim.functional.lion_step_`.
    """

    def __init__(self, params: Iterable, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0, *,
                 maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in self._with_grad(group):
                state = self.state[p]
                if not state:
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                F.lion_step_(p, p.grad, state["exp_avg"], lr=group["lr"], beta1=beta1,
                             beta2=beta2, weight_decay=group["weight_decay"],
                             maximize=group["maximize"])
        return loss


class LAMB(_Base):
    """LAMB (You et al. 2020): AdamW's direction, rescaled per tensor so that each layer's
    step is ``lr * ||p||`` long: the large-batch optimiser of data-parallel training.
    See :func:`accel_lib.optim.functional.lamb_step_`; ``last_trust_ratios`` holds the
    ratio each parameter got at the last step."""

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, maximize=maximize)
        self._check(defaults)
        super().__init__(params, defaults)
        self.last_trust_ratios: list[float] = []

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])
        check_real(group["eps"], "eps", low=0.0)

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = self._closure(closure)
        self.last_trust_ratios = []
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in self._with_grad(group):
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                self.last_trust_ratios.append(F.lamb_step_(
                    p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                    lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                    weight_decay=group["weight_decay"], maximize=group["maximize"]))
        return loss


# The optimisers by name (``build_optimizer``): accel_lib's own.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "classical_momentum": ClassicalMomentum, "adagrad": Adagrad,
    "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW, "lion": Lion, "lamb": LAMB,
}


def build_optimizer(name: str, params: Iterable, **hyper: Any) -> Optimizer:
    """One of :data:`OPTIMIZERS` by name, e.g. ``build_optimizer("adamw", model.parameters(),
    lr=1e-3)``; unknown names raise a ValueError listing the known ones."""
    check_choice(name, "name", OPTIMIZERS)
    return OPTIMIZERS[name](params, **hyper)
