"""Notebook 06 (fusion): wrong answers the visible tests must name, and the measured prose."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_FOLD = '''
def fold_bn_into_conv(conv, bn):
    scale = {scale}
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight.detach() * {view})
    fused.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
    return fused
'''
_RIGHT_SCALE = "bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)"

_FX = '''
def fuse_conv_bn_relu_fx(model):
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())

    def sole_conv(node):
        return (isinstance(node, fx.Node) and node.op == "call_module"
                and isinstance(modules[node.target], nn.Conv2d) and {users})

    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d) \\
                and sole_conv(node.args[0]):
            conv_node = node.args[0]
            fused = FU.fuse_conv_bn(modules[conv_node.target], modules[node.target])
            gm.set_submodule(conv_node.target, fused)
            modules[conv_node.target] = fused
            {drop_bn}
    for node in list(gm.graph.nodes):
        relu = {relu}
        if relu and sole_conv(node.args[0]):
            conv_node = node.args[0]
            gm.set_submodule(conv_node.target, FU.ConvReLU(modules[conv_node.target]))
            node.replace_all_uses_with(conv_node)
            gm.graph.erase_node(node)
    gm.graph.lint()
    {recompile}
    return gm
'''
_FX_RIGHT = dict(
    users="len(node.users) == 1",
    drop_bn="node.replace_all_uses_with(conv_node); gm.graph.erase_node(node)",
    relu='(node.op == "call_module" and isinstance(modules[node.target], nn.ReLU)) or '
         '(node.op == "call_function" and node.target in (F.relu, torch.relu))',
    recompile="gm.recompile()",
)


def _fx(**changes: str) -> str:
    return _FX.format(**{**_FX_RIGHT, **changes})


MISTAKES = [
    # Exercise 1: folding BatchNorm into a conv
    Mistake("ex1_fold", "var instead of sqrt(var + eps)",
            _FOLD.format(scale="bn.weight.detach() / (bn.running_var + bn.eps)",
                         view="scale.view(-1, 1, 1, 1)"),
            r"instead of sqrt\(var \+ eps\)"),
    Mistake("ex1_fold", "forgot eps",
            _FOLD.format(scale="bn.weight.detach() / torch.sqrt(bn.running_var)",
                         view="scale.view(-1, 1, 1, 1)"),
            r"forgot eps"),
    Mistake("ex1_fold", "input channels scaled",
            _FOLD.format(scale=_RIGHT_SCALE, view="scale.view(1, -1, 1, 1)"),
            r"input channels \(dim 1\)"),
    Mistake("ex1_fold", "one scale for the tensor",
            _FOLD.format(scale=_RIGHT_SCALE, view="scale.mean()"),
            r"one scale for the whole tensor"),
    Mistake("ex1_fold", "conv bias assumed", '''
def fold_bn_into_conv(conv, bn):
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = copy.deepcopy(conv)
    fused.weight = nn.Parameter(conv.weight.detach() * scale.view(-1, 1, 1, 1))
    fused.bias = nn.Parameter((conv.bias.detach() - bn.running_mean) * scale + bn.bias.detach())
    return fused
''', r"conv\.bias is None"),
    Mistake("ex1_fold", "folded in place", '''
def fold_bn_into_conv(conv, bn):
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, 1, 1, 1))
    conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
    return conv
''', r"do not change the one you were given"),
    Mistake("ex1_fold", "forgot beta",
            _FOLD.format(scale=_RIGHT_SCALE, view="scale.view(-1, 1, 1, 1)").replace(
                " + bn.bias.detach())", ")"),
            r"folded bias"),
    # Exercise 2: the fx rewrite
    Mistake("ex2_fx", "ignores other users", _fx(users="True"), r"another user.*node\.users"),
    Mistake("ex2_fx", "BatchNorm left in the graph", _fx(drop_bn="pass"),
            r"BatchNorm still runs"),
    Mistake("ex2_fx", "only nn.ReLU modules",
            _fx(relu='node.op == "call_module" and isinstance(modules[node.target], nn.ReLU)'),
            r"F\.relu.*call_function"),
    Mistake("ex2_fx", "no recompile", _fx(recompile="pass"), r"recompile"),
    Mistake("ex2_fx", "model changed in place", '''
def fuse_conv_bn_relu_fx(model):
    gm = fx.symbolic_trace(model)
    modules = dict(gm.named_modules())
    for node in list(gm.graph.nodes):
        src = node.args[0] if node.args else None
        if node.op == "call_module" and isinstance(modules[node.target], nn.BatchNorm2d) \\
                and isinstance(src, fx.Node) and src.op == "call_module" \\
                and isinstance(modules[src.target], nn.Conv2d) and len(src.users) == 1:
            conv, bn = modules[src.target], modules[node.target]
            scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
            bias = torch.zeros_like(bn.running_mean) if conv.bias is None else conv.bias.detach()
            with torch.no_grad():
                conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias.detach())
            node.replace_all_uses_with(src)
            gm.graph.erase_node(node)
    gm.recompile()
    return gm
''', r"do not change the model you were given"),
    # Exercise 3: majority vote
    Mistake("ex3_vote", "ties to the highest class", '''
def majority_vote(predictions):
    votes = F.one_hot(predictions.long()).sum(dim=0)
    return votes.shape[1] - 1 - votes.flip(1).argmax(dim=1)
''', r"the highest class"),
    Mistake("ex3_vote", "ties to member 0", '''
def majority_vote(predictions):
    votes = F.one_hot(predictions.long()).sum(dim=0)
    best = votes.max(dim=1).values
    first = predictions[0].long()
    top = votes.argmax(dim=1)
    return torch.where(votes.gather(1, first[:, None])[:, 0] == best, first, top)
''', r"member 0's vote"),
    Mistake("ex3_vote", "counted over the wrong axis", '''
def majority_vote(predictions):
    return F.one_hot(predictions.long()).sum(dim=1).argmax(dim=1)
''', r"over the members, dim 0"),
    # Exercise 4: soft voting
    Mistake("ex4_soft", "averaged the logits", '''
def soft_vote(logits, weights=None):
    m = logits.shape[0]
    w = torch.ones(m) if weights is None else torch.as_tensor(weights, dtype=logits.dtype)
    w = w / w.sum()
    return torch.softmax((w.view(-1, 1, 1) * logits).sum(dim=0), dim=-1)
''', r"averages the logits"),
    Mistake("ex4_soft", "softmax over the members", '''
def soft_vote(logits, weights=None):
    return torch.softmax(logits, dim=0).mean(dim=0)
''', r"not 1.*softmax over the classes"),
    Mistake("ex4_soft", "weights not normalised", '''
def soft_vote(logits, weights=None):
    m = logits.shape[0]
    w = torch.ones(m) / m if weights is None else torch.as_tensor(weights)
    return (w.view(-1, 1, 1) * torch.softmax(logits, dim=-1)).sum(dim=0)
''', r"normalise the weights"),
    Mistake("ex4_soft", "probabilities of nothing: mean logits", '''
def soft_vote(logits, weights=None):
    return logits.mean(dim=0)
''', r"not probabilities"),
]

# Every sentence the notebook printed from a measurement, checked against the numbers.
CLAIMS = r'''
for batch, c in fold_cmp.items():
    expected = "faster" if c.speedup >= 1.03 else ("slower" if c.speedup <= 0.97 else "the same")
    assert fold_story[batch] == expected, (batch, c.speedup, fold_story[batch])
assert fx_max_diff < 1e-5 and fold_max_diff < 1e-4
assert removed == 3, removed


def _verdict(s):
    return "large" if s >= 1.5 else ("modest" if s >= 1.1 else ("none" if s >= 0.9 else "loss"))


assert set(compile_story) == set(compile_results)
for key, r in compile_results.items():
    assert compile_story[key] == _verdict(r.speedup), (key, r.speedup, compile_story[key])
assert compile_results or not compile_ok
for name, r in xla_results.items():
    assert xla_story[name] == _verdict(r.speedup), (name, r.speedup, xla_story[name])

best = max(member_acc.values())
assert abs(soft_vs_best_pts - 100 * (soft_acc - best)) < 1e-9
assert ens_story == ("beats" if soft_acc > best else ("ties" if soft_acc == best else "trails"))
assert indep_collapse == (indep_soup_acc < min(member_acc.values()) - 0.10)
assert abs(soup_vs_best_pts - 100 * (soup_acc - max(copy_acc))) < 1e-9
assert student_story == ("better than" if student_acc > scratch_acc else
                         ("as good as" if student_acc == scratch_acc else "worse than"))
'''
