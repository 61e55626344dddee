"""torch.compile, measured honestly: compile time apart from steady-state time, as a ratio.

``torch.compile`` (dynamo + inductor) captures a function's tensor operations as a graph,
fuses them and generates code: C++ loops with vector instructions on a CPU, Triton kernels
on a GPU. Fusion removes memory traffic: a chain of ``L`` elementwise ops that eager mode
runs as ``L`` kernels, each reading and writing every element, becomes one loop that reads
the input once and writes the output once. That is why the gain depends on where the work
sits on the roofline:

* memory-bound work (elementwise chains, normalisations, small convs with their BN/ReLU)
  moves ``L`` times fewer bytes when fused: large speedups;
* GEMM-bound work (an MLP: almost all time in matmuls that already run in a tuned BLAS
  kernel at a high fraction of peak) has little left to fuse: ~1x on a CPU.

Compiling costs seconds up front, so :func:`compile_and_compare` reports the compile time
(the first call) next to the steady-state speedup, and how many calls it takes to pay back.
It compiles from scratch each time (a reset dynamo, inductor's FX-graph and AOT caches off):
the time shown is real tracing and code generation. Two savings stay, and are reported: C++
kernels already built from the same source are loaded from inductor's disk cache
(``CompileResult.kernels_built`` counts those built now), and the first compile in a
process pays once for starting the compiler (seconds; tens of seconds the very first time
on a machine, while inductor probes the CPU's vector instructions and builds its headers).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch

from .._validate import check_choice, check_int
from ..bench import Comparison, compare
from ..runtime import synchronize

__all__ = [
    "COMPILE_MODES",
    "CompileResult",
    "RESULT_HEADER",
    "compiler_available",
    "compile_and_compare",
    "generated_code",
    "kernel_sources",
    "elementwise_chain",
    "chain_cost",
]

# torch.compile modes this course measures ("reduce-overhead" adds CUDA graphs on a GPU and
# is the default mode on a CPU; "max-autotune-no-cudagraphs" benchmarks kernel choices).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")


@dataclass(frozen=True)
class CompileResult:
    """A function, eager against compiled (or ``tf.function`` against XLA), side by side."""

    name: str
    backend: str
    compile_s: float  # wall time of the first compiled call: trace + compile + run
    comparison: Comparison
    max_abs_diff: float
    compiled: Callable[..., Any] | None = field(default=None, repr=False, compare=False)
    kernels: int | None = None  # kernels in the generated code (None: not known)
    kernels_built: int | None = None  # of which compiled now, not loaded from the disk cache

    @property
    def speedup(self) -> float:
        """Steady state: baseline median / compiled median (> 1: compiled is faster)."""
        return self.comparison.speedup

    @property
    def baseline_ms(self) -> float:
        return self.comparison.baseline.median_ms

    @property
    def compiled_ms(self) -> float:
        return self.comparison.optimized.median_ms

    @property
    def device(self) -> str:
        return self.comparison.baseline.device

    @property
    def breakeven_calls(self) -> float:
        """Calls after which the compile time is paid back (``inf`` if never faster)."""
        saved_ms = self.baseline_ms - self.compiled_ms
        return self.compile_s * 1e3 / saved_ms if saved_ms > 0 else math.inf

    @property
    def kernels_note(self) -> str:
        """E.g. ``"3 of 7 built"`` (the rest loaded from inductor's disk cache), or ``""``."""
        if self.kernels is None or self.kernels_built is None:
            return ""
        return f"{min(self.kernels_built, self.kernels)} of {self.kernels} built"

    def row(self) -> list[Any]:
        """``[name, backend, device, compile s, kernels built, baseline ms, compiled ms,
        speedup, calls to pay back]`` for :func:`accel_lib.bench.markdown_table`."""
        calls = self.breakeven_calls
        return [self.name, self.backend, self.device, self.compile_s, self.kernels_note,
                self.baseline_ms, self.compiled_ms, self.speedup,
                "never" if math.isinf(calls) else f"{calls:,.0f}"]


RESULT_HEADER = ["what", "backend", "device", "compile s", "kernels", "baseline ms",
                 "compiled ms", "speedup", "calls to pay back"]


@contextlib.contextmanager
def _fresh_compile() -> Iterator[None]:
    """Compile for real (no FX-graph or AOT-autograd cache hit), in one process: inductor's
    compile workers would each hold a copy of torch in memory."""
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config

    # "No CUDA runtime is found": a CPU-only machine is not a problem for a CPU compile
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    torch._dynamo.reset()
    with inductor_config.patch(fx_graph_cache=False, compile_threads=1), \
            functorch_config.patch(enable_autograd_cache=False):
        yield


@functools.cache
def _probe(device_type: str) -> str:
    if device_type == "cpu":
        try:
            from torch._inductor.cpp_builder import get_cpp_compiler

            get_cpp_compiler()
        except Exception as err:  # whatever it is, inductor cannot build C++
            return (f"torch.compile cannot build code on this CPU: no working C++ compiler "
                    f"({type(err).__name__}: {err}). Inductor generates C++ kernels and "
                    f"compiles them with g++ or clang++: install one (Debian/Ubuntu: "
                    f"apt-get install g++; macOS: xcode-select --install)")
    try:
        with _fresh_compile():
            x = torch.ones(4, device=device_type)
            torch.compile(lambda t: t * 2 + 1)(x)
    except Exception as err:
        return f"torch.compile failed on {device_type}: {type(err).__name__}: {err}"
    finally:
        torch._dynamo.reset()
    return ""


def compiler_available(device: torch.device | str = "cpu") -> tuple[bool, str]:
    """Whether ``torch.compile`` works on ``device`` here: ``(True, "")`` or ``(False, why)``.

    Tried once per process by compiling a one-line function (on a CPU, a missing C++
    compiler is found first, with advice on installing one). The first call pays the
    compiler's start-up.
    """
    reason = _probe(torch.device(device).type)
    return (not reason, reason)


def _built_kernels() -> int:
    """C++ kernels (shared libraries) in inductor's disk cache: built at some time, reused
    when the same source comes again."""
    from torch._inductor.runtime.cache_dir_utils import cache_dir

    return sum(name.endswith(".so") for _, _, files in os.walk(cache_dir()) for name in files)


def _device_of(inputs: tuple[Any, ...]) -> torch.device:
    for x in inputs:
        if isinstance(x, torch.Tensor):
            return x.device
    return torch.device("cpu")


def _max_abs_diff(a: Any, b: Any) -> float:
    if isinstance(a, torch.Tensor):
        return float((a.detach().float() - b.detach().float()).abs().max()) if a.numel() else 0.0
    if isinstance(a, (list, tuple)):
        return max((_max_abs_diff(x, y) for x, y in zip(a, b, strict=True)), default=0.0)
    return 0.0


def compile_and_compare(
    fn: Callable[..., Any],
    *inputs: Any,
    mode: str = "default",
    name: str | None = None,
    warmup: int = 3,
    repeats: int = 20,
) -> CompileResult:
    """Compile ``fn`` with ``torch.compile(mode=mode)``; time its first call (the compile)
    and then eager against compiled, side by side (interleaved samples, medians).

    Runs under ``torch.no_grad()``, on the device of the first tensor input. Starts from
    a reset dynamo (compiled code of other functions is dropped and recompiles when next
    called), so the compile time is that of a real compile.

    Raises:
        ValueError: ``mode`` is not one of :data:`COMPILE_MODES`.
        RuntimeError: torch.compile does not work here (:func:`compiler_available` says why).
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable (a function or an nn.Module), got "
                        f"{type(fn).__name__}")
    check_choice(mode, "mode", COMPILE_MODES)
    check_int(warmup, "warmup", minimum=0)
    check_int(repeats, "repeats")
    device = _device_of(inputs)
    ok, why = compiler_available(device)
    if not ok:
        raise RuntimeError(why)
    from torch._inductor.utils import run_and_get_code

    label = name or getattr(fn, "__name__", type(fn).__name__)
    cpu = device.type == "cpu"
    with torch.no_grad():
        with _fresh_compile():
            compiled = torch.compile(fn, mode=mode)
            on_disk = _built_kernels() if cpu else 0
            synchronize(device)
            start = time.perf_counter()
            out, sources = run_and_get_code(compiled, *inputs)  # the first call: compile
            synchronize(device)
            compile_s = time.perf_counter() - start
            built = _built_kernels() - on_disk if cpu else None
        diff = _max_abs_diff(fn(*inputs), out)
        comparison = compare(lambda: fn(*inputs), lambda: compiled(*inputs),
                             names=("eager", f"torch.compile ({mode})"), warmup=warmup,
                             repeats=repeats, device=device, verbose=False)
    kernels = sum(len(kernel_sources(code)) for code in sources)
    return CompileResult(label, f"inductor ({mode})", compile_s, comparison, diff, compiled,
                         kernels, built)


def generated_code(fn: Callable[..., Any], *inputs: Any, mode: str = "default") -> str:
    """The code inductor generates for ``fn`` on ``inputs``: what ``TORCH_LOGS=output_code``
    prints, a Python wrapper around C++ (CPU) or Triton (GPU) kernels.

    Use :func:`kernel_sources` to pick out the kernels themselves.
    """
    from torch._inductor.utils import run_and_get_code

    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    check_choice(mode, "mode", COMPILE_MODES)
    ok, why = compiler_available(_device_of(inputs))
    if not ok:
        raise RuntimeError(why)
    with torch.no_grad(), _fresh_compile():
        _, sources = run_and_get_code(torch.compile(fn, mode=mode), *inputs)
    return "\n\n".join(sources)


_KERNEL = re.compile(r"async_compile\.\w+\((?:[^']|'(?!''))*?r?'''(.*?)'''", re.S)


def kernel_sources(code: str) -> list[str]:
    """The kernel sources (C++ or Triton) inside inductor's generated wrapper code."""
    if not isinstance(code, str):
        raise TypeError(f"code must be a str (from generated_code), got {type(code).__name__}")
    return [k.strip("\n") for k in _KERNEL.findall(code)]


def elementwise_chain(length: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> relu(x * 1.01 - 0.01)`` applied ``length`` times: ``3 * length`` elementwise
    ops that eager mode runs one kernel at a time and a compiler fuses into one loop."""
    check_int(length, "length")

    def chain(x: torch.Tensor) -> torch.Tensor:
        for _ in range(length):
            x = torch.relu(x * 1.01 - 0.01)
        return x

    chain.__name__ = f"elementwise_chain_{length}"
    return chain


def chain_cost(numel: int, length: int, bytes_per_element: int = 4) -> tuple[int, int, int]:
    """``(flops, bytes unfused, bytes fused)`` of :func:`elementwise_chain` on ``numel``
    elements: ``3 L n`` FLOPs; unfused each of the ``3 L`` ops reads and writes every
    element (``2 b n`` bytes each), fused the loop reads the input and writes the output once.
    """
    for label, v in (("numel", numel), ("length", length),
                     ("bytes_per_element", bytes_per_element)):
        check_int(v, label)
    ops = 3 * length
    return ops * numel, ops * 2 * bytes_per_element * numel, 2 * bytes_per_element * numel
