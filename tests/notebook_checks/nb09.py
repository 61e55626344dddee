"""Notebook 09 (deployment): wrong answers the visible tests must name, and the measured prose."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_PARITY = '''
def max_abs_diff(reference, candidate):
    a = reference.detach().numpy() if isinstance(reference, torch.Tensor) else np.asarray(reference)
    b = candidate.detach().numpy() if isinstance(candidate, torch.Tensor) else np.asarray(candidate)
    {check}
    return float({value})
'''
_SHAPES = 'if a.shape != b.shape:\n        raise ValueError("shapes differ")'

_NODES = '''
LEVELS = {{"disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
          "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}}


def nodes_removed(model_file, level):
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("disabled", level):
            opts = ort.SessionOptions()
            {set_level}
            opts.log_severity_level = 3
            opts.optimized_model_filepath = os.path.join(tmp, name + ".onnx")
            ort.InferenceSession(str(model_file), opts, providers=["CPUExecutionProvider"])
            counts.append(len(onnx.load(opts.optimized_model_filepath).graph.node))
    return {result}
'''
_SET = "opts.graph_optimization_level = LEVELS[name]"

_REAL = '''
def int8_to_real(q, quantization):
    scale, zero_point = quantization
    return {body}
'''

_REP = '''
def make_representative_dataset(x, n=100):
    data = np.asarray(x, dtype={dtype})
    if len(data) == 0:
        raise ValueError("empty")

    def representative():
        for i in range({count}):
            yield {item}

    return {ret}
'''
_REP_RIGHT = dict(dtype="np.float32", count="min(n, len(data))", item="[data[i:i + 1]]",
                  ret="representative")


def _rep(**changes: str) -> str:
    return _REP.format(**{**_REP_RIGHT, **changes})


MISTAKES = [
    # Exercise 1: the parity check
    Mistake("ex1_parity", "signed max", _PARITY.format(check=_SHAPES, value="np.max(a - b)"),
            r"without abs"),
    Mistake("ex1_parity", "mean instead of max",
            _PARITY.format(check=_SHAPES, value="np.mean(np.abs(a - b))"), r"mean absolute"),
    Mistake("ex1_parity", "broadcasts different shapes",
            _PARITY.format(check="pass", value="np.max(np.abs(a - b))"), r"broadcasting"),
    Mistake("ex1_parity", "returns a numpy scalar", '''
def max_abs_diff(reference, candidate):
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError("shapes differ")
    return np.max(np.abs(a - b))
''', r"Python float"),
    Mistake("ex1_parity", "no detach", '''
def max_abs_diff(reference, candidate):
    a, b = np.asarray(reference), np.asarray(candidate)
    if a.shape != b.shape:
        raise ValueError("shapes differ")
    return float(np.max(np.abs(a - b)))
''', r"detach"),
    # Exercise 2: nodes removed by a level
    Mistake("ex2_nodes", "level never set (ORT's default is ENABLE_ALL)",
            _NODES.format(set_level="pass", result="counts[0] - counts[1]"),
            r"graph_optimization_level"),
    Mistake("ex2_nodes", "nodes left, not removed",
            _NODES.format(set_level=_SET, result="counts[1]"), r"LEFT"),
    Mistake("ex2_nodes", "sign flipped", _NODES.format(set_level=_SET,
                                                       result="counts[1] - counts[0]"),
            r"the sign"),
    # Exercise 3: int8 code -> real value
    Mistake("ex3_real", "int8 arithmetic overflows",
            _REAL.format(body="((np.asarray(q) - np.int8(zero_point)) * scale).astype(np.float32)"),
            r"wrapped around"),
    Mistake("ex3_real", "adds the zero point",
            _REAL.format(body="((q.astype(np.int32) + zero_point) * scale).astype(np.float32)"),
            r"zero point is subtracted"),
    Mistake("ex3_real", "subtracts z after scaling",
            _REAL.format(body="(q.astype(np.int32) * scale - zero_point).astype(np.float32)"),
            r"before scaling"),
    Mistake("ex3_real", "ignores the zero point",
            _REAL.format(body="(q.astype(np.int32) * scale).astype(np.float32)"),
            r"zero point is ignored"),
    Mistake("ex3_real", "float64 result",
            _REAL.format(body="(q.astype(np.int32) - zero_point) * float(scale)"), r"float32"),
    # Exercise 4: the representative dataset
    Mistake("ex4_rep", "returns the generator, not the function", _rep(ret="representative()"),
            r"return the function itself"),
    Mistake("ex4_rep", "yields the array, not a list", _rep(item="data[i:i + 1]"),
            r"must be a list"),
    Mistake("ex4_rep", "drops the batch axis", _rep(item="[data[i]]"), r"batch of one"),
    Mistake("ex4_rep", "float64 examples", _rep(dtype="np.float64"), r"float32"),
    Mistake("ex4_rep", "ignores n", _rep(count="len(data)"), r"first n examples"),
    Mistake("ex4_rep", "no check for an empty x", '''
def make_representative_dataset(x, n=100):
    data = np.asarray(x, dtype=np.float32)

    def representative():
        for i in range(min(n, len(data))):
            yield [data[i:i + 1]]

    return representative
''', r"empty x must raise ValueError"),
]

# Every sentence the notebook printed from a measurement, checked against the numbers.
CLAIMS = r'''
def _v(s):
    return "faster" if s >= 1.05 else ("slower" if s <= 0.95 else "about as fast")


assert parity_ok == (onnx_diff < 1e-4) and parity_ok, onnx_diff
for b, c in ort_cmp.items():
    assert ort_story[b] == _v(c.speedup), (b, c.speedup, ort_story[b])
assert gap_at_bs1 == (ort_cmp[1].speedup > ort_cmp[64].speedup)
assert levels["extended"]["nodes"] < levels["disabled"]["nodes"]
assert qparams_match == (abs(in_scale - float(ours.scale)) <= 1e-6 * in_scale
                         and in_zp == int(ours.zero_point)) and qparams_match
assert abs(int8_ratio - variants["TFLite float32"].bs1_ms / variants["TFLite int8"].bs1_ms) < 1e-12
assert abs(int8_smaller - variants["TFLite float32"].size_bytes
           / variants["TFLite int8"].size_bytes) < 1e-12 and int8_smaller > 1, int8_smaller
assert int8_story == _v(int8_ratio), (int8_ratio, int8_story)
assert ort_int8_story == _v(ort_int8_ratio), (ort_int8_ratio, ort_int8_story)
assert fastest_bs1 == min(variants, key=lambda n: variants[n].bs1_ms)
assert smallest == min(variants, key=lambda n: variants[n].size_bytes)
for name, v in variants.items():
    assert 0.0 <= v.accuracy <= 1.0 and v.bs1_ms > 0 and v.bs64_ms > 0, name
'''
