"""Notebook 02 (pruning): wrong answers the visible tests must catch, and its printed claims."""

from tests.notebook_checks import Mistake

_MAGNITUDE = '''
def magnitude_mask(weight, sparsity):
    if not 0 <= sparsity < 1:
        raise ValueError("sparsity")
    k = {k}
    mask = torch.ones(weight.numel(), dtype=torch.bool)
    if k > 0:
        mask[torch.topk({scores}, k, largest={largest}).indices] = False
    return {result}
'''


def _magnitude(k="round(sparsity * weight.numel())", scores="weight.abs().flatten()",
               largest="False", result="mask.view(weight.shape)") -> str:
    return "import math\n" + _MAGNITUDE.format(k=k, scores=scores, largest=largest, result=result)


_CUBIC = '''
import math
def cubic_sparsity(t, s_f, s_i=0.0, t0=0, n=10, dt=1):
    progress = {progress}
    return {value}
'''


def _cubic(progress="min(max((t - t0) / (n * dt), 0.0), 1.0)",
           value="s_f + (s_i - s_f) * (1.0 - progress) ** 3") -> str:
    return _CUBIC.format(progress=progress, value=value)


_CHANNELS = '''
def channels_to_keep(weight, sparsity):
    scores = {scores}
    n_keep = {n_keep}
    return {result}
'''


def _channels(scores="weight.detach().abs().flatten(1).sum(dim=1)",
              n_keep="max(1, len(scores) - round(sparsity * len(scores)))",
              result="torch.topk(scores, n_keep).indices.sort().values") -> str:
    return _CHANNELS.format(scores=scores, n_keep=n_keep, result=result)


# Channel surgery for SmallCNN, with hooks where the wrong answers differ from the right one.
_SURGERY = '''
def prune_smallcnn_channels(model, sparsity):
    slim = {copy}
    features = slim.features
    keep_in = None
    for i, layer in enumerate(features):
        if isinstance(layer, nn.Conv2d):
            {rank}
            weight = layer.weight.detach()[keep]
            if keep_in is not None:
                weight = {inputs}
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], layer.kernel_size,
                             stride=layer.stride, padding={padding}, bias=layer.bias is not None)
            with torch.no_grad():
                conv.weight.copy_(weight)
            features[i], keep_in, channels = conv, keep, layer.out_channels
        elif isinstance(layer, nn.BatchNorm2d):
            {batchnorm}
    linear = slim.classifier[-1]
    spatial = linear.in_features // channels
    columns = {columns}
    new = nn.Linear(len(columns), linear.out_features, bias=linear.bias is not None)
    with torch.no_grad():
        new.weight.copy_(linear.weight[:, columns])
        new.bias.copy_(linear.bias)
    slim.classifier[-1] = new
    return slim
'''
_BATCHNORM = '''bn = nn.BatchNorm2d(len(keep_in), eps=layer.eps, momentum=layer.momentum)
            with torch.no_grad():
                for name in {names}:
                    getattr(bn, name).copy_(getattr(layer, name)[keep_in])
            features[i] = bn'''


def _surgery(copy="copy.deepcopy(model)", rank="keep = channels_to_keep(layer.weight, sparsity)",
             inputs="weight[:, keep_in]", padding="layer.padding",
             names='("weight", "bias", "running_mean", "running_var")', batchnorm=None,
             columns="(keep_in[:, None] * spatial + torch.arange(spatial)).flatten()") -> str:
    return _SURGERY.format(copy=copy, rank=rank, inputs=inputs, padding=padding,
                           batchnorm=batchnorm or _BATCHNORM.format(names=names), columns=columns)


MISTAKES = [
    # Exercise 1: magnitude_mask
    Mistake("ex1_magnitude_mask", "floor instead of round",
            _magnitude(k="math.floor(sparsity * weight.numel())"),
            r"floor.*use round"),
    Mistake("ex1_magnitude_mask", "ceil instead of round",
            _magnitude(k="math.ceil(sparsity * weight.numel())"),
            r"ceil.*use round"),
    Mistake("ex1_magnitude_mask", "signed values, no abs", _magnitude(scores="weight.flatten()"),
            r"signed.*\|w\|"),
    Mistake("ex1_magnitude_mask", "True marks the pruned weights",
            _magnitude(result="~mask.view(weight.shape)"), r"inverted"),
    Mistake("ex1_magnitude_mask", "accepts sparsity 1 and negative",
            _magnitude().replace("not 0 <= sparsity < 1", "sparsity > 1"),
            r"should raise ValueError"),
    # Exercise 2: global_magnitude_masks
    Mistake("ex2_global_masks", "layer-wise thresholds", '''
def global_magnitude_masks(weights, sparsity):
    return {n: magnitude_mask(w.detach(), sparsity) for n, w in weights.items()}
''', r"layer-wise.*one global threshold"),
    Mistake("ex2_global_masks", "signed values, no abs", '''
def global_magnitude_masks(weights, sparsity):
    flat = torch.cat([w.detach().flatten() for w in weights.values()])
    k = round(sparsity * flat.numel())
    drop = torch.topk(flat, k, largest=False).indices
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    keep[drop] = False
    out, start = {}, 0
    for name, w in weights.items():
        out[name] = keep[start:start + w.numel()].view(w.shape)
        start += w.numel()
    return out
''', r"\|w\|"),
    Mistake("ex2_global_masks", "threshold with k = int(sparsity * N)", '''
def global_magnitude_masks(weights, sparsity):
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    k = int(sparsity * flat.numel())
    if k == 0:
        return {n: torch.ones_like(w, dtype=torch.bool) for n, w in weights.items()}
    threshold = flat.kthvalue(k).values
    return {n: w.detach().abs() > threshold for n, w in weights.items()}
''', r"floor or int\(\).*use round"),
    Mistake("ex2_global_masks", "masks left flat", '''
def global_magnitude_masks(weights, sparsity):
    flat = torch.cat([w.detach().abs().flatten() for w in weights.values()])
    keep = magnitude_mask(flat, sparsity)
    out, start = {}, 0
    for name, w in weights.items():
        out[name] = keep[start:start + w.numel()]
        start += w.numel()
    return out
''', r"shape \(2, 2\)"),
    # Exercise 3: cubic_sparsity
    Mistake("ex3_cubic", "ignores dt", _cubic(progress="min(max((t - t0) / n, 0.0), 1.0)"),
            r"ignore dt"),
    Mistake("ex3_cubic", "step-wise (floor to whole updates)",
            _cubic(progress="min(max(math.floor((t - t0) / dt) / n, 0.0), 1.0)"), r"continuous"),
    Mistake("ex3_cubic", "ignores t0", _cubic(progress="min(max(t / (n * dt), 0.0), 1.0)"),
            r"ignore t0"),
    Mistake("ex3_cubic", "ignores s_i", _cubic(value="s_f * (1 - (1.0 - progress) ** 3)"),
            r"ignore s_i"),
    Mistake("ex3_cubic", "no clamp", _cubic(progress="(t - t0) / (n * dt)"), r"clamp"),
    # Exercise 4: channels_to_keep
    Mistake("ex4_channels", "L2 instead of L1",
            _channels(scores="weight.detach().flatten(1).norm(dim=1)"), r"L2 norm.*L1"),
    Mistake("ex4_channels", "signed sum, no abs",
            _channels(scores="weight.detach().flatten(1).sum(dim=1)"), r"signed sum.*\|w\|"),
    Mistake("ex4_channels", "not sorted ascending",
            _channels(result="torch.topk(scores, n_keep).indices"), r"ascending"),
    Mistake("ex4_channels", "scores per input channel (wrong axis)",
            _channels(scores="weight.detach().abs().sum(dim=(0, 2, 3))",
                      n_keep="max(1, len(weight) - round(sparsity * len(weight)))"),
            r"input channel"),
    Mistake("ex4_channels", "floor instead of round",
            _channels(n_keep="max(1, len(scores) - int(sparsity * len(scores)))"),
            r"floor or int\(\).*use round"),
    Mistake("ex4_channels", "keeps round((1 - sparsity) * C)",
            _channels(n_keep="max(1, round((1 - sparsity) * len(scores)))"),
            r"keep C - round\(sparsity \* C\)"),
    Mistake("ex4_channels", "no filter kept at high sparsity",
            _channels(n_keep="len(scores) - round(sparsity * len(scores))"), r"at least one"),
    # Exercise 5: channel surgery
    Mistake("ex5_surgery", "in place, no copy", _surgery(copy="model"), r"leave `model` unchanged"),
    Mistake("ex5_surgery", "BatchNorm left whole", _surgery(batchnorm="pass"),
            r"slice the BatchNorm"),
    Mistake("ex5_surgery", "BatchNorm running statistics not copied",
            _surgery(names='("weight", "bias")'), r"running statistics"),
    Mistake("ex5_surgery", "next conv's inputs not cut", _surgery(inputs="weight"),
            r"input channels"),
    Mistake("ex5_surgery", "filters ranked after cutting their inputs",
            _surgery(rank="keep = channels_to_keep(layer.weight if keep_in is None else "
                          "layer.weight[:, keep_in], sparsity)"), r"original weight"),
    Mistake("ex5_surgery", "Linear cut by channel index, not its H*W features",
            _surgery(columns="keep_in"), r"S = H\*W"),
    Mistake("ex5_surgery", "Linear features in the wrong order",
            _surgery(columns="(keep_in[None, :] + torch.arange(spatial)[:, None] * channels)"
                             ".flatten()"),
            r"c\*S"),
    Mistake("ex5_surgery", "padding not copied", _surgery(padding="0"), r"padding"),
]

CLAIMS = '''
by_score = {r[0]: r[1:] for r in score_rows}
acc_l1, acc_obd, acc_taylor = by_score["l1"], by_score["obd"], by_score["taylor"]
assert ("OBD matches or beats magnitude" in score_story) == all(
    o >= m for o, m in zip(acc_obd, acc_l1))
assert ("OBD scores below magnitude" in score_story) == all(
    o < m for o, m in zip(acc_obd, acc_l1))
assert ("Taylor score is the worst" in score_story) == all(
    t < min(m, o) for t, m, o in zip(acc_taylor, acc_l1, acc_obd))

g90 = curves[("global", True)][sparsities.index(0.9)]
l90 = curves[("layer", True)][sparsities.index(0.9)]
assert ("global keeps more accuracy" in curve_story) == (g90 > l90)
per_layer = sparsity_report(pruned80).per_layer
spared_name = min(per_layer, key=lambda n: per_layer[n][0] / per_layer[n][1])
assert f"spared {spared_name} most" in curve_story



def _against_dense(acc):
    points = 100 * (acc - base_acc)
    if abs(points) <= 1:
        return "within 1 point of dense"
    return f"{abs(points):.1f} points {'below' if points < 0 else 'above'} dense"


assert ("gradual (cubic) beat one-shot" in gradual_story) == (gradual_acc > oneshot_acc)
assert f"gradual is {_against_dense(gradual_acc)}" in gradual_story
assert f"one-shot {_against_dense(oneshot_acc)}" in gradual_story
assert f"fine-tuning: {_against_dense(acc80)}" in summary_story.splitlines()[0]
assert f"fine-tuning: {_against_dense(slim_acc)}" in summary_story.splitlines()[2]

assert ("no real gain" in speed_story) == (t_masked.speedup < 1.25)
assert ("the time fell with the work" in speed_story) == (
    t_slim.speedup >= 0.75 * count_flops(wide, xw).flops / count_flops(wide_slim, xw).flops)
for s in (0.5, 0.9, 0.99):
    csr_said = speed_story.split("CSR beat the dense matvec")[1]
    assert (f"{s:.0%}" in csr_said) == (csr_timings[s].speedup > 1)
'''
