"""Fast kernels for :class:`~accel_lib.quantization.IntLinear`'s integer GEMM, picked by
measuring this machine.

The course's ``IntLinear`` computes ``y = s_x s_w [(q_x - z_x) q_w^T + b_q]`` from scratch
(``integer.py``: separate ops around ``torch._int_mm``). That is the reference a learner
reads. The same numbers come faster from the CPU's int8 GEMM libraries, weights packed once:

* ``"int_mm"``: ``torch._int_mm`` with the zero-point correction and the bias folded into
  one int32 vector. ATen runs it on oneDNN where the CPU has AVX-512 VNNI, and as a plain
  loop otherwise (exact but slow: the reference path's cost on an AVX2-only CPU).
* ``"onednn"``: oneDNN's packed int8 matmul (``torch.ops.onednn.qlinear_pointwise``, the
  x86 Inductor kernel): uint8 codes in, the int32 accumulator out as exact float32 (unit
  scales), rescaled as the reference does.
* ``"fbgemm"``: FBGEMM's packed int8 GEMM (``torch.ops.quantized``, the kernel
  ``quantize_dynamic`` runs on x86), given IntLinear's own activation scale and zero point:
  it quantizes the input itself (as ``quantize`` does) and rescales in float32.

``int_mm`` and ``onednn`` (and ``fbgemm`` with split weights) give the reference's float32
output bit for bit (integer sums below 2^24); plain ``fbgemm`` to one float rounding.

**Saturation.** Without VNNI, x86 int8 kernels multiply uint8 by int8 with ``vpmaddubsw``,
which adds two neighbouring products into an int16 *with saturation*: ``255 * 127 * 2 =
64770`` does not fit in ``32767``, and the sum is silently wrong. Each kernel is therefore
run first on a worst-case probe. One that saturates is used with its weights split in two
halves, ``q_w = a + b`` with ``|a|, |b| <= 64``, so that ``255 * (64 + 64) = 32640`` fits:
exact, but twice the work. With 7-bit activations (``QuantConfig(act_bits=7)``, what
``torch.ao`` calls ``reduce_range``) the codes are shifted to ``[0, 127]`` and
``127 * 128 * 2 = 32512`` fits: no split needed, full speed. A kernel that is wrong even
split is never used.

``backend="auto"`` takes the fastest exact one, measured once per process and activation
width at batch 1 and 64 on two layers, ``1024 -> 1024 -> 16`` (a big one, where the GEMM
counts, and a small one, where the per-call overhead does): :func:`int8_backend_report`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import statistics
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Protocol

import torch

from .._validate import check_choice, check_int, check_tensor
from ..bench import markdown_table, time_fn
from .ops import QParams, quant_range, quantize

__all__ = [
    "INT8_BACKENDS",
    "KERNELS",
    "SMALL_BATCH",
    "KernelStatus",
    "kernel_status",
    "build_int8_kernel",
    "BackendTiming",
    "Int8BackendReport",
    "int8_backend_report",
    "check_int8_backend",
    "resolve_int8_backend",
    "auto_int8_backend",
]

KERNELS = ("int_mm", "onednn", "fbgemm")  # "reference" is IntLinear's own path
INT8_BACKENDS = ("reference", *KERNELS, "auto")
SMALL_BATCH = 8  # auto runs batches below this with the batch-1 winner, others the batch-64 one
_TIMED_BATCHES = (1, 64)
_TIMED_WIDTHS = (1024, 1024, 16)  # the timed stack: Linear 1024 -> 1024, then 1024 -> 16

# A kernel: float rows x (N, K) -> float32 (N, C) = acc_scale * ((q_x - z_x) q_w^T + b_q).
Kernel = Callable[[torch.Tensor], torch.Tensor]


class _Layer(Protocol):
    """What a kernel reads from an :class:`IntLinear`: its buffers and activation qparams."""

    weight_q: torch.Tensor  # (C, K) int8
    weight_scale: torch.Tensor  # (C,)
    bias_q: torch.Tensor  # (C,) int32
    acc_scale: torch.Tensor  # (C,) = s_x * s_w
    act_qparams: QParams


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch.ao's deprecation warnings about quantized tensors (we only pack weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _check_finite(x: torch.Tensor) -> None:
    """The reference refuses NaN and infinities (``quantize``); so do the kernels, with one
    cheap reduction: NaN and infinities make the sum non-finite (and a sum of finite values
    that overflows is checked element by element, and passes)."""
    if not math.isfinite(float(x.sum())):
        check_tensor(x, "x", finite=True)  # raises, with the reference's message


def _codes(x: torch.Tensor, qp: QParams, offset: int, dtype: torch.dtype) -> torch.Tensor:
    """``quantize(x, qp) + offset`` as ``dtype``: the same float32 arithmetic as ``quantize``
    (bit-identical codes) in fewer passes over memory."""
    _check_finite(x)
    codes = torch.round(x.to(torch.float32) * (1.0 / qp.scale)).add_(int(qp.zero_point) + offset)
    return codes.clamp_(qp.qmin + offset, qp.qmax + offset).to(dtype)


def _split(weight_q: torch.Tensor) -> torch.Tensor:
    """``[a; b]`` with ``a + b = q_w`` and ``|a|, |b| <= 64``. Shapes: (C, K) -> (2C, K)."""
    a = torch.div(weight_q, 2, rounding_mode="floor")  # [-64, 63]
    return torch.cat([a, weight_q - a])  # b = q_w - a in [-64, 64]


def _fold(y: torch.Tensor, channels: int) -> torch.Tensor:
    """Add the two halves of a split GEMM's output: (N, 2C) -> (N, C); else unchanged."""
    return y[:, :channels] + y[:, channels:] if y.shape[1] != channels else y


def _rescale(acc: torch.Tensor, layer: _Layer) -> torch.Tensor:
    """The reference's epilogue on an integer-valued float accumulator (bias not included):
    ``(acc + b_q) * s_x s_w``. Every integer below 2^24 is exact in float32, so this gives
    the reference's float32 numbers bit for bit for such sums."""
    return (acc + layer.bias_q.float()) * layer.acc_scale


def _fbgemm_pack(w: torch.Tensor, scales: torch.Tensor,
                 bias: torch.Tensor | None) -> torch.ScriptObject:
    previous = torch.backends.quantized.engine
    with _quiet():
        q_w = torch._make_per_channel_quantized_tensor(
            w, scales.double(), torch.zeros(w.shape[0], dtype=torch.int64), 0)
        try:
            torch.backends.quantized.engine = "fbgemm"
            return torch.ops.quantized.linear_prepack(q_w, bias)
        finally:
            torch.backends.quantized.engine = previous


def _int_mm_kernel(layer: _Layer, split: bool) -> Kernel:
    qp, channels = layer.act_qparams, layer.weight_q.shape[0]
    w_t = (_split(layer.weight_q) if split else layer.weight_q).t()  # (K, C) view
    # int8 codes shifted to start at -128: an int8 GEMM without VNNI adds 128 to reach uint8
    offset = -128 - qp.qmin
    # the zero-point correction and the int32 bias, folded into one int32 vector
    correction = layer.bias_q - (int(qp.zero_point) + offset) * layer.weight_q.sum(
        dim=1, dtype=torch.int32)
    acc_scale = layer.acc_scale

    def run(x: torch.Tensor) -> torch.Tensor:
        acc = _fold(torch._int_mm(_codes(x, qp, offset, torch.int8), w_t), channels)
        return (acc + correction).float() * acc_scale  # the reference's arithmetic exactly

    return run


def _onednn_kernel(layer: _Layer, split: bool) -> Kernel:
    qp, channels = layer.act_qparams, layer.weight_q.shape[0]
    w = _split(layer.weight_q) if split else layer.weight_q
    packed = torch.ops.onednn.qlinear_prepack(w, None)
    ones, zeros = torch.ones(w.shape[0]), torch.zeros(w.shape[0], dtype=torch.int64)
    offset = -qp.qmin  # uint8 codes q - qmin in [0, qmax - qmin]
    zero_point = int(qp.zero_point) + offset

    def run(x: torch.Tensor) -> torch.Tensor:
        u = _codes(x, qp, offset, torch.uint8)
        # unit scales: oneDNN returns the int32 accumulator (q - z) q_w^T as float32
        acc = torch.ops.onednn.qlinear_pointwise.default(
            u, 1.0, zero_point, packed, ones, zeros, None, 1.0, 0, torch.float32, "none", [], "")
        return _rescale(_fold(acc, channels), layer)

    return run


def _fbgemm_kernel(layer: _Layer, split: bool) -> Kernel:
    qp, channels = layer.act_qparams, layer.weight_q.shape[0]
    z = int(qp.zero_point)
    linear = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32.default
    if split:
        # fed the codes q - z as floats with unit scales, fbgemm returns the two int32 halves
        # of the accumulator as exact floats; their sum is exact too (no cancellation error)
        w = _split(layer.weight_q)
        packed = _fbgemm_pack(w, torch.ones(w.shape[0]), None)

        def run_split(x: torch.Tensor) -> torch.Tensor:
            centred = _codes(x, qp, -z, torch.float32)  # q - z, as floats
            return _rescale(_fold(linear(centred, 1.0, z - qp.qmin, packed), channels), layer)

        return run_split

    # plain: fbgemm quantizes x itself, round(x * (1/s)) + z as quantize() does (the probe
    # checks it, ties included), and rescales in float: the reference's numbers to float
    # rounding (one ulp of the output), with the float bias b_q s_x s_w
    bias = (layer.bias_q.double() * layer.acc_scale.double()).float()
    packed = _fbgemm_pack(layer.weight_q, layer.weight_scale, bias)
    scale, zero_point = float(qp.scale), z - qp.qmin  # uint8 codes q - qmin
    # fbgemm clips its codes to [0, 255]; inputs outside a narrower range are clipped first,
    # in real values (x = (qmax - z) s comes back as code qmax exactly)
    full = qp.qmax - qp.qmin == 255
    low, high = (qp.qmin - z) * scale, (qp.qmax - z) * scale

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        if full:
            _check_finite(x)
        else:
            lo, hi = (float(v) for v in torch.aminmax(x))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                check_tensor(x, "x", finite=True)
            if lo < low or hi > high:
                x = x.clamp(low, high)
        return linear(x, scale, zero_point, packed)

    return run


_BUILDERS: dict[str, Callable[[_Layer, bool], Kernel]] = {
    "int_mm": _int_mm_kernel, "onednn": _onednn_kernel, "fbgemm": _fbgemm_kernel}


def build_int8_kernel(name: str, layer: _Layer) -> Kernel:
    """Kernel ``name`` (one of :data:`KERNELS`) for ``layer``'s buffers, in the form that is
    exact on this machine (split weights where the plain kernel saturates).

    The kernel maps float input rows (N, K) to the reference ``IntLinear``'s float32 output
    before any output requantization (N, C).

    Raises:
        ValueError: ``name`` is not a kernel.
        RuntimeError: the kernel is missing here or wrong even split, for these activations.
    """
    check_choice(name, "backend", KERNELS)
    qp = layer.act_qparams
    status = kernel_status(name, qp.qmin, qp.qmax)
    if not status.exact:
        raise RuntimeError(f"int8 backend {name!r} cannot run this layer here: {status.note}")
    return _BUILDERS[name](layer, status.split)


# ------------------------------------------------------------------ the exactness probe


@dataclass(frozen=True)
class KernelStatus:
    """Whether a kernel gives the reference's numbers on this machine, and in which form."""

    name: str
    exact: bool  # exact on the worst-case probe, in the form below
    split: bool  # exact only with split weights (the plain kernel saturates here)
    note: str = ""  # why it is not usable, or that it needs the split


def _probe(batch: int, qmin: int, qmax: int) -> tuple[SimpleNamespace, torch.Tensor,
                                                      torch.Tensor]:
    """A worst case for int16 saturation, with ties in the input rounding.

    Weights: rows of +127, of -128, alternating, and random codes. Activations: rows of the
    largest code and of the smallest, random codes, inputs exactly halfway between two codes,
    and clipped ones. Scales are powers of two, so every product and sum below 2^24 is exact
    in float32: the kernel's output must equal the exact integer result.

    Returns ``(layer, x, expected)``; shapes: x (batch, 128), expected (batch, 32) float64.
    """
    gen = torch.Generator().manual_seed(0)
    k, c = 128, 32
    w = torch.randint(-128, 128, (c, k), dtype=torch.int8, generator=gen)
    w[0], w[1], w[2, ::2], w[2, 1::2] = 127, -128, 127, -128
    s_x, s_w = 2.0**-5, torch.full((c,), 2.0**-7)
    z = qmin + 28 * (qmax - qmin + 1) // 256  # -100 for 8 bits: neither end of the range
    act = QParams(torch.tensor(s_x), torch.tensor(z, dtype=torch.int32), qmin, qmax)
    q = torch.randint(qmin, qmax + 1, (batch, k), generator=gen)
    q[0] = qmax
    if batch > 2:
        q[1] = qmin
    x = (q - z).double() * s_x
    ties = (torch.rand(batch, k, generator=gen) < 0.25) & (q < qmax)
    x = torch.where(ties, x + s_x / 2, x)  # halfway: round-half-to-even decides
    x[0, :4] = torch.tensor([1e3, -1e3, 0.0, (qmax - z + 0.5) * s_x])  # clipped, zero, edge
    x = x.float()
    bias_q = torch.randint(-2**15, 2**15, (c,), dtype=torch.int32, generator=gen)
    layer = SimpleNamespace(weight_q=w, weight_scale=s_w, bias_q=bias_q, act_qparams=act,
                            acc_scale=s_x * s_w)
    codes = quantize(x, act).double()
    expected = ((codes - z) @ w.double().t() + bias_q.double()) * (s_x * s_w.double())
    return layer, x, expected


def _exact(name: str, split: bool, qmin: int, qmax: int) -> bool:
    for batch in _TIMED_BATCHES:  # libraries take other code paths for a vector and a matrix
        layer, x, expected = _probe(batch, qmin, qmax)
        got = _BUILDERS[name](layer, split)(x)
        if got.shape != expected.shape or not torch.equal(got.double(), expected):
            return False
    return True


@functools.cache
def _status(name: str, qmin: int, qmax: int) -> KernelStatus:
    try:
        if _exact(name, False, qmin, qmax):
            return KernelStatus(name, exact=True, split=False)
        if _exact(name, True, qmin, qmax):
            return KernelStatus(name, exact=True, split=True,
                                note="saturates here (no VNNI): weights split in two halves")
        return KernelStatus(name, exact=False, split=False,
                            note="wrong numbers on the probe, even with split weights")
    except (RuntimeError, AttributeError, NotImplementedError) as err:  # missing op or engine
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return KernelStatus(name, exact=False, split=False, note=f"unavailable: {first_line}")


def kernel_status(name: str, qmin: int = -128, qmax: int = 127) -> KernelStatus:
    """Probe kernel ``name`` for activation codes in ``[qmin, qmax]`` (signed, at most 8
    bits), plain and then split; cached per process."""
    check_choice(name, "name", KERNELS)
    check_int(qmin, "qmin", -128, 126)
    check_int(qmax, "qmax", qmin + 1, 127)
    return _status(name, qmin, qmax)


# ------------------------------------------------------------ measurement and selection


@dataclass(frozen=True)
class BackendTiming:
    """One candidate: exact here or not, in which form, and its median ms per call of the
    timed layer by batch size (empty when it cannot run here)."""

    name: str
    exact: bool
    split: bool
    ms: dict[int, float]
    note: str = ""


@dataclass(frozen=True)
class Int8BackendReport:
    """What :func:`int8_backend_report` measured on this machine, and what ``"auto"`` runs.

    ``candidates`` holds every backend (``"reference"`` included) with its median time per
    call of a stack of ``IntLinear`` layers of ``widths`` (``(1024, 1024, 16)``: 1024 ->
    1024 -> 16) with ``act_bits``-bit activations, at batch 1 and 64; ``fp32_ms`` the same
    for ``nn.Linear`` layers; ``chosen`` maps those batch sizes to the fastest exact backend
    (:meth:`choice` applies it to any batch).
    """

    cpu_capability: str
    threads: int
    act_bits: int
    widths: tuple[int, ...]
    fp32_ms: dict[int, float]
    candidates: tuple[BackendTiming, ...]
    chosen: dict[int, str]

    def candidate(self, name: str) -> BackendTiming:
        check_choice(name, "name", [c.name for c in self.candidates])
        return next(c for c in self.candidates if c.name == name)

    def choice(self, batch: int) -> str:
        """The backend ``"auto"`` runs for a batch of ``batch`` rows."""
        check_int(batch, "batch", minimum=0)
        return self.chosen[1 if batch < SMALL_BATCH else 64]

    def speedup(self, name: str, batch: int = 64) -> float:
        """fp32 ``nn.Linear`` time / backend ``name``'s time at ``batch`` (1 or 64)."""
        check_choice(batch, "batch", list(_TIMED_BATCHES))
        timing = self.candidate(name)
        if batch not in timing.ms:
            raise ValueError(f"backend {name!r} was not timed here: {timing.note}")
        return self.fp32_ms[batch] / timing.ms[batch]

    def summary(self) -> str:
        """One sentence for a learner, every figure from the measurement."""
        big, small = self.chosen[64], self.chosen[1]
        how = (" with its weights split in two halves (without VNNI the plain int8 kernel "
               "saturates)" if self.candidate(big).split else "")
        return (f"On this CPU (capability {self.cpu_capability}, {self.threads} thread(s)) "
                f"the course's int8 layer ({self.act_bits}-bit activations) uses {big}{how}: "
                f"{self.speedup(big, 64):.2f}x vs fp32 at batch 64, and {small} at batch 1: "
                f"{self.speedup(small, 1):.2f}x, on Linear layers "
                f"{'->'.join(map(str, self.widths))}; the from-scratch reference runs at "
                f"{self.speedup('reference', 64):.2f}x at batch 64.")

    def table(self) -> str:
        """The measurement as a markdown table: one row per backend, ratios vs fp32."""
        nan = float("nan")
        rows = [["fp32 nn.Linear", True, False, self.fp32_ms[1], self.fp32_ms[64], 1.0, ""]]
        for c in self.candidates:
            rows.append([c.name, c.exact, c.split, c.ms.get(1, nan), c.ms.get(64, nan),
                         self.speedup(c.name, 64) if c.ms else nan, c.note])
        return markdown_table(["backend", "exact", "split", "ms batch 1", "ms batch 64",
                               "speedup batch 64", "note"], rows)


_REPORTS: dict[int, Int8BackendReport] = {}


def int8_backend_report(act_bits: int = 8, *, refresh: bool = False) -> Int8BackendReport:
    """Measure the int8 backends on this machine, once per process and ``act_bits``
    (``refresh=True`` measures again).

    Every kernel is first checked for exact numbers on a worst-case probe (and split where
    it saturates); then two ``IntLinear`` layers (1024 -> 1024 -> 16, ``act_bits``-bit
    activations) are timed with every exact backend, side by side with ``nn.Linear`` in
    fp32, at batch 1 and 64. It takes under a second, longer where ``torch._int_mm`` is a
    plain loop (AVX2-only CPUs: the reference path's speed there).
    """
    check_int(act_bits, "act_bits", 2, 8)
    if act_bits not in _REPORTS or refresh:
        _REPORTS[act_bits] = _measure(act_bits)
    return _REPORTS[act_bits]


def _interleaved_ms(fns: dict[str, Callable[[], object]], rounds: int = 7) -> dict[str, float]:
    """Median ms per call of each callable, sampled round-robin (as ``bench.compare`` does
    for two) so that a change in the machine's load affects every candidate alike."""
    calls = {}
    for name, fn in fns.items():  # warm up, then enough calls for a sample of >= 1 ms
        once = time_fn(fn, warmup=2, repeats=1, number=1).median_ms
        calls[name] = min(1000, max(1, math.ceil(1.0 / max(once, 1e-4))))
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name] += time_fn(fn, warmup=0, repeats=1, number=calls[name]).samples_ms
    return {name: statistics.median(values) for name, values in samples.items()}


def _measure(act_bits: int) -> Int8BackendReport:
    from .integer import IntLinear  # integer.py builds its kernels from this module

    gen = torch.Generator().manual_seed(0)
    widths = _TIMED_WIDTHS
    fp32 = torch.nn.Sequential(*(torch.nn.Linear(a, b)
                                 for a, b in zip(widths[:-1], widths[1:], strict=True)))
    qmin, qmax = quant_range(act_bits, signed=True)
    act = QParams(torch.tensor(8.0 / (qmax - qmin)), torch.tensor(0, dtype=torch.int32), qmin,
                  qmax)  # inputs within +-4
    statuses = [KernelStatus("reference", exact=True, split=False)]
    statuses += [kernel_status(n, qmin, qmax) for n in KERNELS]
    stacks = {s.name: torch.nn.Sequential(*(IntLinear.from_float(lin, act, backend=s.name)
                                            for lin in fp32))
              for s in statuses if s.exact}
    ms: dict[str, dict[int, float]] = {name: {} for name in ["fp32", *stacks]}
    with torch.no_grad():
        for batch in _TIMED_BATCHES:
            x = torch.randn(batch, widths[0], generator=gen)
            fns = {name: lambda x=x, m=m: m(x) for name, m in [("fp32", fp32), *stacks.items()]}
            for name, value in _interleaved_ms(fns).items():
                ms[name][batch] = value
    candidates = tuple(BackendTiming(s.name, s.exact, s.split, ms.get(s.name, {}), s.note)
                       for s in statuses)
    chosen = {b: min(stacks, key=lambda name: ms[name][b]) for b in _TIMED_BATCHES}
    return Int8BackendReport(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(),
                             act_bits, widths, ms["fp32"], candidates, chosen)


def check_int8_backend(backend: object) -> str:
    """Return ``backend`` if it names a backend (:data:`INT8_BACKENDS`) that runs here.

    Raises:
        TypeError: not a string.
        ValueError: an unknown name.
        RuntimeError: a kernel missing on this machine, or wrong here even split (8-bit
            activation probe).
    """
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, one of {list(INT8_BACKENDS)}, got "
                        f"{type(backend).__name__}")
    check_choice(backend, "backend", INT8_BACKENDS)
    if backend in KERNELS and not kernel_status(backend).exact:
        raise RuntimeError(f"int8 backend {backend!r} cannot be used on this machine: "
                           f"{kernel_status(backend).note}")
    return backend


def auto_int8_backend(batch: int, act_bits: int) -> str:
    """``"auto"``'s backend for ``batch`` rows of ``act_bits``-bit activations, without
    argument checks (``IntLinear.forward`` calls it on every batch)."""
    report = _REPORTS.get(act_bits) or int8_backend_report(act_bits)
    return report.chosen[1 if batch < SMALL_BATCH else 64]


def resolve_int8_backend(backend: str, batch: int = 64, act_bits: int = 8) -> str:
    """The backend that runs: ``backend`` itself, or for ``"auto"`` the measured winner for
    ``batch`` rows and ``act_bits``-bit activations (measuring on first use)."""
    check_int8_backend(backend)
    check_int(batch, "batch", minimum=0)
    check_int(act_bits, "act_bits", 2, 8)
    return auto_int8_backend(batch, act_bits) if backend == "auto" else backend
