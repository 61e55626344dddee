"""Update rules as pure tensor functions: one parameter tensor at a time, or many at once.

Each ``*_step_`` function updates one parameter (and its state tensors) in place, in the
same order of floating-point operations as ``torch.optim``'s for-loop implementation, so
the two agree bit for bit in float32. Each ``*_foreach_`` function does the same update for
a whole list of parameters with ``torch._foreach_*`` multi-tensor ops (one call per
operation for the list instead of one per tensor), in the order of ``torch.optim``'s
``foreach=True`` implementation; it computes exactly the same numbers as the loop.

Conventions (PyTorch's): ``g`` is the gradient (``-g`` with ``maximize``), ``t`` the number
of steps taken *including this one* (1 on the first step), ``lr`` the learning rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "sgd_step_",
    "sgd_foreach_",
    "classical_momentum_step_",
    "adagrad_step_",
    "rmsprop_step_",
    "adam_step_",
    "adam_foreach_",
    "lion_step_",
    "lamb_step_",
    "trust_ratio",
]


def sgd_step_(param: Tensor, grad: Tensor, momentum_buffer: Tensor | None, *, lr: float,
              momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
              nesterov: bool = False, maximize: bool = False) -> Tensor | None:
    """One SGD step on one tensor, in place, in PyTorch's momentum convention.

    ``g <- g + wd * p``; with momentum ``v <- mu * v + (1 - dampening) * g`` (``v <- g`` on
    the first step: the first buffer is the gradient itself, not dampened);
    ``d = g + mu * v`` (Nesterov) or ``d = v``; then ``p <- p - lr * d``.

    Returns the momentum buffer (a new tensor on the first step, ``None`` without momentum).

    Shapes: ``param``, ``grad`` and ``momentum_buffer`` share one shape.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    buf = momentum_buffer
    if momentum != 0:
        if buf is None:
            buf = g.detach().clone()
        else:
            buf.mul_(momentum).add_(g, alpha=1 - dampening)
        g = g.add(buf, alpha=momentum) if nesterov else buf
    param.add_(g, alpha=-lr)
    return buf


def _groups(*lists: Sequence[Tensor | None]) -> list[list[int]]:
    """Indices of the tensors of ``lists[0]`` that share a device and dtype (foreach ops
    need one of each per call)."""
    out: dict[tuple[torch.device, torch.dtype], list[int]] = {}
    for i, t in enumerate(lists[0]):
        out.setdefault((t.device, t.dtype), []).append(i)
    return list(out.values())


def sgd_foreach_(params: Sequence[Tensor], grads: Sequence[Tensor],
                 momentum_buffers: list[Tensor | None], *, lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
                 maximize: bool = False) -> list[Tensor | None]:
    """:func:`sgd_step_` on every tensor of ``params`` with multi-tensor (foreach) ops.

    ``momentum_buffers`` holds one buffer (or ``None`` before the first step) per tensor;
    the updated list is returned (new buffers for those that were ``None``).
    Gradients are never modified.

    Shapes: ``params[i]``, ``grads[i]`` and ``momentum_buffers[i]`` share one shape.
    """
    buffers = list(momentum_buffers)
    for index in _groups(params, grads):
        p = [params[i] for i in index]
        g = [grads[i] for i in index]
        if maximize:
            g = torch._foreach_neg(g)
        if weight_decay != 0:
            g = torch._foreach_add(g, p, alpha=weight_decay)
        if momentum != 0:
            bufs = [buffers[i] for i in index]
            if all(b is not None for b in bufs):
                torch._foreach_mul_(bufs, momentum)
                torch._foreach_add_(bufs, g, alpha=1 - dampening)
            else:
                for k, i in enumerate(index):
                    if bufs[k] is None:
                        bufs[k] = buffers[i] = g[k].detach().clone()
                    else:
                        bufs[k].mul_(momentum).add_(g[k], alpha=1 - dampening)
            g = torch._foreach_add(g, bufs, alpha=momentum) if nesterov else bufs
        torch._foreach_add_(p, g, alpha=-lr)
    return buffers


def classical_momentum_step_(param: Tensor, grad: Tensor, velocity: Tensor | None, *,
                             lr: float, momentum: float, weight_decay: float = 0.0,
                             maximize: bool = False) -> Tensor:
    """One heavy-ball step in the "classical" convention (Polyak; Sutskever et al. 2013).

    ``v <- mu * v + lr * g``, ``p <- p - v``: the learning rate is folded into the velocity.
    PyTorch keeps it outside (``v <- mu * v + g``, ``p <- p - lr * v``). With a constant
    ``lr`` the two are the same algorithm (``v_classical = lr * v_pytorch``); when ``lr``
    changes they differ: the classical velocity keeps the old ``lr`` on its past gradients,
    PyTorch's applies the new ``lr`` to the whole history at once.

    Returns the velocity (a new tensor on the first step).

    Shapes: ``param``, ``grad`` and ``velocity`` share one shape.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    if velocity is None:
        velocity = g.mul(lr)
    else:
        velocity.mul_(momentum).add_(g, alpha=lr)
    param.sub_(velocity)
    return velocity


def adagrad_step_(param: Tensor, grad: Tensor, state_sum: Tensor, step: int, *, lr: float,
                  lr_decay: float = 0.0, weight_decay: float = 0.0, eps: float = 1e-10,
                  maximize: bool = False) -> None:
    """One AdaGrad step on one tensor, in place (Duchi et al. 2011, PyTorch's order).

    ``G <- G + g^2``; ``p <- p - lr_t * g / (sqrt(G) + eps)`` with
    ``lr_t = lr / (1 + (t - 1) * lr_decay)``: every coordinate gets its own step size,
    smaller where gradients have been large. ``G`` only grows, so steps only shrink.

    Shapes: ``param``, ``grad`` and ``state_sum`` share one shape; ``step`` is ``t >= 1``.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum.addcmul_(g, g, value=1)
    std = state_sum.sqrt().add_(eps)
    param.addcdiv_(g, std, value=-clr)


def rmsprop_step_(param: Tensor, grad: Tensor, square_avg: Tensor, *, lr: float,
                  alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                  momentum: float = 0.0, momentum_buffer: Tensor | None = None,
                  centered: bool = False, grad_avg: Tensor | None = None,
                  maximize: bool = False) -> None:
    """One RMSProp step on one tensor, in place (Hinton's lecture 6e, PyTorch's order).

    ``s <- alpha * s + (1 - alpha) * g^2`` (an exponential average where AdaGrad sums, so
    old gradients are forgotten); ``d = g / (sqrt(s - gbar^2) + eps)`` (``centered``, with
    ``gbar`` the average gradient) or ``g / (sqrt(s) + eps)``; with momentum
    ``b <- mu * b + d``, ``p <- p - lr * b``, else ``p <- p - lr * d``.

    Shapes: every tensor argument shares ``param``'s shape.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        g = g.add(param, alpha=weight_decay)
    square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
    if centered:
        if grad_avg is None:
            raise ValueError("centered=True needs grad_avg, the running average of gradients")
        grad_avg.lerp_(g, 1 - alpha)
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()
    avg = avg.add_(eps)
    if momentum > 0:
        if momentum_buffer is None:
            raise ValueError("momentum > 0 needs momentum_buffer (zeros on the first step)")
        momentum_buffer.mul_(momentum).addcdiv_(g, avg)
        param.add_(momentum_buffer, alpha=-lr)
    else:
        param.addcdiv_(g, avg, value=-lr)


def adam_step_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: int, *,
               lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
               weight_decay: float = 0.0, decoupled: bool = False,
               max_exp_avg_sq: Tensor | None = None, maximize: bool = False) -> None:
    """One Adam (``decoupled=False``) or AdamW (``decoupled=True``) step on one tensor.

    ``m <- beta1 * m + (1 - beta1) * g`` and ``v <- beta2 * v + (1 - beta2) * g^2`` are
    averages started at zero, biased towards 0 early on; dividing by ``1 - beta^t`` removes
    that bias (``t`` = 1 on the first step). The update is
    ``p <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``.
    Weight decay is L2 (``g <- g + wd * p``, Adam) or decoupled (``p <- p * (1 - lr * wd)``
    before the update, AdamW: the decay is not divided by ``sqrt(v)``). With
    ``max_exp_avg_sq`` (AMSGrad) the running maximum of ``v`` replaces ``v``.

    Shapes: every tensor argument shares ``param``'s shape; ``step`` is ``t >= 1``.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        if decoupled:
            param.mul_(1 - lr * weight_decay)
        else:
            g = g.add(param, alpha=weight_decay)
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    bias_correction1 = 1 - beta1**step
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    if max_exp_avg_sq is not None:
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        second = max_exp_avg_sq
    else:
        second = exp_avg_sq
    denom = (second.sqrt() / bias_correction2**0.5).add_(eps)
    param.addcdiv_(exp_avg, denom, value=-step_size)


def adam_foreach_(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
                  exp_avg_sqs: Sequence[Tensor], steps: Sequence[int], *, lr: float,
                  beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                  weight_decay: float = 0.0, decoupled: bool = False,
                  max_exp_avg_sqs: Sequence[Tensor] | None = None,
                  maximize: bool = False) -> None:
    """:func:`adam_step_` on every tensor of ``params`` with multi-tensor (foreach) ops.

    ``steps[i]`` is tensor ``i``'s step count ``t`` (including this step). About eight
    foreach calls do the work of eight calls per tensor; the price is one temporary list of
    tensors as large as the parameters (``sqrt(v)``), alive for the whole step.

    Shapes: ``params[i]`` and the state tensors ``[i]`` share one shape.
    """
    for index in _groups(params, grads):
        p = [params[i] for i in index]
        g = [grads[i] for i in index]
        m = [exp_avgs[i] for i in index]
        v = [exp_avg_sqs[i] for i in index]
        if maximize:
            g = torch._foreach_neg(g)
        if weight_decay != 0:
            if decoupled:
                torch._foreach_mul_(p, 1 - lr * weight_decay)
            else:
                g = torch._foreach_add(g, p, alpha=weight_decay)
        torch._foreach_lerp_(m, g, 1 - beta1)
        torch._foreach_mul_(v, beta2)
        torch._foreach_addcmul_(v, g, g, 1 - beta2)
        del g
        step_size = [(lr / (1 - beta1**steps[i])) * -1 for i in index]
        bias_correction2_sqrt = [(1 - beta2**steps[i]) ** 0.5 for i in index]
        if max_exp_avg_sqs is not None:
            vmax = [max_exp_avg_sqs[i] for i in index]
            torch._foreach_maximum_(vmax, v)
            denom = torch._foreach_sqrt(vmax)
        else:
            denom = torch._foreach_sqrt(v)
        torch._foreach_div_(denom, bias_correction2_sqrt)
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(p, m, denom, step_size)


def lion_step_(param: Tensor, grad: Tensor, exp_avg: Tensor, *, lr: float, beta1: float = 0.9,
               beta2: float = 0.99, weight_decay: float = 0.0, maximize: bool = False) -> None:
    """One Lion step on one tensor, in place (Chen et al. 2023, "Symbolic Discovery of
    Optimization Algorithms").

    ``c = beta1 * m + (1 - beta1) * g``; ``p <- p * (1 - lr * wd) - lr * sign(c)``;
    ``m <- beta2 * m + (1 - beta2) * g``. Every coordinate moves by exactly ``lr`` (before
    decay): the sign throws the gradient's magnitude away. One state tensor (Adam keeps
    two), so half of Adam's optimiser memory.

    Shapes: ``param``, ``grad`` and ``exp_avg`` share one shape.
    """
    g = grad if not maximize else -grad
    if weight_decay != 0:
        param.mul_(1 - lr * weight_decay)
    direction = exp_avg.lerp(g, 1 - beta1).sign_()
    param.add_(direction, alpha=-lr)
    exp_avg.lerp_(g, 1 - beta2)


def trust_ratio(param: Tensor, update: Tensor) -> float:
    """LARS/LAMB's layer-wise trust ratio ``||p|| / ||u||`` (1 when either norm is 0).

    Scaling a layer's update ``u`` by it makes the step's norm ``lr * ||p||``: every layer
    moves by the same *relative* amount, whatever its gradient scale.

    Shapes: ``param`` and ``update`` share one shape.
    """
    w, u = float(param.norm()), float(update.norm())
    return w / u if w > 0 and u > 0 else 1.0


def lamb_step_(param: Tensor, grad: Tensor, exp_avg: Tensor, exp_avg_sq: Tensor, step: int, *,
               lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
               weight_decay: float = 0.0, maximize: bool = False) -> float:
    """One LAMB step on one tensor, in place (You et al. 2020, "Large Batch Optimization for
    Deep Learning: Training BERT in 76 minutes").

    Adam's bias-corrected direction plus decoupled decay,
    ``u = m_hat / (sqrt(v_hat) + eps) + wd * p``, scaled per tensor by the trust ratio
    ``||p|| / ||u||``: ``p <- p - lr * (||p|| / ||u||) * u``. Each layer's step is
    ``lr * ||p||`` long, which keeps very large batches (and the large learning rates they
    need) stable in data-parallel training. Returns the trust ratio used.

    Shapes: every tensor argument shares ``param``'s shape; ``step`` is ``t >= 1``.
    """
    g = grad if not maximize else -grad
    exp_avg.lerp_(g, 1 - beta1)
    exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    m_hat = exp_avg / (1 - beta1**step)
    v_hat = exp_avg_sq / (1 - beta2**step)
    update = m_hat / (v_hat.sqrt() + eps)
    if weight_decay != 0:
        update.add_(param, alpha=weight_decay)
    ratio = trust_ratio(param, update)
    param.add_(update, alpha=-lr * ratio)
    return ratio
