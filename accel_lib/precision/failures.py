"""The three ways 16-bit floats fail in training, and their fixes, as small functions.

* **Overflow**: an activation (or a sum of products) beyond fp16's 65504 becomes inf.
  bf16 has fp32's range and does not overflow there.
* **Underflow**: a gradient below half of fp16's smallest subnormal (``2^-25``) rounds to 0.
  Fix: loss scaling (:mod:`.scaler`) moves the gradients up into the representable range.
* **Swamping**: once a running sum is large, its spacing exceeds the terms added to it and
  they vanish (``2048 + 1 = 2048`` in fp16). Fixes: accumulate in fp32 (what tensor cores
  and ``torch.sum`` do), Kahan (compensated) summation, or pairwise summation.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validate import check_tensor
from .errors import unit_roundoff

__all__ = ["overflow_fraction", "underflow_fraction", "matmul_overflows", "naive_sum",
           "fp32_accumulated_sum", "kahan_sum", "pairwise_sum", "relative_error"]

_NUMPY = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}


def _check_dtype(dtype: torch.dtype, allowed: tuple[torch.dtype, ...]) -> None:
    if dtype not in allowed:
        raise ValueError(f"dtype must be one of {[str(d) for d in allowed]}, got {dtype!r}")


def overflow_fraction(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """Fraction of the finite values of ``x`` that become +-inf when cast to ``dtype``."""
    check_tensor(x, "x")
    unit_roundoff(dtype)
    finite = torch.isfinite(x)
    if not bool(finite.any()):
        return 0.0
    return float(torch.isinf(x[finite].to(dtype)).float().mean())


def underflow_fraction(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """Fraction of the nonzero values of ``x`` that become exactly 0 when cast to ``dtype``."""
    check_tensor(x, "x")
    unit_roundoff(dtype)
    nonzero = x != 0
    if not bool(nonzero.any()):
        return 0.0
    return float((x[nonzero].to(dtype) == 0).float().mean())


def matmul_overflows(a: torch.Tensor, b: torch.Tensor,
                     dtype: torch.dtype = torch.float16) -> dict[str, bool]:
    """Whether ``a @ b`` has an inf computed in fp32 and with the result stored in ``dtype``
    (the products summed in fp32, as tensor cores do, then rounded: overflow of the output)."""
    check_tensor(a, "a")
    check_tensor(b, "b")
    unit_roundoff(dtype)
    out = a.float() @ b.float()
    return {"fp32": bool(torch.isinf(out).any()), str(dtype).replace("torch.", ""):
            bool(torch.isinf(out.to(dtype)).any())}


def _as_numpy(x: torch.Tensor, dtype: torch.dtype) -> np.ndarray:
    check_tensor(x, "x")
    if x.dim() != 1:
        raise ValueError(f"x must be a 1-D tensor, got shape {tuple(x.shape)}")
    _check_dtype(dtype, tuple(_NUMPY))
    return x.detach().to(dtype).to(torch.float64).numpy().astype(_NUMPY[dtype])


def naive_sum(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """Left-to-right sum with the running total *stored in* ``dtype`` after every addition
    (each term is first rounded to ``dtype``): the swamping-prone loop."""
    v = _as_numpy(x, dtype)
    if v.size == 0:
        return 0.0
    return float(np.add.accumulate(v, dtype=v.dtype)[-1])  # sequential, rounds each step


def fp32_accumulated_sum(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """The terms rounded to ``dtype`` but summed left to right in an fp32 accumulator."""
    v = _as_numpy(x, dtype).astype(np.float32)
    if v.size == 0:
        return 0.0
    return float(np.add.accumulate(v, dtype=np.float32)[-1])


def kahan_sum(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """Kahan's compensated sum, every operation in ``dtype``: a second variable ``c`` carries
    the low-order bits each addition lost, so the error stays ~``2u`` instead of ``n u``.
    A Python loop: O(n), for demonstrations up to ~1e5 terms."""
    v = _as_numpy(x, dtype)
    t = v.dtype.type
    s, c = t(0), t(0)
    for term in v:
        y = t(term - c)
        big = t(s + y)
        c = t(t(big - s) - y)  # what was lost, negated
        s = big
    return float(s)


def pairwise_sum(x: torch.Tensor, dtype: torch.dtype = torch.float16) -> float:
    """Pairwise (tree) summation, every addition rounded to ``dtype``: error grows like
    ``log2(n) u`` instead of ``n u``. Vectorised: halve the array until one value is left."""
    v = torch.from_numpy(_as_numpy(x, dtype).astype(np.float64)).to(dtype)
    if v.numel() == 0:
        return 0.0
    while v.numel() > 1:
        if v.numel() % 2:
            v = torch.cat([v, v.new_zeros(1)])
        v = v[0::2] + v[1::2]  # stays in dtype: rounds each addition
    return float(v[0])


def relative_error(approx: float, exact: float) -> float:
    """``|approx - exact| / |exact|`` (``inf`` when ``exact`` is 0 and ``approx`` is not)."""
    if exact == 0:
        return 0.0 if approx == 0 else float("inf")
    return abs(approx - exact) / abs(exact)
