"""Why a 16-bit matmul is fast or slow here: sentences computed from a measured ratio.

Moved from ``accel_lib.quantization.explain`` (which re-exports them) when the mixed
precision notebook got its own package.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..runtime import BF16_FLAGS, FP16_FLAGS

__all__ = ["SAME_SPEED", "UNTUNED", "speed_word", "low_precision_story"]

SAME_SPEED = 1.15  # ratios within [1/1.15, 1.15] read as "about as fast as"
UNTUNED = 0.2  # a 16-bit matmul at under a fifth of fp32's speed ran a generic kernel


def speed_word(ratio: float) -> str:
    """``"faster than"``, ``"slower than"`` or ``"about as fast as"`` for a speed ratio."""
    if ratio >= SAME_SPEED:
        return "faster than"
    if ratio <= 1 / SAME_SPEED:
        return "slower than"
    return "about as fast as"


def _present(flags: Sequence[str], features: frozenset[str] | None) -> list[str] | None:
    return None if features is None else [f for f in flags if f in features]


def low_precision_story(dtype: str, device: str, ratio: float,
                        features: frozenset[str] | None, gpu: str | None = None) -> str:
    """Why a ``dtype`` (``"float16"`` or ``"bfloat16"``) matmul ran ``ratio`` times the speed
    of fp32 on ``device`` (``"cpu"`` or ``"cuda"``; ``gpu`` names the GPU)."""
    word = speed_word(ratio)
    text = f"{dtype} matmul on the {device.upper()}: {ratio:.2f}x the speed of fp32, {word} fp32."
    if device != "cpu":
        if word == "faster than":
            return text + (f" {gpu or 'This GPU'} runs {dtype} matmuls on tensor cores "
                           "(fp16 since Volta, bf16 since Ampere), several times fp32's rate.")
        return text + (f" No gain on {gpu or 'this GPU'}: a 512^3 matmul is too small to keep "
                       f"it busy, or it has no {dtype} tensor cores.")
    flags = BF16_FLAGS if dtype == "bfloat16" else FP16_FLAGS
    have = _present(flags, features)
    if have is None:
        return text + (f" Whether this CPU has {dtype} arithmetic ({', '.join(flags)}) is "
                       "unknown here.")
    if have:
        if word == "faster than":
            return text + (f" This CPU has {dtype} arithmetic ({', '.join(have)}) and PyTorch's "
                           "matmul (oneDNN) uses it: twice the values per vector register"
                           + (", and AMX tiles." if any(f.startswith("amx") for f in have)
                              else "."))
        return text + (f" This CPU has {dtype} instructions ({', '.join(have)}), yet this matmul "
                       "did not gain: the instructions help only where the library has a "
                       f"kernel that uses them for {dtype}.")
    if word == "slower than":
        text += (f" This CPU has no {dtype} arithmetic (none of {', '.join(flags)}): every value "
                 "is converted to fp32 for the arithmetic")
        if ratio < UNTUNED:
            return text + (f", and a slowdown of {1 / ratio:.0f}x means PyTorch ran a generic, "
                           "untuned kernel for it, while fp32 runs a tuned BLAS kernel.")
        return text + ", and the conversions cost more than the halved bytes save."
    return text + (f" This CPU has no {dtype} arithmetic (none of {', '.join(flags)}): the math "
                   "runs in fp32 either way, and the values take half the bytes.")
