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
    """The shared frame of every optimiser here.

    ``__init__`` checks the defaults before anything is built; ``add_param_group`` checks each
    group (``_check`` in each subclass) before it is added; ``step`` evaluates the closure and
    calls ``_update(group)`` for every group under ``no_grad``. ``_states(group)`` yields
    ``(parameter, state)`` for the parameters that have a gradient, creating the state on first
    use (``_init_state``) and counting ``state["step"]`` when ``_counts_steps``.
    """

    _counts_steps = False

    def __init__(self, params: Iterable, **defaults: Any) -> None:
        self._check(defaults)
        super().__init__(params, defaults)

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

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Fill a parameter's empty state (lazily: only parameters that get a gradient)."""

    def _states(self, group: dict[str, Any]) -> list[tuple[torch.Tensor, dict[str, Any]]]:
        pairs = []
        for p in self._with_grad(group):
            state = self.state[p]
            if not state:
                if self._counts_steps:
                    state["step"] = 0
                self._init_state(p, group, state)
            if self._counts_steps:
                state["step"] += 1
            pairs.append((p, state))
        return pairs

    def _update(self, group: dict[str, Any]) -> None:
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Closure = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update(group)
        return loss


def _zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


class SGD(_Base):
    """Stochastic gradient descent with PyTorch's momentum, dampening, Nesterov and decay.

    ``v <- mu * v + (1 - dampening) * (g + wd * p)`` (``v <- g`` on the first step),
    ``p <- p - lr * v`` (or ``p <- p - lr * (g + mu * v)`` with ``nesterov``). See
    :func:`accel_lib.optim.functional.sgd_step_`.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool = True) -> None:
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                         foreach=foreach)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["momentum"], "momentum")
        check_fraction(group["dampening"], "dampening", one=True)
        _check_bool(group["foreach"], "foreach")
        if _check_bool(group["nesterov"], "nesterov") and (
                group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"nesterov=True needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, group: dict[str, Any]) -> None:
        params = self._with_grad(group)
        hyper = dict(lr=group["lr"], momentum=group["momentum"], dampening=group["dampening"],
                     weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                     maximize=group["maximize"])
        bufs = [self.state[p].get("momentum_buffer") for p in params]
        if group["foreach"]:
            bufs = F.sgd_foreach_(params, [p.grad for p in params], bufs, **hyper)
        else:
            bufs = [F.sgd_step_(p, p.grad, b, **hyper) for p, b in zip(params, bufs, strict=True)]
        if group["momentum"] != 0:
            for p, b in zip(params, bufs, strict=True):
                self.state[p]["momentum_buffer"] = b


class ClassicalMomentum(_Base):
    """Heavy-ball momentum in the classical convention: ``v <- mu * v + lr * g``, ``p <- p - v``.

    The same trajectory as ``SGD(momentum=mu)`` while ``lr`` is constant; different once a
    schedule changes ``lr`` (see :func:`accel_lib.optim.functional.classical_momentum_step_`).
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.9,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         maximize=maximize)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["momentum"], "momentum")

    def _update(self, group: dict[str, Any]) -> None:
        for p, state in self._states(group):
            state["velocity"] = F.classical_momentum_step_(
                p, p.grad, state.get("velocity"), lr=group["lr"], momentum=group["momentum"],
                weight_decay=group["weight_decay"], maximize=group["maximize"])


class Adagrad(_Base):
    """AdaGrad: per-coordinate steps ``lr / (sqrt(sum of g^2) + eps)``
    (:func:`accel_lib.optim.functional.adagrad_step_`)."""

    _counts_steps = True

    def __init__(self, params: Iterable, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10, *, maximize: bool = False) -> None:
        super().__init__(params, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                         initial_accumulator_value=initial_accumulator_value, maximize=maximize)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_real(group["lr_decay"], "lr_decay", low=0.0)
        check_real(group["eps"], "eps", low=0.0)
        check_real(group["initial_accumulator_value"], "initial_accumulator_value", low=0.0)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["sum"] = torch.full_like(p, group["initial_accumulator_value"],
                                       memory_format=torch.preserve_format)

    def _update(self, group: dict[str, Any]) -> None:
        for p, state in self._states(group):
            F.adagrad_step_(p, p.grad, state["sum"], state["step"], lr=group["lr"],
                            lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                            eps=group["eps"], maximize=group["maximize"])


class RMSprop(_Base):
    """RMSProp: steps ``lr * g / (sqrt(EMA of g^2) + eps)``, optionally centered and with
    momentum (:func:`accel_lib.optim.functional.rmsprop_step_`)."""

    _counts_steps = True

    def __init__(self, params: Iterable, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False, *, maximize: bool = False) -> None:
        super().__init__(params, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum, centered=centered, maximize=maximize)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        check_fraction(group["alpha"], "alpha", one=True, meaning="(the squared-gradient decay)")
        check_real(group["eps"], "eps", low=0.0)
        check_fraction(group["momentum"], "momentum")
        _check_bool(group["centered"], "centered")

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["square_avg"] = _zeros(p)
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros(p)
        if group["centered"]:
            state["grad_avg"] = _zeros(p)

    def _update(self, group: dict[str, Any]) -> None:
        for p, state in self._states(group):
            F.rmsprop_step_(p, p.grad, state["square_avg"], lr=group["lr"], alpha=group["alpha"],
                            eps=group["eps"], weight_decay=group["weight_decay"],
                            momentum=group["momentum"],
                            momentum_buffer=state.get("momentum_buffer"),
                            centered=group["centered"], grad_avg=state.get("grad_avg"),
                            maximize=group["maximize"])


class Adam(_Base):
    """Adam with bias correction (Kingma & Ba 2015), L2 weight decay and optional AMSGrad.

    ``p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``: see
    :func:`accel_lib.optim.functional.adam_step_`. State: ``step`` and two tensors per
    parameter (``exp_avg``, ``exp_avg_sq``), i.e. twice the parameters' memory.
    """

    _decoupled = False
    _counts_steps = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool = True) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, foreach=foreach)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])
        check_real(group["eps"], "eps", low=0.0)
        _check_bool(group["amsgrad"], "amsgrad")
        _check_bool(group["foreach"], "foreach")

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["exp_avg"] = _zeros(p)
        state["exp_avg_sq"] = _zeros(p)
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(p)

    def _update(self, group: dict[str, Any]) -> None:
        pairs = self._states(group)
        params = [p for p, _ in pairs]
        states = [s for _, s in pairs]
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
            for p, s in pairs:
                F.adam_step_(p, p.grad, s["exp_avg"], s["exp_avg_sq"], s["step"],
                             max_exp_avg_sq=s.get("max_exp_avg_sq"), **hyper)


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
        super().__init__(params, lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["exp_avg"] = _zeros(p)

    def _update(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        for p, state in self._states(group):
            F.lion_step_(p, p.grad, state["exp_avg"], lr=group["lr"], beta1=beta1, beta2=beta2,
                         weight_decay=group["weight_decay"], maximize=group["maximize"])


class LAMB(_Base):
    """LAMB (You et al. 2020): AdamW's direction, rescaled per tensor so that each layer's
    step is ``lr * ||p||`` long: the large-batch optimiser of data-parallel training.
    See :func:`accel_lib.optim.functional.lamb_step_`; ``last_trust_ratios`` holds the
    ratio each parameter got at the last step."""

    _counts_steps = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, *, maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         maximize=maximize)
        self.last_trust_ratios: list[float] = []

    def _check(self, group: dict[str, Any]) -> None:
        super()._check(group)
        _check_betas(group["betas"])
        check_real(group["eps"], "eps", low=0.0)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        state["exp_avg"] = _zeros(p)
        state["exp_avg_sq"] = _zeros(p)

    def step(self, closure: Closure = None) -> Any:
        self.last_trust_ratios = []
        return super().step(closure)

    def _update(self, group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        for p, state in self._states(group):
            self.last_trust_ratios.append(F.lamb_step_(
                p, p.grad, state["exp_avg"], state["exp_avg_sq"], state["step"],
                lr=group["lr"], beta1=beta1, beta2=beta2, eps=group["eps"],
                weight_decay=group["weight_decay"], maximize=group["maximize"]))


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
