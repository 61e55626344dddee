"""Notebook 01 (optimisers): wrong answers the visible tests must catch, and the claims the
notebook's prose makes from its measurements."""

from __future__ import annotations

from tests.notebook_checks import Mistake

_MOMENTUM = ("def momentum_update(param, grad, buf, lr, momentum, dampening=0.0, "
             "weight_decay=0.0, nesterov=False):\n")
_ADAM = ("def adam_update(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8,\n"
         "                weight_decay=0.0, decoupled=False):\n")
_ADAM_BODY = '''    if weight_decay != 0 and decoupled:
        param = param * (1 - lr * weight_decay)
    elif weight_decay != 0:
        grad = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
'''

_MY_ADAMW = '''class MyAdamW(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (beta1, beta2) = group["lr"], group["betas"]
            eps, wd = group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], p.grad
                p.mul_(1 - lr * wd)
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = (v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - beta1**t))
'''


def _adamw(*edits: tuple[str, str]) -> str:
    """The right MyAdamW with each (old, new) edit made (each old text must be there)."""
    code = _MY_ADAMW
    for old, new in edits:
        assert old in code, old
        code = code.replace(old, new)
    return code


_STEP_FIRST = ('                state["step"] += 1\n', "")
_T_LINE = ('                t, m, v, g = state["step"], state["exp_avg"], state["exp_avg_sq"], '
           'p.grad\n')

_WARMUP = "def warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, min_lr=0.0):\n"
_COSINE = ("    progress = (min(step - warmup_steps, total_steps - warmup_steps)\n"
           "                / (total_steps - warmup_steps))\n"
           "    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2\n")
_CLIP = "def clip_by_global_norm(grads, max_norm, eps=1e-6):\n"
_NORM = "    total = math.sqrt(sum(float((g * g).sum()) for g in grads))\n"

MISTAKES = [
    # ---- exercise 1: momentum
    Mistake("ex1_momentum", "classical convention (lr inside the buffer)", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = lr * g if buf is None else momentum * buf + lr * g
    direction = lr * g + momentum * new_buf if nesterov else new_buf
    return param - direction, new_buf
''', r"no lr in it, as in the classical convention"),
    Mistake("ex1_momentum", "dampening on the first step", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = (1 - dampening) * g if buf is None else momentum * buf + (1 - dampening) * g
    direction = g + momentum * new_buf if nesterov else new_buf
    return param - lr * direction, new_buf
''', r"no dampening on the first step"),
    Mistake("ex1_momentum", "zero-initialised buffer", _MOMENTUM + '''\
    g = grad + weight_decay * param
    buf = torch.zeros_like(param) if buf is None else buf
    new_buf = momentum * buf + (1 - dampening) * g
    direction = g + momentum * new_buf if nesterov else new_buf
    return param - lr * direction, new_buf
''', r"buf = grad itself"),
    Mistake("ex1_momentum", "dampening ignored", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = g.clone() if buf is None else momentum * buf + g
    direction = g + momentum * new_buf if nesterov else new_buf
    return param - lr * direction, new_buf
''', r"\(1 - dampening\) \* grad"),
    Mistake("ex1_momentum", "weight decay added after the momentum", _MOMENTUM + '''\
    new_buf = grad.clone() if buf is None else momentum * buf + (1 - dampening) * grad
    direction = grad + momentum * new_buf if nesterov else new_buf
    return param - lr * (direction + weight_decay * param), new_buf
''', r"added to the gradient before the momentum"),
    Mistake("ex1_momentum", "nesterov ignored", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
    return param - lr * new_buf, new_buf
''', r"nesterov=True \(p - lr \* \(grad \+ momentum \* buf\)\)"),
    Mistake("ex1_momentum", "param updated in place", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = g.clone() if buf is None else momentum * buf + (1 - dampening) * g
    direction = g + momentum * new_buf if nesterov else new_buf
    param.sub_(lr * direction)
    return param, new_buf
''', r"modified in place\? return new tensors"),
    Mistake("ex1_momentum", "buffer updated in place", _MOMENTUM + '''\
    g = grad + weight_decay * param
    new_buf = g.clone() if buf is None else buf.mul_(momentum).add_(g, alpha=1 - dampening)
    direction = g + momentum * new_buf if nesterov else new_buf
    return param - lr * direction, new_buf
''', r"previous buffer after the second call \(modified in place\?\)"),
    # ---- exercise 2: Adam
    Mistake("ex2_adam", "no bias correction", _ADAM + _ADAM_BODY + '''\
    return param - lr * m / (v.sqrt() + eps), m, v
''', r"bias correction"),
    Mistake("ex2_adam", "t counted from 0 (tensor division)", _ADAM + _ADAM_BODY + '''\
    m_hat = m / (1 - beta1 ** (t - 1))
    v_hat = v / (1 - beta2 ** (t - 1))
    return param - lr * m_hat / (v_hat.sqrt() + eps), m, v
''', r"did t start at 0"),
    Mistake("ex2_adam", "t counted from 0 (float division)", _ADAM + _ADAM_BODY + '''\
    step_size = lr / (1 - beta1 ** (t - 1))
    denom = v.sqrt() / math.sqrt(1 - beta2 ** (t - 1)) + eps
    return param - step_size * m / denom, m, v
''', r"counts steps from 1"),
    Mistake("ex2_adam", "stores the bias-corrected m", _ADAM + _ADAM_BODY + '''\
    m = m / (1 - beta1**t)
    denom = v.sqrt() / math.sqrt(1 - beta2**t) + eps
    return param - lr * m / denom, m, v
''', r"store the raw average"),
    Mistake("ex2_adam", "eps inside the square root", _ADAM + _ADAM_BODY + '''\
    denom = (v / (1 - beta2**t) + eps).sqrt()
    return param - lr * m / (1 - beta1**t) / denom, m, v
''', r"eps is added after dividing sqrt\(v\)"),
    Mistake("ex2_adam", "eps added before the bias correction", _ADAM + _ADAM_BODY + '''\
    denom = (v.sqrt() + eps) / math.sqrt(1 - beta2**t)
    return param - lr * m / (1 - beta1**t) / denom, m, v
''', r"eps is added after dividing sqrt\(v\)"),
    Mistake("ex2_adam", "L2 even when decoupled", _ADAM + '''\
    grad = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    denom = v.sqrt() / math.sqrt(1 - beta2**t) + eps
    return param - lr * m / (1 - beta1**t) / denom, m, v
''', r"decoupled=True with a zero gradient \(AdamW"),
    Mistake("ex2_adam", "decoupled decay after the step", _ADAM + '''\
    if weight_decay != 0 and not decoupled:
        grad = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    denom = v.sqrt() / math.sqrt(1 - beta2**t) + eps
    new = param - lr * m / (1 - beta1**t) / denom
    if decoupled:
        new = new * (1 - lr * weight_decay)
    return new, m, v
''', r"decay first"),
    Mistake("ex2_adam", "decoupled decay without lr", _ADAM + '''\
    if weight_decay != 0 and decoupled:
        param = param * (1 - weight_decay)
    elif weight_decay != 0:
        grad = grad + weight_decay * param
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    denom = v.sqrt() / math.sqrt(1 - beta2**t) + eps
    return param - lr * m / (1 - beta1**t) / denom, m, v
''', r"p \* \(1 - lr \* weight_decay\)"),
    # ---- exercise 3: MyAdamW (model level)
    Mistake("ex3_my_adamw", "step count starts at 0",
            _adamw(_STEP_FIRST, (_T_LINE, _T_LINE + '                state["step"] += 1\n')),
            r"start at 0\?"),
    Mistake("ex3_my_adamw", "no bias correction",
            _adamw(("(v.sqrt() / math.sqrt(1 - beta2**t)).add_(eps)", "v.sqrt().add_(eps)"),
                   ("value=-lr / (1 - beta1**t)", "value=-lr")), r"bias correction"),
    Mistake("ex3_my_adamw", "Adam's L2 instead of decoupled decay",
            _adamw(("p.mul_(1 - lr * wd)", "g = g + wd * p")), r"zero gradient \(AdamW"),
    Mistake("ex3_my_adamw", "the constructor's lr for every group",
            _adamw(('= group["lr"], group["betas"]', '= self.defaults["lr"], group["betas"]')),
            r"group\['lr'\]"),
    Mistake("ex3_my_adamw", "decays parameters without gradient",
            _adamw(("                p.mul_(1 - lr * wd)\n", ""),
                   ("                if p.grad is None:\n",
                    "                p.mul_(1 - lr * wd)\n                if p.grad is None:\n")),
            r"\.grad is None"),
    Mistake("ex3_my_adamw", "hard-coded betas",
            _adamw(('(beta1, beta2) = group["lr"], group["betas"]',
                    '(beta1, beta2) = group["lr"], (0.9, 0.999)')), r"betas=\(0\.8, 0\.99\)"),
    # ---- exercise 4: warm-up + cosine
    Mistake("ex4_warmup_cosine", "warm-up (t + 1) / W", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
''' + _COSINE, r"not \(t \+ 1\) / W"),
    Mistake("ex4_warmup_cosine", "warm-up t / (W - 1)", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * min(1.0, step / (warmup_steps - 1))
''' + _COSINE, r"t / \(W - 1\)"),
    Mistake("ex4_warmup_cosine", "integer division", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * (step // warmup_steps)
''' + _COSINE, r"integer division"),
    Mistake("ex4_warmup_cosine", "cosine progress t / T", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = min(step, total_steps) / total_steps
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
''', r"\(t - W\) / \(T - W\)( = 0)?\)?, not t / T"),
    Mistake("ex4_warmup_cosine", "min_lr forgotten", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (min(step - warmup_steps, total_steps - warmup_steps)
                / (total_steps - warmup_steps))
    return base_lr * (1 + math.cos(math.pi * progress)) / 2
''', r"keep min_lr"),
    Mistake("ex4_warmup_cosine", "not held after total_steps", _WARMUP + '''\
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    progress = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * progress)) / 2
''', r"held"),
    # ---- exercise 5: clipping by global norm
    Mistake("ex5_clip", "each tensor by its own norm", _CLIP + _NORM + '''\
    return [g * min(1.0, max_norm / (float(g.norm()) + eps)) for g in grads], total
''', r"its own norm"),
    Mistake("ex5_clip", "no eps", _CLIP + _NORM + '''\
    return [g * min(1.0, max_norm / total) for g in grads], total
''', r"eps = 1e-6"),
    Mistake("ex5_clip", "scales small gradients up", _CLIP + _NORM + '''\
    return [g * (max_norm / (total + eps)) for g in grads], total
''', r"never scale up"),
    Mistake("ex5_clip", "norm after clipping", _CLIP + _NORM + '''\
    factor = min(1.0, max_norm / (total + eps))
    return [g * factor for g in grads], total * factor
''', r"before clipping"),
    Mistake("ex5_clip", "squared norm", _CLIP + '''\
    total = sum(float((g * g).sum()) for g in grads)
    factor = min(1.0, max_norm / (total + eps))
    return [g * factor for g in grads], total
''', r"sqrt\(3\*\*2 \+ 4\*\*2\)"),
    Mistake("ex5_clip", "clips in place", _CLIP + _NORM + '''\
    factor = min(1.0, max_norm / (total + eps))
    return [g.mul_(factor) for g in grads], total
''', r"modified in place"),
]

CLAIMS = '''
# 1: momentum beats GD in the valley, and the measured rates are near the theory printed beside them
assert hb_rate < gd_rate, (hb_rate, gd_rate)
assert abs(gd_rate - gd_best.rate) < 0.01 and abs(hb_rate - hb_best.rate) < 0.05
# 2: after the lr drop PyTorch's step shrinks at once, the classical one does not
assert torch_sizes[20] / torch_sizes[19] < 0.2 < 0.5 < classical_sizes[20] / classical_sizes[19]
# the bias-correction plot's sentence: 3.16 x lr at t = 1
assert abs(m[0] / math.sqrt(v[0]) - 0.1 / math.sqrt(0.001)) < 1e-9
# AdamW vs Adam + L2, as the table, the sentence and the written answer's solution say
assert abs(l2_small - 0.74) < 0.03 and abs(l2_large - 1.0) < 0.03, (l2_small, l2_large)
assert abs(w_small - 0.74) < 0.03 and abs(w_large - 0.74) < 0.03, (w_small, w_large)
# 3: "rotating the valley changes nothing" for GD and momentum; AdaGrad, RMSProp race if aligned
assert rotation_invariant
assert gain["AdaGrad"] > 3 and gain["RMSProp"] > 3, gain
# 4: the race prose: every tuned optimiser within a few epochs, gaps of about 2x, not 10x
assert ranking[0] in race_text and ranking[-1] in race_text
assert max(mean_steps.values()) <= 120, mean_steps
assert max(mean_steps.values()) / min(mean_steps.values()) < 5, mean_steps
# 5: the schedules equal torch's
assert max(schedule_diff.values()) < 1e-12, schedule_diff
# 7: the cost prose follows the timings
if fused_here:
    assert ("fused is faster than foreach here" in cost_text) == (
        cpu["torch fused"] < cpu["torch foreach"])
assert ("(it is faster)" in cost_text) == (own_vs_torch < 1)
assert f"{foreach_speedup:.1f}x faster than the loop" in cost_text
assert growth["torch loop"] > 5, growth  # "almost all of it fixed overhead"
assert temp_kib["torch foreach"] > 10 * temp_kib["torch loop"]  # foreach: temporaries for all
if "torch fused" in per_tensor_us:
    assert ("pays the least per tensor" in split_text) == (
        per_tensor_us["torch fused"] == min(per_tensor_us.values()))
# state bytes: momentum 1, Adam 2, AMSGrad 3, Lion 1 ("Adam holds two extra copies")
assert state_ratio["SGD + momentum"] == 1 and state_ratio["Adam"] == 2 and state_ratio["Lion"] == 1
assert state_ratio["AdamW (AMSGrad)"] == 3 and 2 < state_ratio["torch.optim.Adam"] < 2.01
'''
