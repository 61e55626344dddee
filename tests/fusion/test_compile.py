"""torch.compile helpers: results match eager, bad input is refused, a missing compiler is
reported. No timing is asserted."""

from __future__ import annotations

import math

import pytest
import torch

from accel_lib.fusion import (
    COMPILE_MODES,
    RESULT_HEADER,
    chain_cost,
    compile_and_compare,
    compiler_available,
    elementwise_chain,
    generated_code,
    kernel_sources,
)
from accel_lib.fusion import compile as compile_module

needs_compiler = pytest.mark.skipif(not compiler_available("cpu")[0],
                                    reason="torch.compile cannot build code here")


def test_elementwise_chain_and_its_cost():
    x = torch.tensor([-1.0, 0.0, 2.0])
    expected = x
    for _ in range(3):
        expected = torch.relu(expected * 1.01 - 0.01)
    torch.testing.assert_close(elementwise_chain(3)(x), expected)
    assert chain_cost(1000, 4) == (12_000, 12 * 8 * 1000, 8000)


@needs_compiler
@pytest.mark.parametrize("mode", COMPILE_MODES)
def test_compile_and_compare_matches_eager(mode):
    result = compile_and_compare(elementwise_chain(4), torch.randn(4096), mode=mode,
                                 repeats=3, warmup=1)
    assert result.max_abs_diff < 1e-5
    assert result.compile_s > 0 and result.speedup > 0
    assert result.backend == f"inductor ({mode})" and result.name == "elementwise_chain_4"
    assert len(result.row()) == len(RESULT_HEADER)
    assert result.kernels == 1 and result.kernels_built in (0, 1)  # one fused loop
    calls = result.breakeven_calls
    assert calls > 0 and (math.isinf(calls) or calls == pytest.approx(
        result.compile_s * 1e3 / (result.baseline_ms - result.compiled_ms)))


@needs_compiler
def test_generated_code_shows_one_fused_kernel():
    code = generated_code(elementwise_chain(2), torch.randn(1000))
    kernels = kernel_sources(code)
    assert len(kernels) == 1  # six elementwise ops, one loop
    assert "for(" in kernels[0].replace(" ", "") or "tl.load" in kernels[0]


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="mode must be one of"):
        compile_and_compare(elementwise_chain(1), torch.ones(2), mode="fast")
    with pytest.raises(TypeError, match="fn must be callable"):
        compile_and_compare(3, torch.ones(2))
    with pytest.raises(ValueError, match="length must be a positive int"):
        elementwise_chain(0)
    with pytest.raises(TypeError, match="code must be a str"):
        kernel_sources(None)


def test_a_missing_cpp_compiler_is_reported(monkeypatch):
    import torch._inductor.cpp_builder as cpp_builder

    def no_compiler() -> str:
        raise RuntimeError("no g++")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", no_compiler)
    compile_module._probe.cache_clear()
    try:
        ok, why = compiler_available("cpu")
        assert not ok and "C++ compiler" in why and "apt-get install g++" in why
        with pytest.raises(RuntimeError, match="C\\+\\+ compiler"):
            compile_and_compare(elementwise_chain(1), torch.ones(2))
    finally:
        compile_module._probe.cache_clear()
