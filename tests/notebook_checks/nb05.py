"""Notebook 05 (low-rank): wrong answers the visible tests must catch, and the claims its
printed explanations make about what it measured."""

from tests.notebook_checks import Mistake

_TSVD = '''
def truncated_svd_approx(weight, rank):
    if not {check}:
        raise ValueError("rank out of range")
    u, s, vh = torch.linalg.svd(weight, full_matrices=False)
    return {result}
'''
_TSVD_RIGHT = dict(check="1 <= rank <= min(weight.shape)",
                   result="u[:, :rank] @ torch.diag(s[:rank]) @ vh[:rank]")


def _tsvd(**wrong: str) -> str:
    return _TSVD.format(**{**_TSVD_RIGHT, **wrong})


_ENERGY = '''
def rank_for_energy(singular_values, energy):
    if not {check}:
        raise ValueError("energy must be in (0, 1]")
    s2 = singular_values{power}
    cumulative = torch.cumsum(s2, 0) / s2.sum()
    return {result}
'''
_ENERGY_RIGHT = dict(
    check="0 < energy <= 1", power=".double() ** 2",
    result="min(int((cumulative < energy - 1e-12).sum()) + 1, len(singular_values))")


def _energy(**wrong: str) -> str:
    return _ENERGY.format(**{**_ENERGY_RIGHT, **wrong})


def _flops(body: str) -> str:
    return f'''
def factorized_linear_flops(batch, in_features, out_features, rank):
    return {body}
'''


_COPY = '''
def factorized_copy(model, energy):
    {copy}
    for name, layer in list(model.named_modules()):
        if not isinstance(layer, nn.Linear):
            continue
        m, n = layer.weight.shape
        u, s, vh = torch.linalg.svd(layer.weight.detach().double(), full_matrices=False)
        r = {rank}
        if {skip}:
            continue
        low = LowRankLinear(n, m, r, bias=layer.bias is not None)
        root = s[:r].sqrt()
        with torch.no_grad():
            low.first.weight.copy_({first})
            low.second.weight.copy_({second})
            if layer.bias is not None:
                {bias}
        model.set_submodule(name, low)
    return model
'''
_COPY_RIGHT = dict(copy="model = copy.deepcopy(model)", rank="energy_rank(s, energy)",
                   skip="r >= m * n / (m + n)", first="root[:, None] * vh[:r]",
                   second="u[:, :r] * root", bias="low.second.bias.copy_(layer.bias)")


def _copy(**wrong: str) -> str:
    return _COPY.format(**{**_COPY_RIGHT, **wrong})


MISTAKES = [
    # exercise 1: truncated SVD
    Mistake("ex1_tsvd", "keeps the smallest singular values",
            _tsvd(result="u[:, -rank:] @ torch.diag(s[-rank:]) @ vh[-rank:]"), r"keep the first r"),
    Mistake("ex1_tsvd", "V from the columns of Vh (transposed factor)",
            _tsvd(result="u[:, :rank] @ torch.diag(s[:rank]) @ vh[:, :rank].T"),
            r"transposed factors"),
    Mistake("ex1_tsvd", "the transposed approximation",
            _tsvd(result="(u[:, :rank] @ torch.diag(s[:rank]) @ vh[:rank]).T"),
            r"transposed factors"),
    Mistake("ex1_tsvd", "singular values left out", _tsvd(result="u[:, :rank] @ vh[:rank]"),
            r"sigma_1 u_1 v_1\^T = diag\(3, 0, 0\)"),
    Mistake("ex1_tsvd", "rank 0 accepted", _tsvd(check="rank <= min(weight.shape)"),
            r"rank 0 .*should raise ValueError"),
    # exercise 2: rank from energy
    Mistake("ex2_energy", "energy of sigma, not sigma^2", _energy(power=".double()"),
            r"energy of the squares"),
    Mistake("ex2_energy", "> instead of >= (off by one at the boundary)",
            _energy(result="min(int((cumulative <= energy).sum()) + 1, len(singular_values))"),
            r">= the target, not >"),
    Mistake("ex2_energy", "a 0-based rank",
            _energy(result="int((cumulative < energy - 1e-12).sum())"), r"ranks count from 1"),
    Mistake("ex2_energy", "float32, no tolerance, no bound",
            _energy(power=" ** 2", result="int((cumulative < energy).sum()) + 1"),
            r"never return more than len"),
    Mistake("ex2_energy", "energy outside (0, 1] accepted", _energy(check="energy <= 1"),
            r"energy=0.0 should raise ValueError"),
    # exercise 3: FLOPs of a factorised layer
    Mistake("ex3_flops", "MACs, not FLOPs",
            _flops("batch * rank * (in_features + out_features)"), r"2 FLOPs per multiply-add"),
    Mistake("ex3_flops", "bias adds counted",
            _flops("2 * batch * rank * (in_features + out_features) + batch * out_features"),
            r"bias adds not counted"),
    Mistake("ex3_flops", "batch ignored", _flops("2 * rank * (in_features + out_features)"),
            r"every row of the batch"),
    Mistake("ex3_flops", "r (m + n) miscounted as r m n",
            _flops("2 * batch * rank * in_features * out_features // (in_features + out_features)"),
            r"2 FLOPs per multiply-add|2 x 5 x 3 x \(30 \+ 20\)"),
    # exercise 4: a model to an energy budget
    Mistake("ex4_factorized_copy", "energy of sigma, not sigma^2",
            _copy(rank="energy_rank(s.sqrt(), energy)"), r"sigma_1\^2 \+ \.\.\. \+ sigma_r\^2"),
    Mistake("ex4_factorized_copy", "replaced even at the break-even rank",
            _copy(skip="r > m * n / (m + n)"), r"break-even.*saves nothing"),
    Mistake("ex4_factorized_copy", "every layer replaced", _copy(skip="False"),
            r"break-even.*saves nothing"),
    Mistake("ex4_factorized_copy", "the original changed (no copy)", _copy(copy="pass"),
            r"original model's .* changed.*deepcopy"),
    Mistake("ex4_factorized_copy", "U and V swapped (transposed factors)",
            _copy(first="(u[:, :r] * root).T", second="(root[:, None] * vh[:r]).T"),
            r"shapes: first\.weight is r x n"),
    Mistake("ex4_factorized_copy", "singular values all in the second factor",
            _copy(first="vh[:r]", second="u[:, :r] * s[:r]"), r"split the singular values evenly"),
    Mistake("ex4_factorized_copy", "bias not copied", _copy(bias="pass"),
            r"second factor's bias"),
]

CLAIMS = '''
def _against(speedup, ratio):
    return "above" if speedup > 1.25 * ratio else "below" if speedup < 0.8 * ratio else "close to"

# section 2: did training concentrate the energy?
fewer = [k for k in layers if rank70[(k, "trained")] < rank70[(k, "random init")]]
assert ("every layer" in spectra_story) == (len(fewer) == len(layers)), spectra_story
# section 3: the sweep, per device and batch
for (dev, batch), line in sweep_story.items():
    s128 = speedups[(dev, batch, 128)]
    assert f"{_against(s128, 4)} its FLOP ratio" in line, (line, s128)
    paid = [r for r in sweep_ranks if speedups[(dev, batch, r)] > 1.1]
    said = f"paid (> 1.1x) up to rank {max(paid)}" if paid else "never paid"
    assert said in line, (line, said)
# section 3: batch 64 side by side, batch 1 from the sweep
assert f"{_against(side_by_side.speedup, 4)} the FLOP ratio" in story64, story64
assert ("reach fewer GFLOP/s" in story64) == (side_by_side.speedup < 0.8 * 4), story64
assert ("stay in cache" in story64) == (side_by_side.speedup > 1.25 * 4), story64
one = speedups[("cpu", 1, 128)]
assert f"{_against(one, 4)} the byte ratio" in story1, story1
assert ("fits in a cache level" in story1) == (one > 1.25 * 4), story1
assert ("per-call cost" in story1) == (one < 0.8 * 4), story1
# section 6: fine-tuning, and the small MLP against the big layer
gap = tuned_acc - base_acc
assert ("back within 1 point" in tune_story) == (abs(gap) <= 0.01), tune_story
assert ("below the original" in tune_story) == (gap < -0.01), tune_story
mlp = model_cmp.speedup
assert ("is not faster here" in mlp_story) == (mlp < 1.1), mlp_story
big_share = side_by_side.speedup / 4
small_share = mlp / (flops_before / flops_after)
assert ("pays on big layers more" in mlp_story) == (big_share > small_share + 0.1), mlp_story
'''
