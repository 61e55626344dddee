"""Notebook 03 (quantization): wrong answers the visible tests must catch, and the claims its
printed explanations make about what it measured."""

from tests.notebook_checks import Mistake

_QPARAMS = '''
import math
def choose_qparams_affine(x_min, x_max, qmin, qmax):
    lo, hi = {range}
    scale = {scale}
    zero_point = {zero_point}
    return float(scale), int(min(max(zero_point, qmin), qmax))
'''
_RANGE = "min(float(x_min), 0.0), max(float(x_max), 0.0)"
_SCALE = "max((hi - lo) / (qmax - qmin), float(torch.finfo(torch.float32).eps))"


def _qparams(range_=_RANGE, scale=_SCALE, zero_point="qmin - round(lo / scale)"):
    return _QPARAMS.format(range=range_, scale=scale, zero_point=zero_point)


_FAKE_QUANT = '''
def fake_quant(x, scale, zero_point, qmin, qmax):
    s = torch.tensor(scale, dtype=torch.float32)
    {body}
'''
_STE = '''
def fake_quant_ste(x, scale, zero_point, qmin, qmax):
    s = torch.tensor(scale, dtype=torch.float32)
    codes = torch.round(x.float() * (1.0 / s)) + zero_point
    mask = ({mask}).float()
    x_hat = ({value} - zero_point) * s
    return {out}
'''


def _ste(mask="(codes >= qmin) & (codes <= qmax)", value="codes.clamp(qmin, qmax)",
         out="x * mask + (x_hat - x * mask).detach()"):
    return _STE.format(mask=mask, value=value, out=out)


_SCALES = '''
def per_channel_scales(w, bits):
    qmin, qmax = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    {body}
'''
_LAYER = '''
def quantized_linear(q_x, zero_point_x, q_w, bias_q, m0, shift, zero_point_y):
    acc = {acc}
    n = {n}
    q = {q}
    return {out}
'''


def _layer(acc="(q_x.long() - zero_point_x) @ q_w.long().t() + bias_q.long()",
           n="31 + shift.long()",
           q="((acc * m0.long() + (1 << (n - 1))) >> n) + zero_point_y",
           out="q.clamp(-128, 127).to(torch.int8)"):
    return _LAYER.format(acc=acc, n=n, q=q, out=out)


MISTAKES = [
    # Exercise 1: affine qparams
    Mistake("ex1_qparams", "zero point truncated with int()",
            _qparams(zero_point="qmin - int(lo / scale)"), r"int\(\) truncates"),
    Mistake("ex1_qparams", "zero point with floor",
            _qparams(zero_point="qmin - math.floor(lo / scale)"), r"floor gives 5"),
    Mistake("ex1_qparams", "symmetric scale (max |x|) where affine is asked",
            _qparams(scale="max(abs(lo), abs(hi)) / ((qmax - qmin) / 2)",
                     zero_point="(qmin + qmax + 1) // 2"), r"symmetric"),
    Mistake("ex1_qparams", "range not widened to include 0",
            _qparams(range_="float(x_min), float(x_max)"), r"widened"),
    Mistake("ex1_qparams", "zero point without qmin",
            _qparams(zero_point="-round(lo / scale)"), r"qmin"),
    Mistake("ex1_qparams", "no eps floor on the scale",
            _qparams(scale="(hi - lo) / (qmax - qmin)"), r"eps"),
    # Exercise 2: fake quantization
    Mistake("ex2_fake_quant", "codes not clamped", _FAKE_QUANT.format(
        body="return (torch.round(x.float() * (1.0 / s)) + zero_point - zero_point) * s"),
        r"clamp the codes"),
    Mistake("ex2_fake_quant", "floor instead of round", _FAKE_QUANT.format(
        body="q = torch.clamp(torch.floor(x.float() * (1.0 / s)) + zero_point, qmin, qmax)\n"
             "    return (q - zero_point) * s"), r"round, not floor"),
    Mistake("ex2_fake_quant", "round half up", _FAKE_QUANT.format(
        body="q = torch.clamp(torch.floor(x.float() * (1.0 / s) + 0.5) + zero_point, qmin, qmax)\n"
             "    return (q - zero_point) * s"), r"half to even"),
    Mistake("ex2_fake_quant", "zero point subtracted, then added", _FAKE_QUANT.format(
        body="q = torch.clamp(torch.round(x.float() * (1.0 / s)) - zero_point, qmin, qmax)\n"
             "    return (q + zero_point) * s"), r"add z"),
    Mistake("ex2_fake_quant", "x clamped instead of the codes", _FAKE_QUANT.format(
        body="q = torch.round(torch.clamp(x.float(), qmin, qmax) * (1.0 / s)) + zero_point\n"
             "    return (q - zero_point) * s"), r"clamp the codes"),
    # Exercise 3: per-channel scales
    Mistake("ex3_per_channel", "max over the wrong axis", _SCALES.format(
        body="return torch.clamp(w.abs().amax(dim=0) / ((qmax - qmin) / 2), "
             "min=torch.finfo(torch.float32).eps)"), r"dim 0"),
    Mistake("ex3_per_channel", "max without abs", _SCALES.format(
        body="return torch.clamp(w.amax(dim=1) / ((qmax - qmin) / 2), "
             "min=torch.finfo(torch.float32).eps)"), r"without abs"),
    Mistake("ex3_per_channel", "one max for the whole tensor", _SCALES.format(
        body="s = w.abs().max() / ((qmax - qmin) / 2)\n"
             "    return torch.clamp(s.expand(w.shape[0]).clone(), "
             "min=torch.finfo(torch.float32).eps)"), r"per-tensor"),
    Mistake("ex3_per_channel", "divided by qmax", _SCALES.format(
        body="return torch.clamp(w.abs().amax(dim=1) / qmax, min=torch.finfo(torch.float32).eps)"),
        r"127\.5"),
    Mistake("ex3_per_channel", "no eps floor", _SCALES.format(
        body="return w.abs().amax(dim=1) / ((qmax - qmin) / 2)"), r"eps"),
    # Exercise 4: the straight-through estimator
    Mistake("ex4_ste", "gradient passed everywhere, clipped values too",
            _ste(out="x + (x_hat - x).detach()"), r"passes 1 everywhere"),
    Mistake("ex4_ste", "value not clamped", _ste(value="codes"), r"clamp to the ends"),
    Mistake("ex4_ste", "mask on x instead of the rounded code",
            _ste(mask="(x >= (qmin - zero_point) * s) & (x <= (qmax - zero_point) * s)"),
            r"rounded code"),
    Mistake("ex4_ste", "strict inequalities in the mask",
            _ste(mask="(codes > qmin) & (codes < qmax)"), r"with <="),
    Mistake("ex4_ste", "mask without the zero point",
            _ste(mask="(codes - zero_point >= qmin) & (codes - zero_point <= qmax)"),
            r"zero point"),
    Mistake("ex4_ste", "no gradient path (the rounded value only)", _ste(out="x_hat"),
            r"inside the range"),
    # Exercise 5: an integer-only linear layer
    Mistake("ex5_quantized_linear", "int8 matmul (wraps around)",
            _layer(acc="((q_x - zero_point_x) @ q_w.t()).long() + bias_q.long()"), r"wraps around"),
    Mistake("ex5_quantized_linear", "no zero-point correction",
            _layer(acc="q_x.long() @ q_w.long().t() + bias_q.long()"), r"subtract z_x"),
    Mistake("ex5_quantized_linear", "bias added after requantizing",
            _layer(acc="(q_x.long() - zero_point_x) @ q_w.long().t()",
                   q="((acc * m0.long() + (1 << (n - 1))) >> n) + bias_q.long() + zero_point_y"),
            r"bias_q"),
    Mistake("ex5_quantized_linear", "output zero point left out",
            _layer(q="((acc * m0.long() + (1 << (n - 1))) >> n)"), r"zero_point_y"),
    Mistake("ex5_quantized_linear", "torch.round (ties to even) instead of rounding up",
            _layer(q="torch.round(acc.double() * m0.double() * torch.exp2(-n.double()))"
                     " + zero_point_y"),
            r"ties round up"),
    Mistake("ex5_quantized_linear", "q_x - z_x in int8 (overflows)",
            _layer(acc="(q_x - zero_point_x).long() @ q_w.long().t() + bias_q.long()"), r"255"),
    Mistake("ex5_quantized_linear", "cast to int8 without clamping",
            _layer(out="q.to(torch.int8)"), r"clamp to \[-128, 127\]"),
    Mistake("ex5_quantized_linear", "shift by shift instead of 31 + shift",
            _layer(n="shift.long()"), r"31 \+ shift"),
]

CLAIMS = '''
from accel_lib.quantization.explain import speed_word
from accel_lib.runtime import BF16_FLAGS, FP16_FLAGS, INT8_DOT_FLAGS

# section 2: "From 3-4 bits on, theory and measurement agree and each bit adds about 6 dB";
# "At 2 bits the measurement departs from Delta^2/12"
ratio = {r[0]: r[2] / r[3] for r in sqnr_rows}
assert all(abs(ratio[b] - 1) < 0.1 for b in ratio if b >= 3) and abs(ratio[2] - 1) > 0.1, ratio
db = {r[0]: r[4] for r in sqnr_rows}
assert all(5 < (db[b2] - db[b1]) / (b2 - b1) < 7 for b1, b2 in [(3, 4), (4, 6), (6, 8)]), db
# section 3: "the MSE search clips more at low bit widths"
ends = [observers["mse"].range(b)[1].item() for b in bit_list]
assert ends == sorted(ends) and ends[0] < observers["minmax"].range()[1].item(), ends
# section 4: per-channel scales lose less than one per tensor, on every layer
assert all(r[-1] > 1 for r in layer_rows), layer_rows
# section 5: k-means follows the data (the least error of the three grids)
for b in (3, 4):
    mses = {r[1]: r[2] for r in nonuniform_rows if r[0] == b}
    assert mses["k-means codebook"] == min(mses.values()), mses
# section 7: the sentence under the accuracy table, and the graded question's premise at 2 bits
i2 = sweep_bits.index(2)
order = sorted(acc, key=lambda k: acc[k][i2], reverse=True)
assert " > ".join(f"{k} ({100 * acc[k][i2]:.1f}%)" for k in order) in bits_text, bits_text
assert acc["PTQ per tensor"][i2] < acc["PTQ per channel"][i2] < acc["QAT per channel"][i2], acc
# section 8: every output within the bound; the integer-only model keeps its accuracy
assert bool((err <= bound).all())
assert abs(acc_int8_only - acc_fp32) <= 0.02, (acc_int8_only, acc_fp32)
# where int8 helped most, and why (the story under the latency table)
dyn = {bs: speedups[("dynamic int8", bs)] for bs in (1, 64)}
best = 1 if dyn[1] > dyn[64] else 64
assert f"int8 helped most at batch {best}." in int8_story, int8_story
assert ("saved bytes gave more" in int8_story) == (best == 1), int8_story
assert f"matrix-vector product, {fp32_bound[1]}-bound" in int8_story, int8_story
assert f"({fp32_bound[64]}-bound)" in int8_story, int8_story
dots = [f for f in INT8_DOT_FLAGS if features is not None and f in features]
said = f"int8 dot-product instructions ({', '.join(dots)})" in int8_story
assert said == bool(dots), int8_story
for bs in (1, 64):
    assert (f"int8 was slower than fp32 at batch {bs}" in int8_story) == (
        speed_word(dyn[bs]) == "slower than"), int8_story
# the course's own IntLinear
for bs in (1, 64):
    own = speedups[("own IntLinear", bs)]
    assert f"{own:.2f}x" in own_story, own_story
    assert f"At batch {bs} ours was {speed_word(own / dyn[bs])} PyTorch's" in own_story, own_story
gemm_word = speed_word(gemm_ratio)
assert f"ran {gemm_ratio:.2f}x the speed of the fp32 matmul, {gemm_word} fp32" in own_story
assert ("makes ours slow at every batch size" in own_story) == (gemm_word == "slower than")
# the course's int8 layer with backend="auto": the kernel the measurement chose, its speedups
auto = {bs: speedups[("IntLinear auto", bs)] for bs in (1, 64)}
assert all(auto_backend[bs] == int8_report.choice(bs) for bs in (1, 64)), auto_backend
assert (f"{auto_backend[1]} at batch 1 and {auto_backend[64]} at batch 64: {auto[1]:.2f}x and "
        f"{auto[64]:.2f}x the speed of fp32, {speed_word(auto[64])} fp32 at batch 64") in own_story
# fp16 / bf16: the measured ratio, and the CPU's flags
for row, story in zip(precision_rows, precision_stories, strict=True):
    assert story.startswith(f"{row[0]} matmul on the {row[1].upper()}: {row[5]:.2f}x the speed of "
                            f"fp32, {speed_word(row[5])} fp32."), story
    if row[1] == "cpu" and features is not None:
        flags = [f for f in (BF16_FLAGS if row[0] == "bfloat16" else FP16_FLAGS) if f in features]
        assert (f"This CPU has no {row[0]} arithmetic" in story) == (not flags), story
        assert all(f in story for f in flags), story
# fp16's error exceeds u only where subnormal values are present
assert fp16_max_rel <= Q.unit_roundoff(torch.float16) or n_subnormal > 0
'''
