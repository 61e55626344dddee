"""The explanations notebook 03 prints follow the numbers and flags they are given, on every
branch (an AVX2-only CPU, AVX-512 with AMX, Arm, an unknown CPU, a GPU)."""

from __future__ import annotations

import pytest

from accel_lib.quantization.explain import (
    bits_story,
    int8_batch_story,
    low_precision_story,
    own_int8_story,
    speed_word,
)

AVX2 = frozenset({"avx", "avx2", "fma", "f16c"})
AMX = frozenset({"avx2", "avx512f", "avx512_vnni", "amx_int8", "amx_bf16", "avx512_bf16",
                 "avx512_fp16", "amx_tile"})
ARM = frozenset({"asimd", "asimddp", "bf16", "asimdhp"})


def test_speed_word():
    assert speed_word(1.47) == "faster than" and speed_word(0.04) == "slower than"
    assert speed_word(0.98) == speed_word(1.1) == "about as fast as"


@pytest.mark.parametrize("speedup, best", [({1: 1.47, 64: 3.36}, 64), ({1: 3.0, 64: 1.2}, 1)])
@pytest.mark.parametrize("features, says", [(AVX2, "no int8 dot-product"), (AMX, "amx_int8"),
                                            (ARM, "asimddp"), (None, "unknown")])
def test_int8_batch_story_names_the_batch_that_gained_most_and_the_instructions(
        speedup, best, features, says):
    text = int8_batch_story(speedup, {1: "memory", 64: "compute"}, features)
    assert f"int8 helped most at batch {best}." in text
    assert f"helped most at batch {65 - best}" not in text
    assert says in text and "memory-bound" in text and "(compute-bound)" in text
    assert ("saved bytes gave more" in text) == (best == 1)
    assert "slower than fp32" not in text


def test_int8_batch_story_says_when_int8_lost():
    text = int8_batch_story({1: 0.5, 64: 2.0}, {1: "memory", 64: "compute"}, AVX2)
    assert "int8 was slower than fp32 at batch 1" in text
    assert "int8 was slower than fp32 at batch 64" not in text


@pytest.mark.parametrize("own, gemm, features, slow_gemm", [
    ({1: 0.02, 64: 0.04}, 0.03, AVX2, True),   # the AVX2 machine: plain-loop _int_mm
    ({1: 0.63, 64: 3.31}, 4.0, AMX, False),    # AMX: fast GEMM, overhead at batch 1
    ({1: 0.5, 64: 1.0}, 1.0, None, False),
])
def test_own_int8_story_blames_the_gemm_only_when_it_is_slow(own, gemm, features, slow_gemm):
    text = own_int8_story(own, {1: 1.5, 64: 3.4}, gemm, features)
    assert f"{own[64]:.2f}x at batch 64" in text
    assert ("makes ours slow at every batch size" in text) == slow_gemm
    assert ("plain loop" in text) == (slow_gemm and features is AVX2)
    assert ("uses amx_int8" in text) == (features is AMX)
    assert "At batch 1 ours was slower than PyTorch's" in text
    assert ("largest at batch 64" in text) == (own[64] / 3.4 < own[1] / 1.5 and not slow_gemm)


def test_own_int8_story_when_ours_keeps_up():
    text = own_int8_story({1: 1.5, 64: 3.4}, {1: 1.5, 64: 3.4}, 4.0, AMX)
    assert "kept up" in text and "At batch 64 ours was about as fast as PyTorch's" in text


@pytest.mark.parametrize("dtype, ratio, features, says", [
    ("bfloat16", 1 / 60, AVX2, "no bfloat16 arithmetic"),
    ("float16", 1 / 60, AVX2, "a slowdown of 60x means PyTorch ran a generic, untuned kernel"),
    ("bfloat16", 0.6, AVX2, "the conversions cost more"),
    ("bfloat16", 14.6, AMX, "AMX tiles"),
    ("float16", 0.98, AMX, "yet this matmul did not gain"),
    ("bfloat16", 2.0, ARM, "uses it"),
    ("float16", 1.0, AVX2, "half the bytes"),
    ("float16", 0.5, None, "unknown"),
])
def test_low_precision_story_on_the_cpu(dtype, ratio, features, says):
    text = low_precision_story(dtype, "cpu", ratio, features)
    assert says in text and f"{speed_word(ratio)} fp32." in text


def test_low_precision_story_on_a_gpu():
    assert "tensor cores" in low_precision_story("float16", "cuda", 3.0, AVX2, "H200")
    assert "No gain on H200" in low_precision_story("bfloat16", "cuda", 0.9, None, "H200")


def test_bits_story_reads_the_table():
    acc = {"PTQ per tensor": [0.963, 0.967, 0.933, 0.870],
           "PTQ per channel": [0.963, 0.967, 0.952, 0.926],
           "QAT per channel": [0.963, 0.970, 0.970, 0.948]}
    text = bits_story(acc, [8, 4, 3, 2], 0.963, 270)
    assert "At 8 bits every method is within 0.0 points" in text
    assert "first differ by more than 3 test images at 3 bits" in text
    assert ("At 2 bits: QAT per channel (94.8%) > PTQ per channel (92.6%) > "
            "PTQ per tensor (87.0%), a spread of 7.8 points (21 test images)") in text
    flat = {k: [0.96] * 4 for k in acc}
    assert "At no bit width" in bits_story(flat, [8, 4, 3, 2], 0.96, 270)


def test_own_int8_story_names_the_auto_backend():
    text = own_int8_story({1: 0.02, 64: 0.04}, {1: 1.5, 64: 3.4}, 0.03, AVX2,
                          auto={1: 1.4, 64: 2.1}, backends={1: "fbgemm", 64: "onednn"})
    assert 'fbgemm at batch 1 and onednn at batch 64: 1.40x and 2.10x' in text
    assert text.endswith("faster than fp32 at batch 64.")
    assert "auto" not in own_int8_story({1: 0.5, 64: 1.0}, {1: 1.5, 64: 3.4}, 1.0, None)
