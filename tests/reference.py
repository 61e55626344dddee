"""One line to compare a from-scratch function with the framework's own (tinygrad's habit).

    assert_matches_reference(lambda z: ours(z, 4.0), lambda z: F.softmax(z / 4.0, -1), z)

checks the values and, for every floating-point input tensor, the gradients of both
functions against the same upstream gradient. It uses ``torch.testing.assert_close``, so
a failure prints how many elements differ and the largest absolute and relative difference.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def _fresh(inputs: tuple[Any, ...], grad: bool) -> tuple[Any, ...]:
    """Detached copies of the tensor inputs (with requires_grad for the floating ones)."""
    out = []
    for x in inputs:
        if isinstance(x, torch.Tensor):
            x = x.detach().clone()
            if grad and x.is_floating_point():
                x.requires_grad_(True)
        out.append(x)
    return tuple(out)


def assert_matches_reference(ours: Callable[..., torch.Tensor],
                             reference: Callable[..., torch.Tensor], *inputs: Any,
                             grad: bool = True, exact: bool = False,
                             rtol: float | None = None, atol: float | None = None,
                             seed: int = 0) -> None:
    """Assert ``ours(*inputs)`` equals ``reference(*inputs)`` in values and gradients.

    Args:
        ours, reference: functions of the same inputs, returning a tensor.
        inputs: the arguments; tensors are copied, so neither function sees the other's.
        grad: also compare the gradients with respect to every floating-point tensor input,
            for one random upstream gradient (the same for both).
        exact: demand bit-identical results (``rtol = atol = 0``).
        rtol, atol: tolerances (default: ``assert_close``'s for the dtype).
    """
    if exact:
        rtol = atol = 0.0
    mine_in, ref_in = _fresh(inputs, grad), _fresh(inputs, grad)
    mine, ref = ours(*mine_in), reference(*ref_in)
    torch.testing.assert_close(mine, ref, rtol=rtol, atol=atol, msg=lambda m: f"values: {m}")
    if not grad:
        return
    differentiable = [i for i, x in enumerate(mine_in)
                      if isinstance(x, torch.Tensor) and x.requires_grad]
    if not differentiable or not ref.requires_grad:
        return
    upstream = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed),
                           dtype=ref.dtype)
    mine_grads = torch.autograd.grad(mine, [mine_in[i] for i in differentiable], upstream,
                                     allow_unused=True)
    ref_grads = torch.autograd.grad(ref, [ref_in[i] for i in differentiable], upstream,
                                    allow_unused=True)
    for i, g_mine, g_ref in zip(differentiable, mine_grads, ref_grads, strict=True):
        g_mine = torch.zeros_like(mine_in[i]) if g_mine is None else g_mine
        g_ref = torch.zeros_like(ref_in[i]) if g_ref is None else g_ref
        torch.testing.assert_close(g_mine, g_ref, rtol=rtol, atol=atol,
                                   msg=lambda m, i=i: f"gradient of input {i}: {m}")


def assert_raises_and_changes_nothing(transform: Callable[[torch.nn.Module], Any],
                                      model: torch.nn.Module, error: type[Exception],
                                      match: str | None = None) -> None:
    """Assert ``transform(model)`` raises ``error`` and leaves ``model`` as it was: the same
    module at every name and a bit-identical ``state_dict`` (the contract of every in-place
    ``..._`` transform: validate everything first, change nothing when raising)."""
    import pytest

    types = {name: type(m) for name, m in model.named_modules()}
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with pytest.raises(error, match=match):
        transform(model)
    assert {name: type(m) for name, m in model.named_modules()} == types
    after = model.state_dict()
    assert after.keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(after[key], value), f"{key} changed"
