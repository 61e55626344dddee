"""Notebook 07 (mixed precision): wrong answers the visible tests must name, and the prose
printed from measurements."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_DECODE = '''
def decode_bf16(bits):
    sign = -1.0 if bits >> 15 else 1.0
    exponent = (bits >> 7) & 0xFF
    mantissa = bits & 0x7F
    if exponent == 0xFF:
        return sign * math.inf if mantissa == 0 else math.nan
    if exponent == 0:
        return sign * {sub}
    return sign * {normal}
'''
_DECODE_RIGHT = dict(sub="math.ldexp(mantissa, 1 - 127 - 7)",
                     normal="math.ldexp(128 + mantissa, exponent - 127 - 7)")


def _decode(**changes: str) -> str:
    return _DECODE.format(**{**_DECODE_RIGHT, **changes})


_LIMITS = '''
def format_limits(exponent_bits, mantissa_bits, has_inf=True):
    bias = 2 ** (exponent_bits - 1) - 1
    top = 2 ** exponent_bits - 1
    if {has_inf}:
        max_exponent, max_mantissa = top - 1, 2 ** mantissa_bits - 1
    else:
        max_exponent, max_mantissa = top, {fn_mantissa}
    return {{
        "max": (1 + max_mantissa / 2 ** mantissa_bits) * 2.0 ** (max_exponent - bias),
        "tiny": 2.0 ** ({tiny}),
        "smallest_subnormal": 2.0 ** (1 - bias - mantissa_bits),
        "unit_roundoff": 2.0 ** {u},
    }}
'''
_LIMITS_RIGHT = dict(has_inf="has_inf", fn_mantissa="2 ** mantissa_bits - 2", tiny="1 - bias",
                     u="-(mantissa_bits + 1)")


def _limits(**changes: str) -> str:
    return _LIMITS.format(**{**_LIMITS_RIGHT, **changes})


_ROUND = '''
def round_to_bf16(x):
    u = x.contiguous().view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    u = ({add}) & 0xFFFF0000
    u = torch.where(u >= 2**31, u - 2**32, u)
    return u.to(torch.int32).view(torch.float32)
'''

_SCALER = '''
def scaler_update(scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5,
                  growth_interval=2000):
    if found_inf:
        return {on_inf}
    growth_tracker += 1
    if growth_tracker {compare} growth_interval:
        return scale * growth_factor, {after_growth}, True
    return scale, growth_tracker, True
'''
_SCALER_RIGHT = dict(on_inf="scale * backoff_factor, 0, False", compare="==", after_growth="0")


def _scaler(**changes: str) -> str:
    return _SCALER.format(**{**_SCALER_RIGHT, **changes})


_MASTER = '''
def master_weight_step(model, master, lr, scale):
    params = list(model.parameters())
    grads = [{grad} for p in params]
    if {check} and not all(bool(torch.isfinite(g).all()) for g in grads):
        return False
    with torch.no_grad():
        for p, m, g in zip(params, master, grads):
            {update}
    return True
'''
_MASTER_RIGHT = dict(grad="p.grad.float() / scale", check="True",
                     update="m -= lr * g\n            p.copy_(m)")


def _master(**changes: str) -> str:
    return _MASTER.format(**{**_MASTER_RIGHT, **changes})


MISTAKES = [
    # Exercise 1: decode a bf16 pattern
    Mistake("ex1_decode", "bias 126",
            _decode(normal="math.ldexp(128 + mantissa, exponent - 126 - 7)"),
            r"bias off by one.*126"),
    Mistake("ex1_decode", "bias 128",
            _decode(normal="math.ldexp(128 + mantissa, exponent - 128 - 7)"),
            r"bias off by one.*128"),
    Mistake("ex1_decode", "forgot the implicit 1",
            _decode(normal="math.ldexp(mantissa, exponent - 127 - 7)"),
            r"implicit leading 1"),
    Mistake("ex1_decode", "subnormal exponent -bias", _decode(sub="math.ldexp(mantissa, -127 - 7)"),
            r"1 - bias"),
    Mistake("ex1_decode", "subnormal with an implicit 1",
            _decode(sub="math.ldexp(128 + mantissa, 1 - 127 - 7)"),
            r"no implicit 1"),
    Mistake("ex1_decode", "inf and NaN ignored", '''
def decode_bf16(bits):
    sign = -1.0 if bits >> 15 else 1.0
    exponent = (bits >> 7) & 0xFF
    mantissa = bits & 0x7F
    if exponent == 0:
        return sign * math.ldexp(mantissa, 1 - 127 - 7)
    return sign * math.ldexp(128 + mantissa, exponent - 127 - 7)
''', r"all-ones exponent is inf"),
    # Exercise 2: format limits
    Mistake("ex2_limits", "unit roundoff = eps", _limits(u="-mantissa_bits"), r"half the gap"),
    Mistake("ex2_limits", "tiny = 2^-bias", _limits(tiny="-bias"), r"2\^\(1 - bias\)"),
    Mistake("ex2_limits", "all-ones exponent used",
            _limits(has_inf="False", fn_mantissa="2 ** mantissa_bits - 1"),
            r"reserved for inf/NaN"),
    Mistake("ex2_limits", "e4m3fn treated as IEEE", _limits(has_inf="True"), r"got 240"),
    Mistake("ex2_limits", "e4m3fn NaN mantissa counted",
            _limits(fn_mantissa="2 ** mantissa_bits - 1"),
            r"mantissa 111 is NaN"),
    # Exercise 3: round to bf16
    Mistake("ex3_round", "truncation", _ROUND.format(add="u"), r"truncation"),
    Mistake("ex3_round", "ties away from zero",
            _ROUND.format(add="u + 0x8000"), r"ties away from zero"),
    Mistake("ex3_round", "ties always down",
            _ROUND.format(add="u + 0x7FFF"), r"always rounded down"),
    Mistake("ex3_round", "returns the bf16 tensor", '''
def round_to_bf16(x):
    return x.to(torch.bfloat16)
''', r"dtype of the result"),
    # Exercise 4: one loss-scaler update
    Mistake("ex4_scaler", "tracker not reset on skip",
            _scaler(on_inf="scale * backoff_factor, growth_tracker, False"),
            r"reset to 0.*in a row"),
    Mistake("ex4_scaler", "scale halved but step taken",
            _scaler(on_inf="scale * backoff_factor, 0, True"),
            r"must be skipped"),
    Mistake("ex4_scaler", "grows one step late", _scaler(compare=">"), r"off by one"),
    Mistake("ex4_scaler", "tracker not reset after growth", _scaler(after_growth="growth_tracker"),
            r"after growing, reset"),
    # Exercise 5: master weights
    Mistake("ex5_master", "update applied to the fp16 copy", _master(
        update="p -= (lr * g).to(p.dtype)"), r"update master"),
    Mistake("ex5_master", "forgot to unscale",
            _master(grad="p.grad.float()"), r"divide p\.grad by scale"),
    Mistake("ex5_master", "unscaled in fp16",
            _master(grad="(p.grad / scale).float()"), r"unscale in fp32"),
    Mistake("ex5_master", "inf not skipped", _master(check="False"), r"step is skipped"),
    Mistake("ex5_master", "model not refreshed from master", _master(update="m -= lr * g"),
            r"copy master into the model"),
]

# Every sentence the notebook printed from a measurement, checked against the numbers.
CLAIMS = r'''
assert set(speed_stories) == set(ratios)
for k, r in ratios.items():
    assert abs(r - peaks[k] / peaks["float32"]) < 1e-12
    assert speed_stories[k] == PR.explain_dtype_speed(k, r, hw), k
    said = f"{r:.2f}x the speed of fp32, {PR.speed_word(r)} fp32"
    assert said in speed_stories[k], speed_stories[k]
    assert hw.cpu_capability in speed_stories[k]
assert layout_word == PR.speed_word(layout.speedup)
fp32_acc, bf16_acc = amp_results["float32"].accuracy, amp_results["bfloat16"].accuracy
assert abs(amp_drop_pts - 100 * (fp32_acc - bf16_acc)) < 1e-9
assert amp_story == ("the same accuracy as" if abs(amp_drop_pts) < 1e-9 else
                     f"{abs(amp_drop_pts):.2f} points {'below' if amp_drop_pts > 0 else 'above'}")
assert sum_errors["naive fp16 accumulator"] > 0.5
assert max(sum_errors[k] for k in ("fp32 accumulator", "Kahan in fp16", "pairwise in fp16")) < 0.01
assert stall_ulp / 2 > float(terms.max())  # "a term below half of it rounds away"
assert scaler_match == 1.0
assert underflow_scaled_small <= underflow_fp16_small
'''
