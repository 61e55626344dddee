"""Explanations computed from measurements: what notebook 03 prints under its tables.

Whether int8 helps more at batch 1 or 64, whether the course's own int8 layer beats fp32,
whether fp16 or bf16 are faster, and where the quantization methods part ways all depend on
the machine (and the run). Each function here takes the numbers the notebook measured and
the CPU's feature flags (:func:`accel_lib.runtime.cpu_features`) and returns the sentences
that fit them, so the prose never contradicts what the learner's own cells print.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..precision.explain import SAME_SPEED, low_precision_story, speed_word
from ..runtime import INT8_DOT_FLAGS

__all__ = ["SAME_SPEED", "speed_word", "int8_batch_story", "own_int8_story",
           "low_precision_story", "bits_story"]  # speed_word, low_precision_story: moved to
# accel_lib.precision.explain, re-exported here for notebook 03


def _present(flags: Sequence[str], features: frozenset[str] | None) -> list[str] | None:
    return None if features is None else [f for f in flags if f in features]


def _int8_instructions(features: frozenset[str] | None) -> str:
    dots = _present(INT8_DOT_FLAGS, features)
    if dots is None:
        return ("whether this CPU has int8 dot-product instructions (x86 VNNI or AMX, Arm "
                "SDOT) is unknown here")
    if dots:
        return (f"this CPU has int8 dot-product instructions ({', '.join(dots)}): one "
                "instruction multiplies and adds four int8 pairs per 32-bit lane (AMX: a whole "
                "tile), four times the multiply-adds of an fp32 FMA")
    if "avx2" in features:
        return ("this CPU has no int8 dot-product instructions (no VNNI, no AMX): int8 kernels "
                "pair AVX2's vpmaddubsw and vpmaddwd, whose 16-bit intermediate sums can "
                "saturate (why torch.ao quantizes activations to 7 bits, reduce_range)")
    return "this CPU lists no int8 dot-product instructions"


def int8_batch_story(speedup: Mapping[int, float], bound: Mapping[int, str],
                     features: frozenset[str] | None) -> str:
    """Where PyTorch's int8 helped most, batch 1 or 64, and why, from the measured speedups
    (fp32 time / int8 time) and the roofline's verdict (``"memory"`` or ``"compute"``)."""
    s1, s64 = speedup[1], speedup[64]
    best = 1 if s1 > s64 else 64
    text = [f"PyTorch's dynamic int8 ran {s1:.2f}x the speed of fp32 at batch 1 and {s64:.2f}x "
            f"at batch 64: on this machine int8 helped most at batch {best}."]
    text.append(f"At batch 1 each layer is a matrix-vector product, {bound[1]}-bound on this "
                "machine's roofline: int8 moves a quarter of the weight bytes, worth up to 4x "
                "when bytes are the limit, but it adds work that does not shrink with the "
                "bytes (find the activation range, quantize x, rescale the output), a large "
                "share of so short a call.")
    text.append(f"At batch 64 every weight serves 64 rows ({bound[64]}-bound): the multiply-"
                f"adds decide, and {_int8_instructions(features)}.")
    for b, s in ((1, s1), (64, s64)):
        if s <= 1 / SAME_SPEED:
            text.append(f"int8 was slower than fp32 at batch {b}: its extra work cost more "
                        "than it saved.")
    text.append("Here the saved bytes gave more than the int8 arithmetic." if best == 1 else
                "Here the int8 arithmetic gave more than the saved bytes.")
    return " ".join(text)


def own_int8_story(own: Mapping[int, float], dynamic: Mapping[int, float], gemm_ratio: float,
                   features: frozenset[str] | None, auto: Mapping[int, float] | None = None,
                   backends: Mapping[int, str] | None = None) -> str:
    """Why the course's from-scratch ``IntLinear`` is as fast as it is: its speedups vs fp32
    (``own``), PyTorch's (``dynamic``), and its GEMM alone (``torch._int_mm`` / fp32 matmul,
    ``gemm_ratio``), at batch 1 and 64; then, if given, the speedups of the same layers with
    ``backend="auto"`` (``auto``) and the kernel it ran at each batch size (``backends``)."""
    text = [f"The course's from-scratch IntLinear ran {own[1]:.2f}x the speed of fp32 at "
            f"batch 1 and {own[64]:.2f}x at batch 64 (PyTorch's dynamic int8: {dynamic[1]:.2f}x "
            f"and {dynamic[64]:.2f}x)."]
    dots = _present(INT8_DOT_FLAGS, features)
    word = speed_word(gemm_ratio)
    gemm = (f"Its int8 GEMM alone (torch._int_mm) ran {gemm_ratio:.2f}x the speed of the fp32 "
            f"matmul, {word} fp32")
    if word == "faster than":
        gemm += (": PyTorch hands it to oneDNN's int8 kernel" +
                 (f", which uses {', '.join(dots)}." if dots else "."))
    elif word == "slower than":
        gemm += (": it is not accelerated on this CPU" +
                 (" (no VNNI or AMX: PyTorch runs a plain loop)." if dots == [] else "."))
    else:
        gemm += "."
    text.append(gemm)
    text.append("Around the GEMM it makes four more passes from Python (quantize x, zero-point "
                "correction, bias, rescale to float), each a separate op with its own tensor; "
                "PyTorch packs the weights once and does these steps inside one call.")
    relative = {b: own[b] / dynamic[b] for b in (1, 64)}
    for b, r in relative.items():
        text.append(f"At batch {b} ours was {speed_word(r)} PyTorch's ({r:.2f}x its speed).")
    if word == "slower than":
        text.append("Here the GEMM itself makes ours slow at every batch size: a fast int8 "
                    "layer needs a kernel this CPU accelerates.")
    elif min(relative.values()) <= 1 / SAME_SPEED:
        worst = min(relative, key=relative.get)
        text.append("Here the GEMM is not the problem: the gap to PyTorch (largest at batch "
                    f"{worst}) is the work around it.")
    else:
        text.append("Here ours kept up with PyTorch's packed kernels.")
    if auto is not None and backends is not None:
        text.append(f"With backend=\"auto\" the same integer layers run the fastest exact "
                    f"kernel measured here, {backends[1]} at batch 1 and {backends[64]} at "
                    f"batch 64: {auto[1]:.2f}x and {auto[64]:.2f}x the speed of fp32, "
                    f"{speed_word(auto[64])} fp32 at batch 64.")
    return " ".join(text)


def bits_story(accuracy: Mapping[str, Sequence[float]], bits: Sequence[int], fp32: float,
               test_size: int) -> str:
    """Where the quantization methods part ways, from their test accuracies (fractions) at
    each bit width (``bits``, highest first) on a test set of ``test_size`` examples."""
    one = 100 / test_size  # one test example, in points
    spread = [100 * (max(v[i] for v in accuracy.values()) - min(v[i] for v in accuracy.values()))
              for i in range(len(bits))]
    worst_hi = max(abs(v[0] - fp32) for v in accuracy.values()) * 100
    text = [f"At {bits[0]} bits every method is within {worst_hi:.1f} points of fp32 (one test "
            f"image is {one:.2f} points)."]
    apart = [b for b, s in zip(bits, spread, strict=True) if s > 3 * one]
    if apart:
        text.append(f"The methods first differ by more than 3 test images at {apart[0]} bits.")
    else:
        text.append("At no bit width do the methods differ by more than 3 test images.")
    low = min(bits)
    i = list(bits).index(low)
    order = sorted(accuracy, key=lambda k: accuracy[k][i], reverse=True)
    ranked = " > ".join(f"{k} ({100 * accuracy[k][i]:.1f}%)" for k in order)
    text.append(f"At {low} bits: {ranked}, a spread of {spread[i]:.1f} points "
                f"({spread[i] / one:.0f} test images).")
    return " ".join(text)
