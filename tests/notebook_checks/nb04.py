"""Notebook 04 (distillation): wrong answers the visible tests must catch, and the claims
its printed explanations make about what it measured."""

from tests.notebook_checks import Mistake

_SOFTMAX = '''
def softmax_with_temperature(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
{body}
'''

_KD_LOSS = '''
def kd_loss(student_logits, teacher_logits, target, temperature, alpha):
    T = temperature
    hard = F.cross_entropy({ce_logits}, target)
    log_ps = F.log_softmax(student_logits / T, dim=1)
    log_pt = F.log_softmax({teacher} / T, dim=1)
    soft = F.kl_div({kl_args}, log_target=True, reduction="{reduction}")
    return {combine}
'''
_KD_RIGHT = dict(ce_logits="student_logits", teacher="teacher_logits.detach()",
                 kl_args="log_ps, log_pt", reduction="batchmean",
                 combine="alpha * hard + (1 - alpha) * T**2 * soft")


def _kd(**wrong: str) -> str:
    return _KD_LOSS.format(**{**_KD_RIGHT, **wrong})


_KD_STEP = '''
from accel_lib.distillation import distillation_loss

def kd_step(student, teacher, x, y, optimizer, temperature, alpha):
{body}
'''

_LOOP = '''
from accel_lib.distillation import distillation_loss

def distill_loop(student, teacher, loader, epochs, lr, temperature, alpha):
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
{epoch}
        total, seen, batch_means = 0.0, 0, []
        for x, y in loader:
            with torch.no_grad():
                teacher_logits = teacher(x)
{step}
            total += loss.item() * len(y)
            seen += len(y)
            batch_means.append(loss.item())
        losses.append({epoch_loss})
    return losses
'''
_LOOP_RIGHT = dict(
    epoch="        student.train()\n        teacher.eval()",
    step=("            optimizer.zero_grad()\n"
          "            loss = distillation_loss(student(x), teacher_logits, y,\n"
          "                                     temperature, alpha)\n"
          "            loss.backward()\n"
          "            optimizer.step()"),
    epoch_loss="total / seen")


def _loop(**wrong: str) -> str:
    return _LOOP.format(**{**_LOOP_RIGHT, **wrong})


MISTAKES = [
    # exercise 1: softmax at temperature T
    Mistake("ex1_softmax", "no max subtraction (overflows)", _SOFTMAX.format(body='''\
    e = torch.exp(logits / temperature)
    return e / e.sum(dim=-1, keepdim=True)'''), r"overflows.*NaN"),
    Mistake("ex1_softmax", "temperature applied after the softmax", _SOFTMAX.format(body='''\
    z = logits - logits.amax(dim=-1, keepdim=True)
    e = torch.exp(z)
    return e / e.sum(dim=-1, keepdim=True) / temperature'''), r"divide the logits by T"),
    Mistake("ex1_softmax", "max and sum along the batch axis", _SOFTMAX.format(body='''\
    z = logits / temperature
    e = torch.exp(z - z.amax(dim=0, keepdim=True))
    return e / e.sum(dim=0, keepdim=True)'''), r"each row is its own softmax.*dim=-1"),
    Mistake("ex1_softmax", "only temperature == 0 rejected", '''
def softmax_with_temperature(logits, temperature):
    if temperature == 0:
        raise ValueError("temperature must not be 0")
    z = logits / temperature
    e = torch.exp(z - z.amax(dim=-1, keepdim=True))
    return e / e.sum(dim=-1, keepdim=True)
''', r"temperature=-1.0 should raise ValueError"),
    # exercise 2: the distillation loss
    Mistake("ex2_kd_loss", "no T^2 factor", _kd(combine="alpha * hard + (1 - alpha) * soft"),
            r"T\^2 factor"),
    Mistake("ex2_kd_loss", "KL direction swapped", _kd(kl_args="log_pt, log_ps"),
            r"other direction"),
    Mistake("ex2_kd_loss", "reduction='mean' instead of batchmean", _kd(reduction="mean"),
            r"batchmean"),
    Mistake("ex2_kd_loss", "alpha weighs the soft term",
            _kd(combine="(1 - alpha) * hard + alpha * T**2 * soft"),
            r"alpha weighs the hard labels"),
    Mistake("ex2_kd_loss", "cross-entropy at temperature T", _kd(ce_logits="student_logits / T"),
            r"cross-entropy takes the logits at T=1"),
    Mistake("ex2_kd_loss", "teacher logits not detached", _kd(teacher="teacher_logits"),
            r"teacher's logits.*detach"),
    # exercise 3: one distillation step
    Mistake("ex3_kd_step", "no zero_grad (stale gradients)", _KD_STEP.format(body='''\
    teacher.eval()
    with torch.no_grad():
        t_logits = teacher(x)
    loss = distillation_loss(student(x), t_logits, y, temperature, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()'''), r"stale gradients.*zero_grad"),
    Mistake("ex3_kd_step", "zero_grad between backward and step", _KD_STEP.format(body='''\
    teacher.eval()
    with torch.no_grad():
        t_logits = teacher(x)
    loss = distillation_loss(student(x), t_logits, y, temperature, alpha)
    loss.backward()
    optimizer.zero_grad()
    optimizer.step()
    return loss.item()'''), r"student did not change"),
    Mistake("ex3_kd_step", "teacher left in training mode", _KD_STEP.format(body='''\
    with torch.no_grad():
        t_logits = teacher(x)
    optimizer.zero_grad()
    loss = distillation_loss(student(x), t_logits, y, temperature, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()'''), r"training mode.*teacher\.eval\(\)"),
    Mistake("ex3_kd_step", "teacher run with gradients on", _KD_STEP.format(body='''\
    teacher.eval()
    optimizer.zero_grad()
    loss = distillation_loss(student(x), teacher(x), y, temperature, alpha)
    loss.backward()
    optimizer.step()
    return loss.item()'''), r"gradients on.*no_grad"),
    Mistake("ex3_kd_step", "returns the loss tensor", _KD_STEP.format(body='''\
    teacher.eval()
    with torch.no_grad():
        t_logits = teacher(x)
    optimizer.zero_grad()
    loss = distillation_loss(student(x), t_logits, y, temperature, alpha)
    loss.backward()
    optimizer.step()
    return loss'''), r"loss\.item\(\), a float"),
    # exercise 4: the distillation loop
    Mistake("ex4_distill_loop", "no zero_grad", _loop(step=(
        "            loss = distillation_loss(student(x), teacher_logits, y, temperature, alpha)\n"
        "            loss.backward()\n"
        "            optimizer.step()")), r"epoch 0 .*zero the gradients"),
    Mistake("ex4_distill_loop", "a new optimizer every epoch", _loop(
        epoch=("        optimizer = torch.optim.Adam(student.parameters(), lr=lr)\n"
               "        student.train()\n        teacher.eval()")), r"build the optimizer once"),
    Mistake("ex4_distill_loop", "teacher left in training mode",
            _loop(epoch="        student.train()"), r"teacher ran in training mode"),
    Mistake("ex4_distill_loop", "student never put in training mode",
            _loop(epoch="        teacher.eval()"), r"student\.train\(\)"),
    Mistake("ex4_distill_loop", "epoch loss = mean of the batch means",
            _loop(epoch_loss="sum(batch_means) / len(batch_means)"), r"weight each batch's loss"),
    Mistake("ex4_distill_loop", "SGD instead of Adam", _loop().replace(
        "torch.optim.Adam(student.parameters(), lr=lr)",
        "torch.optim.SGD(student.parameters(), lr=lr)"), r"epoch 0 .*Adam"),
]

CLAIMS = '''
def _verdict(gap, noise=0.01):
    return "ahead of" if gap > noise else "behind" if gap < -noise else "level with"

# section 4: distilled against scratch, on test and along the validation curves
gain = distilled_acc - scratch_acc
assert ("beats the student trained alone" in kd_story) == (gain > 0.01), (kd_story, gain)
assert ("below the student trained alone" in kd_story) == (gain < -0.01), (kd_story, gain)
assert ("no clear difference" in kd_story) == (abs(gain) <= 0.01), (kd_story, gain)
early = distilled_hist.val_accuracy[9] - scratch_hist.val_accuracy[9]
final = distilled_hist.val_accuracy[-1] - scratch_hist.val_accuracy[-1]
assert f"10 epochs the distilled student was {_verdict(early)} the" in curve_story, curve_story
assert f"it is {_verdict(final)} it" in curve_story, curve_story
assert ("keeps improving after" in curve_story) == (early < -0.01 and final > 0.01), curve_story
# hints
h = hinted_acc - distilled_acc
assert ("hints helped" in hint_story) == (h > 0.01), (hint_story, h)
assert ("hints cost" in hint_story) == (h < -0.01), (hint_story, h)
assert ("hints changed little" in hint_story) == (abs(h) <= 0.01), (hint_story, h)
# the roofline: the speedup against the FLOP ratio
rates = points[1].achieved_gflops / points[0].achieved_gflops
assert abs(rates - cpu_speedup / flops_ratio) < 1e-9 * rates
s = cpu_speedup / flops_ratio
assert ("smaller than the FLOP ratio" in latency_story) == (s < 0.8), (latency_story, s)
assert ("larger than the FLOP ratio" in latency_story) == (s > 1.25), (latency_story, s)
assert ("about the FLOP ratio" in latency_story) == (0.8 <= s <= 1.25), (latency_story, s)
'''
