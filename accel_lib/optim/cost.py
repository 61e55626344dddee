"""What an optimiser step costs: time (loop vs foreach vs fused) and memory (its state).

A step does a handful of element-wise operations per parameter tensor. For a model of many
small tensors the arithmetic is tiny and the *overhead per operation* (Python, the
dispatcher, a kernel launch) dominates: a Python loop pays it ~8 times per tensor, the
``torch._foreach_*`` multi-tensor ops ~8 times per *list* of tensors, and a fused kernel
once for everything (reading each tensor once instead of ~8 times). The state is memory:
SGD with momentum keeps one extra copy of the weights, Adam two.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.optim import Optimizer

from .._validate import check_choice, check_int
from ..bench import Timing, time_fn
from ..stats import peak_memory_bytes, tensor_bytes
from . import optimizers as own

__all__ = ["state_bytes", "param_bytes", "state_bytes_ratio", "fused_available",
           "many_small_params", "STEP_VARIANTS", "step_variants", "StepCost", "measure_steps"]


def state_bytes(optimizer: Optimizer) -> int:
    """Bytes of every tensor the optimiser keeps in its state (``numel * element_size``).

    PyTorch's Adam also keeps one 4-byte ``step`` tensor per parameter; those count too.
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer, got "
                        f"{type(optimizer).__name__}")
    return sum(tensor_bytes(dict(s)) for s in optimizer.state.values())


def param_bytes(optimizer: Optimizer) -> int:
    """Bytes of the parameters the optimiser updates (every group, each tensor once)."""
    seen: dict[int, torch.Tensor] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            seen[id(p)] = p
    return tensor_bytes(list(seen.values()))


def state_bytes_ratio(optimizer: Optimizer) -> float:
    """:func:`state_bytes` / :func:`param_bytes`: ~1 for SGD with momentum, ~2 for Adam."""
    return state_bytes(optimizer) / param_bytes(optimizer)


def fused_available(name: str = "adam", device: torch.device | str = "cpu") -> bool:
    """Whether ``torch.optim``'s ``fused=True`` implementation of ``name`` runs on ``device``
    (it is tried on a tiny tensor: CPU fused kernels arrived in PyTorch 2.4)."""
    check_choice(name, "name", _TORCH)
    p = nn.Parameter(torch.zeros(4, device=device))
    p.grad = torch.ones_like(p)
    try:
        _TORCH[name]([p], lr=1e-3, fused=True).step()
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


_TORCH: dict[str, type[Optimizer]] = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam,
                                      "adamw": torch.optim.AdamW}
_OWN: dict[str, type[Optimizer]] = {"sgd": own.SGD, "adam": own.Adam, "adamw": own.AdamW}


def many_small_params(n_tensors: int = 200, shape: Sequence[int] = (16, 16), *, seed: int = 0,
                      device: torch.device | str = "cpu") -> list[nn.Parameter]:
    """``n_tensors`` parameters of ``shape`` with random gradients attached: the worst case
    for per-tensor overhead (a deep network of small layers, biases, norms).

    Shapes: each parameter and its ``.grad`` are ``shape``.
    """
    check_int(n_tensors, "n_tensors")
    gen = torch.Generator().manual_seed(seed)
    params = []
    for _ in range(n_tensors):
        p = nn.Parameter(torch.randn(*shape, generator=gen).to(device))
        p.grad = torch.randn(*shape, generator=gen).to(device)
        params.append(p)
    return params


# The implementations of a step that measure_steps compares.
STEP_VARIANTS = ("torch loop", "torch foreach", "torch fused", "own loop", "own foreach")


def step_variants(params: Iterable[nn.Parameter], name: str = "adam",
                  variants: Sequence[str] = STEP_VARIANTS, **hyper: float
                  ) -> dict[str, Optimizer]:
    """One optimiser per variant, each on its own copy of ``params`` (gradients copied too).

    ``torch fused`` is left out where :func:`fused_available` says it does not run.
    """
    check_choice(name, "name", _TORCH)
    params = list(params)
    device = params[0].device if params else torch.device("cpu")
    out = {}
    for variant in variants:
        check_choice(variant, "variant", STEP_VARIANTS)
        if variant == "torch fused" and not fused_available(name, device):
            continue
        copies = [copy.deepcopy(p) for p in params]
        for c, p in zip(copies, params, strict=True):
            c.grad = None if p.grad is None else p.grad.clone()
        origin, how = variant.split(" ")
        cls = (_TORCH if origin == "torch" else _OWN)[name]
        flags = {"fused": True} if how == "fused" else {"foreach": how == "foreach"}
        out[variant] = cls(copies, **hyper, **flags)
    return out


@dataclass(frozen=True)
class StepCost:
    """One step implementation: its timing and the extra memory a step allocates."""

    name: str
    timing: Timing
    peak_bytes: int  # temporaries allocated during one step (state created before excluded)


def measure_steps(optimizers: dict[str, Optimizer], *, rounds: int = 5, repeats: int = 4,
                  device: torch.device | str | None = None) -> dict[str, StepCost]:
    """Time ``step()`` of each optimiser (interleaved: ``rounds`` rounds of ``repeats``
    samples each, so machine drift hits all alike) and measure each step's peak
    temporary memory (:func:`accel_lib.stats.peak_memory_bytes`).

    Each optimiser takes a first step before anything is measured (its state exists).
    """
    check_int(rounds, "rounds")
    check_int(repeats, "repeats")
    for opt in optimizers.values():
        opt.step()
    samples: dict[str, list[float]] = {name: [] for name in optimizers}
    for _ in range(rounds):
        for name, opt in optimizers.items():
            t = time_fn(opt.step, warmup=1, repeats=repeats, device=device, name=name)
            samples[name] += t.samples_ms
    dev = str(device or "cpu")
    out = {}
    for name, opt in optimizers.items():
        peak = peak_memory_bytes(opt.step, device)
        out[name] = StepCost(name, Timing(name, tuple(samples[name]), dev), peak)
    return out
