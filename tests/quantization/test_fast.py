"""IntLinear's fast backends (accel_lib.quantization.fast): the same numbers as the reference
from-scratch path, selection by measurement, errors. No test asserts a timing."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch
from torch import nn

from accel_lib.quantization import (
    INT8_BACKENDS,
    IntLinear,
    QParams,
    QuantConfig,
    convert_to_int_,
    fast,
    int8_backend_report,
    ptq_,
    qparams_from_tensor,
    quantize,
)
from accel_lib.train import evaluate
from tests.reference import assert_raises_and_changes_nothing

AVAILABLE = [name for name in fast.KERNELS if fast.kernel_status(name).exact]


def _exact_output(layer: IntLinear, x: torch.Tensor) -> torch.Tensor:
    """The layer's float output computed independently, in float64 from the integer codes."""
    qp = layer.act_qparams
    codes = quantize(x, qp).double() - float(qp.zero_point)
    acc = codes @ layer.weight_q.double().t() + layer.bias_q.double()
    return acc * layer.acc_scale.double()


def _bit_identical(name: str, act: QParams) -> bool:
    """int_mm, oneDNN and split FBGEMM sum the reference's integers and rescale them as it
    does (bit-identical below 2^24); plain FBGEMM rescales in float (one ulp of the output)."""
    return name != "fbgemm" or fast.kernel_status(name, act.qmin, act.qmax).split


def _act_qparams(x: torch.Tensor, bits: int) -> QParams:
    return qparams_from_tensor(x, bits, signed=True)


def _random_case(seed: int, batch: int, bias: bool, bits: int):
    gen = torch.Generator().manual_seed(seed)
    k, c = (int(v) for v in torch.randint(1, 300, (2,), generator=gen))
    lin = nn.Linear(k, c, bias=bias)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(c, k, generator=gen) * torch.rand(c, 1, generator=gen))
    calib = torch.randn(64, k, generator=gen) * 2 + 0.5
    x = torch.randn(batch, k, generator=gen) * 2.5 + 0.5  # wider than calibration: clipping
    return lin, _act_qparams(calib, bits), x


# ------------------------------------------------------------------ the same numbers


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("bits", [8, 7])
@pytest.mark.parametrize("bias", [True, False])
def test_every_kernel_gives_the_reference_numbers(name, batch, bits, bias):
    """Many random shapes: the float output equals the reference's, bit for bit or (plain
    FBGEMM) to float rounding, well within one accumulator unit ``s_x s_w``; with
    ``out_qparams`` the codes are within one."""
    for seed in range(6):
        lin, act, x = _random_case(seed, batch, bias, bits)
        ref_layer = IntLinear.from_float(lin, act)
        fast_layer = IntLinear.from_float(lin, act, backend=name)
        with torch.no_grad():
            ref, got = ref_layer(x), fast_layer(x)
        exact = _exact_output(ref_layer, x)
        step = ref_layer.acc_scale.double()
        for expected in (ref.double(), exact):
            err = (got.double() - expected).abs()
            assert (err <= step + 2.0**-22 * expected.abs()).all(), \
                f"{name}, seed {seed}: {err.max():.3g} off (one step is {step.max():.3g})"
        if _bit_identical(name, act):
            assert torch.equal(got, ref)
            assert torch.equal(got, exact.float())
        out = qparams_from_tensor(ref, 8, signed=True)
        ref8 = IntLinear.from_float(lin, act, out_qparams=out)(x)
        got8 = IntLinear.from_float(lin, act, out_qparams=out, backend=name)(x)
        assert ((got8 - ref8).abs() <= out.scale * 1.001).all(), "more than one output code"
        assert (got8 != ref8).float().mean() < 0.01


@pytest.mark.parametrize("name", AVAILABLE)
@pytest.mark.parametrize("bits", [8, 7])
def test_worst_case_for_int16_saturation_is_exact(name, bits):
    """Weights at +127 / -128 and inputs at the largest code: the pair sums that overflow an
    int16 without VNNI (255 * 127 * 2 = 64770). Each kernel must still be exact here."""
    k, c = 256, 4
    lin = nn.Linear(k, c)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0]).reshape(c, 1).expand(c, k))
        lin.weight[2, ::2] = -1.0
    act = QParams(torch.tensor(1 / 64), torch.tensor(-100, dtype=torch.int32),
                  *fast.quant_range(bits, signed=True))
    x = torch.full((64, k), 10.0)  # clipped to the largest code
    x[1::2] = -10.0  # the smallest code
    x[2, ::3] = 0.0
    layer = IntLinear.from_float(lin, act, backend=name)
    assert layer.weight_q.abs().max() >= 127
    with torch.no_grad():
        got = layer(x).double()
    exact = _exact_output(layer, x)
    if _bit_identical(name, act):
        assert torch.equal(got.float(), exact.float())
    assert torch.allclose(got, exact, rtol=2.0**-22, atol=0), (got - exact).abs().max()


@pytest.mark.parametrize("name", AVAILABLE)
def test_digits_mlp_keeps_its_accuracy_and_outputs(name, trained_mlp, digits):
    model, _ = trained_mlp
    fake = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=4)
    reference = convert_to_int_(copy.deepcopy(fake))
    quick = convert_to_int_(copy.deepcopy(fake), backend=name)
    assert all(m.backend == name for m in quick.modules() if isinstance(m, IntLinear))
    assert evaluate(quick, digits.test) == evaluate(reference, digits.test)
    x = next(iter(digits.test))[0]
    with torch.no_grad():
        ref, got = reference(x), quick(x)
    assert (ref.argmax(1) == got.argmax(1)).all()
    # a float rounding can move one code of the next layer at an exact tie: one step at most
    assert (got - ref).abs().max() <= 0.01 * ref.abs().max()


def test_seven_bit_activations_convert_and_stay_close(trained_mlp, digits):
    model, _ = trained_mlp
    fake7 = ptq_(copy.deepcopy(model), digits.train, QuantConfig(act_bits=7), max_batches=4)
    real7 = convert_to_int_(copy.deepcopy(fake7), backend="auto")
    layers = [m for m in real7.modules() if isinstance(m, IntLinear)]
    assert {(m.act_qparams.qmin, m.act_qparams.qmax) for m in layers} == {(-64, 63)}
    assert abs(evaluate(real7, digits.test) - evaluate(fake7, digits.test)) <= 0.01
    with pytest.raises(ValueError, match="at most 8 bits"):
        IntLinear.from_float(nn.Linear(4, 2), QParams(torch.tensor(0.1), torch.tensor(0),
                                                      -256, 255))


def test_fast_path_edge_inputs():
    lin = nn.Linear(6, 3)
    act = _act_qparams(torch.randn(16, 6), 8)
    for name in AVAILABLE:
        layer = IntLinear.from_float(lin, act, backend=name)
        ref = IntLinear.from_float(lin, act)
        x = torch.randn(2, 5, 6, dtype=torch.float64)  # leading dims, float64, grad
        x.requires_grad_(True)
        assert layer(x).shape == (2, 5, 3)
        torch.testing.assert_close(layer(x), ref(x), rtol=1e-6, atol=1e-6)
        assert layer(torch.randn(0, 6)).shape == (0, 3)  # empty: the reference path
        with pytest.raises(ValueError, match="finite"):
            layer(torch.tensor([[float("nan")] * 6]))
        with pytest.raises(ValueError, match="finite"):
            layer(torch.tensor([[1.0, float("-inf"), 0, 0, 0, 0]]))
        huge = torch.full((2, 6), 3e38)  # finite, but the sum overflows: clipped, not refused
        torch.testing.assert_close(layer(huge), ref(huge), rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------ selection


def test_report_picks_the_fastest_exact_backend_and_auto_follows_it():
    report = int8_backend_report()
    assert report is int8_backend_report()  # measured once per process
    assert report.cpu_capability == torch.backends.cpu.get_cpu_capability()
    names = [c.name for c in report.candidates]
    assert names == ["reference", *fast.KERNELS]
    for batch, chosen in report.chosen.items():
        timed = [c for c in report.candidates if c.ms]
        assert all(c.exact for c in timed) and report.candidate(chosen) in timed
        assert report.candidate(chosen).ms[batch] == min(c.ms[batch] for c in timed)
        assert report.speedup(chosen, batch) == report.fp32_ms[batch] / min(
            c.ms[batch] for c in timed)
    assert report.choice(1) == report.chosen[1] and report.choice(500) == report.chosen[64]
    assert fast.resolve_int8_backend("auto", 64) == report.chosen[64]
    assert fast.resolve_int8_backend("fbgemm" if "fbgemm" in AVAILABLE else "reference") in \
        INT8_BACKENDS
    summary = report.summary()
    assert report.cpu_capability in summary and report.chosen[64] in summary
    assert f"{report.speedup(report.chosen[64], 64):.2f}x" in summary
    assert report.table().count("\n") == len(report.candidates) + 2
    with pytest.raises(ValueError, match="batch"):
        report.speedup("reference", 32)
    assert int8_backend_report(7).act_bits == 7


def _saturating_builder(name: str):
    """A kernel that, unsplit, adds neighbouring uint8 x int8 products into an int16 with
    saturation, as vpmaddubsw does on a CPU without VNNI (pairs (2i, 2i+1) along K)."""
    def build(layer, split):
        w = fast._split(layer.weight_q) if split else layer.weight_q
        qp, channels = layer.act_qparams, layer.weight_q.shape[0]
        bias = layer.bias_q.double() * layer.acc_scale.double()

        def run(x):
            u = fast._codes(x, qp, -qp.qmin, torch.uint8).long()  # uint8 codes q - qmin
            k = u.shape[1] + u.shape[1] % 2
            u = nn.functional.pad(u, (0, k - u.shape[1]))
            ww = nn.functional.pad(w.long(), (0, k - w.shape[1]))
            pairs = (u.reshape(u.shape[0], 1, -1, 2) * ww.reshape(1, ww.shape[0], -1, 2)).sum(-1)
            acc = pairs.clamp(-2**15, 2**15 - 1).sum(-1)  # (N, C or 2C)
            acc = fast._fold(acc, channels) - (int(qp.zero_point) - qp.qmin) * \
                layer.weight_q.long().sum(1)
            return (acc.double() * layer.acc_scale.double() + bias).float()
        return run
    return build


@pytest.fixture
def fresh_probe(monkeypatch):
    """Isolate the per-process caches from the test's fake kernels (timed on a small layer:
    the fakes are slow)."""
    fast._status.cache_clear()
    monkeypatch.setattr(fast, "_REPORTS", {})
    monkeypatch.setattr(fast, "_TIMED_WIDTHS", (64, 16, 8))
    yield
    fast._status.cache_clear()


def test_a_saturating_kernel_is_detected_and_used_split(monkeypatch, fresh_probe):
    monkeypatch.setitem(fast._BUILDERS, "fbgemm", _saturating_builder("fbgemm"))
    status = fast.kernel_status("fbgemm")
    assert status.exact and status.split and "saturates" in status.note
    seven = fast.kernel_status("fbgemm", -64, 63)  # 7-bit codes never saturate
    assert seven.exact and not seven.split
    lin = nn.Linear(64, 8)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    act = QParams(torch.tensor(0.01), torch.tensor(-128, dtype=torch.int32), -128, 127)
    x = torch.full((3, 64), 5.0)  # code 127: uint8 255, where the plain kernel saturates
    layer = IntLinear.from_float(lin, act, backend="fbgemm")
    torch.testing.assert_close(layer(x).double(), _exact_output(layer, x), rtol=1e-6, atol=0)
    plain = _saturating_builder("fbgemm")(layer, False)(x).double()
    assert (plain - _exact_output(layer, x)).abs().max() > 1.0  # what the split avoids
    report = int8_backend_report()
    assert report.candidate("fbgemm").split and "split" in report.table()


def test_a_kernel_wrong_even_split_is_never_used(monkeypatch, fresh_probe):
    def wrong(layer, split):
        return lambda x: torch.zeros(x.shape[0], layer.weight_q.shape[0])

    def missing(layer, split):
        raise RuntimeError("Your CPU does not support FBGEMM.\nmore detail")

    monkeypatch.setitem(fast._BUILDERS, "onednn", wrong)
    monkeypatch.setitem(fast._BUILDERS, "fbgemm", missing)
    assert not fast.kernel_status("onednn").exact
    assert fast.kernel_status("fbgemm").note == "unavailable: Your CPU does not support FBGEMM."
    lin, act = nn.Linear(4, 2), _act_qparams(torch.randn(8, 4), 8)
    for name in ("onednn", "fbgemm"):
        with pytest.raises(RuntimeError, match=f"'{name}' cannot be used on this machine"):
            IntLinear.from_float(lin, act, backend=name)
    report = int8_backend_report()
    assert not report.candidate("onednn").ms and set(report.chosen.values()) <= {
        "reference", "int_mm"}
    with pytest.raises(ValueError, match="not timed"):
        report.speedup("fbgemm")


# ------------------------------------------------------------------ errors and state


def test_unknown_backend_is_refused_and_changes_nothing(trained_mlp, digits):
    lin, act = nn.Linear(4, 2), _act_qparams(torch.randn(8, 4), 8)
    with pytest.raises(ValueError, match=r"backend must be one of \['reference', 'int_mm'"):
        IntLinear.from_float(lin, act, backend="fast")
    with pytest.raises(TypeError, match="backend must be a str"):
        IntLinear.from_float(lin, act, backend=None)
    layer = IntLinear.from_float(lin, act, backend="auto")
    with pytest.raises(ValueError, match="backend must be one of"):
        layer.set_backend("AUTO")
    assert layer.backend == "auto"
    assert layer.set_backend("reference") is layer and layer.backend == "reference"
    with pytest.raises(ValueError, match="name must be one of"):
        fast.kernel_status("reference")
    model, _ = trained_mlp
    fake = ptq_(copy.deepcopy(model), digits.train, max_batches=2)
    assert_raises_and_changes_nothing(lambda m: convert_to_int_(m, backend="gpu"), fake,
                                      ValueError, "backend must be one of")


@pytest.mark.parametrize("name", AVAILABLE)
def test_packed_weights_follow_the_buffers_and_never_pickle(name):
    lin_a, lin_b = nn.Linear(16, 4), nn.Linear(16, 4)
    act = _act_qparams(torch.randn(32, 16), 8)
    a = IntLinear.from_float(lin_a, act, backend=name)
    b = IntLinear.from_float(lin_b, act)
    x = torch.randn(5, 16)
    a(x)  # packs lin_a's weights
    a.load_state_dict(b.state_dict())  # new weights, in place: the packed copy is stale
    torch.testing.assert_close(a(x), b(x), rtol=1e-6, atol=1e-6)
    for clone in (copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert clone._kernels == {}  # rebuilt on first use
        torch.testing.assert_close(clone(x), b(x), rtol=1e-6, atol=1e-6)
    buf = io.BytesIO()
    torch.save(a, buf)
    assert set(a.state_dict()) == set(b.state_dict())  # no packed tensors in the state
