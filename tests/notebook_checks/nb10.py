"""Notebook 10 (capstone): wrong answers the visible tests must name, and the measured prose."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_DOM = '''
def dominates(a, b):
    ge = (a["accuracy"] >= b["accuracy"] and a["latency_bs1_ms"] {lat} b["latency_bs1_ms"]
          and a["size_bytes"] <= b["size_bytes"])
    gt = (a["accuracy"] > b["accuracy"] or a["latency_bs1_ms"] < b["latency_bs1_ms"]
          or a["size_bytes"] < b["size_bytes"])
    return {ret}
'''

_SUMMARY = '''
def compression_summary(before, after):
    size = {size}
    flops = before.flops / after.flops
    drop = {drop}
    return {{"size_ratio": size, "flops_ratio": flops, "accuracy_drop_pts": drop,
            "meets_target": {target}}}
'''
_RIGHT = dict(size="before.size_bytes / after.size_bytes",
              drop="100 * (before.accuracy - after.accuracy)",
              target="size >= 4 and flops >= 3 and drop <= 1")


def _summary(**changes: str) -> str:
    return _SUMMARY.format(**{**_RIGHT, **changes})


MISTAKES = [
    # Exercise 1: dominance
    Mistake("ex1_dominates", "higher latency is better",
            _DOM.format(lat=">=", ret="ge and gt"), r"better when LOWER"),
    Mistake("ex1_dominates", "equal points dominate",
            _DOM.format(lat="<=", ret="ge"), r"strictly better"),
    # Exercise 2: the front
    Mistake("ex2_front", "kept the dominating instead of the non-dominated", '''
def pareto_indices(points):
    return [i for i, p in enumerate(points) if not any(dominates(p, q) for q in points)]
''', r"WORST variant"),
    Mistake("ex2_front", "duplicates dropped", '''
def pareto_indices(points):
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p) or (q == p and j < i) for j, q in enumerate(points))]
''', r"duplicates"),
    # Exercise 3: bookkeeping
    Mistake("ex3_summary", "ratio inverted",
            _summary(size="after.size_bytes / before.size_bytes"), r"inverted"),
    Mistake("ex3_summary", "accuracy drop as a fraction",
            _summary(drop="before.accuracy - after.accuracy"), r"fraction"),
    Mistake("ex3_summary", "strict limits",
            _summary(target="size > 4 and flops > 3 and drop < 1"), r"inclusive"),
    # Exercise 4: the deliverable
    Mistake("ex4_deliverable", "quantize only: 4x on weights, not on BatchNorm, same FLOPs", '''
def build_pipeline():
    return [Step("ptq", 8), Step("fold")]
''', r"size ratio .* expected >= 4x"),
    Mistake("ex4_deliverable", "prune only: fewer FLOPs, not 4x smaller", '''
def build_pipeline():
    return [Step("prune", 0.5, 3), Step("fold")]
''', r"size ratio .* expected >= 4x"),
    Mistake("ex4_deliverable", "prune too hard", '''
def build_pipeline():
    return [Step("prune", 0.8, 1), Step("fold"), Step("ptq", 8)]
''', r"accuracy drop .* expected <= 1"),
]

# Every sentence the notebook printed from a measurement, checked against the numbers.
CLAIMS = r'''
assert order_pts == 100 * (prune_first["accuracy"] - distill_first["accuracy"])
want = "more" if order_pts > 0 else ("less" if order_pts < 0 else "as")
assert order_story == want, (order_story, order_pts)
assert front == CP.pareto_front(variants) and front
assert ref_ratios == CP.ratios(ref_recs[0], ref_recs[-1])
assert [r[0] for r in rows] == ["baseline"] + [s.label for s in CP.REFERENCE_STEPS]
assert ref_ratios["size_ratio"] >= 4 and ref_ratios["flops_ratio"] >= 3
assert ref_ratios["accuracy_drop_pts"] <= 1
assert fastest_int8 == min(int8, key=lambda k: int8[k]["latency_bs1_ms"])
assert smallest_int8 == min(int8, key=lambda k: int8[k]["size_bytes"])
assert gpu_timed == any(v.get("latency_gpu_bs1_ms") is not None for v in variants)
'''
