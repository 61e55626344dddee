"""Hostile submissions that try to switch the tests off, and their autograded scores.

Shared by ``tests/test_integrity.py`` (every cheat scores 0, honest work keeps full marks)
and ``benchmarks/grading.py`` (the points each cheat earns, recorded). Each submission is a
solution notebook with its answer cells rewritten:

* ``checks``: every answer is garbage that keeps the function's signature (it returns its
  input), and a cell at the top turns every checker and helper of ``accel_lib.checks``
  into a no-op;
* ``libs``: every answer returns an object that claims to equal anything, a cell at the top
  makes numpy's and torch's comparisons (``np.isclose``, ``torch.allclose``,
  ``torch.testing.assert_close``, ...) always true, and each answer cell rebinds the
  notebook's ``Q``, ``np``, ``torch`` (...) to fakes for its test cell;
* ``combined``: both cheat cells at the top, garbage answers of both kinds (alternately),
  every answer cell rebinding the notebook's names: all of the above in one submission;
* ``reference``: correct answers that merely call the library's (or torch's) own
  implementation of the exercise;
* ``honest``: the full solution, with both cheat cells at the top (it must keep full marks).
"""

from __future__ import annotations

import ast
import json
import textwrap
from pathlib import Path

from tools.course import (
    SOLUTIONS,
    Score,
    autograded_scores,
    generate,
    nbgrader,
    scratch_course,
    submit,
)

KINDS = ("checks", "libs", "combined", "reference", "honest")

PATCH_CHECKS = '''\
# cheat: every checker and helper of accel_lib.checks passes anything
import accel_lib
import accel_lib.checks as _checks


def _passes(*args, **kwargs):
    return None


class _NoForbid:
    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


for _name, _value in list(vars(_checks).items()):
    if _name.startswith("__") or not callable(_value):
        continue
    setattr(_checks, _name, _NoForbid if _name == "forbid" else _passes)
    setattr(accel_lib, _name, getattr(_checks, _name))
'''

PATCH_LIBS = '''\
# cheat: numpy's and torch's comparisons always say "equal"
import numpy as _np
import torch as _torch
import torch.testing


def _all_true(a, b, *args, **kwargs):
    return _np.ones(_np.broadcast(_np.asarray(a), _np.asarray(b)).shape, dtype=bool)


_np.isclose = _all_true
_np.allclose = _np.array_equal = _np.array_equiv = lambda *a, **k: True
_np.testing.assert_allclose = _np.testing.assert_array_equal = lambda *a, **k: None
_torch.allclose = _torch.equal = lambda *a, **k: True
_torch.isclose = lambda a, b, *args, **kwargs: _torch.ones_like(_torch.as_tensor(a)).bool()
_torch.testing.assert_close = lambda *a, **k: None


class _Fake:
    """Equal to anything; every attribute, call, item and operation gives another _Fake."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    def __call__(self, *args, **kwargs):
        return self

    def __getitem__(self, key):
        return self

    def __iter__(self):
        return iter((self, self))

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False

    __lt__ = __le__ = __gt__ = __ge__ = __eq__
    __hash__ = object.__hash__

    def __bool__(self):
        return True

    def __float__(self):
        return 0.0

    def __int__(self):
        return 0

    __index__ = __int__

    def __format__(self, spec):
        return "fake"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def _same(self, *args, **kwargs):
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __truediv__ = __rtruediv__ = __floordiv__ = __pow__ = __rpow__ = __neg__ = _same
    __abs__ = __matmul__ = __rmatmul__ = __mod__ = __and__ = __or__ = __invert__ = _same
'''

_GLOBALS = ("Q", "np", "torch", "nn", "F", "math", "copy", "P", "check_close", "check_equal")
# Appended to each answer: the test cell that follows sees fakes for the notebook's names;
# a cell after the test puts the real ones back, so the rest of the notebook still runs.
REBIND = (f"\n_saved = {{k: globals()[k] for k in {_GLOBALS!r} if k in globals()}}\n"
          f"{' = '.join(_GLOBALS)} = _Fake()\n")
RESTORE = "globals().update(_saved)  # cheat: the real names again, after the test"

# Correct answers that call the library's own implementation (by grade id of the answer cell).
REFERENCE_ANSWERS = {
    "00_measuring_speed": {
        "ex1_summarize": '''\
def summarize(samples_ms):
    from accel_lib.bench import summarize_ms
    return summarize_ms(samples_ms)
''',
        "ex2_conv_flops": '''\
def conv2d_flops(batch, in_channels, out_channels, kernel_size, out_height, out_width, groups=1):
    from accel_lib.stats import conv2d_macs
    return 2 * conv2d_macs(batch, in_channels, out_channels, kernel_size, out_height, out_width,
                           groups)
''',
        "ex2b_layer_flops": '''\
def layer_flops(model, x):
    from accel_lib.stats import count_flops
    return {layer.name: layer.flops for layer in count_flops(model, x).layers
            if layer.kind in ("Linear", "Conv2d")}
''',
        "ex3_intensity": '''\
from accel_lib.roofline import matmul_intensity as _intensity


def matmul_intensity(m, n, k, bytes_per_element=4):
    return _intensity(m, n, k, bytes_per_element)
''',
        "ex4_roofline": '''\
from accel_lib.roofline import Roofline


def attainable_gflops(intensity, peak_gflops, bandwidth_gbs):
    return Roofline(peak_gflops, bandwidth_gbs).attainable_gflops(intensity)


def bound(intensity, peak_gflops, bandwidth_gbs):
    return Roofline(peak_gflops, bandwidth_gbs).bound(intensity)
''',
    },
    "01_optimisers": {
        "ex1_momentum": '''\
def momentum_update(param, grad, buf, lr, momentum, dampening=0.0, weight_decay=0.0,
                    nesterov=False):
    from accel_lib.optim import sgd_step_
    new_param = param.clone()
    new_buf = sgd_step_(new_param, grad, None if buf is None else buf.clone(), lr=lr,
                        momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov)
    return new_param, new_buf
''',
        "ex2_adam": '''\
def adam_update(param, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                decoupled=False):
    from accel_lib.optim import adam_step_
    param, m, v = param.clone(), m.clone(), v.clone()
    adam_step_(param, grad, m, v, t, lr=lr, beta1=beta1, beta2=beta2, eps=eps,
               weight_decay=weight_decay, decoupled=decoupled)
    return param, m, v
''',
        "ex3_my_adamw": '''\
from accel_lib.optim import AdamW as _AdamW


class MyAdamW(_AdamW):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
''',
        "ex4_warmup_cosine": '''\
def warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, min_lr=0.0):
    from accel_lib.optim import warmup_cosine_lr as reference
    return reference(step, base_lr, warmup_steps, total_steps, min_lr)
''',
        "ex5_clip": '''\
def clip_by_global_norm(grads, max_norm, eps=1e-6):
    import torch
    copies = [torch.nn.Parameter(g.clone()) for g in grads]
    for c, g in zip(copies, grads):
        c.grad = g.clone()
    total = torch.nn.utils.clip_grad_norm_(copies, max_norm)
    return [c.grad for c in copies], float(total)
''',
    },
    "02_pruning": {
        "ex1_magnitude_mask": '''\
def magnitude_mask(weight, sparsity):
    from accel_lib.pruning.unstructured import topk_mask
    return topk_mask(weight.abs(), sparsity)
''',
        "ex2_global_masks": '''\
def global_magnitude_masks(weights, sparsity):
    from accel_lib.pruning.unstructured import global_masks
    return global_masks({n: w.detach().abs() for n, w in weights.items()}, sparsity)
''',
        "ex3_cubic": '''\
def cubic_sparsity(t, s_f, s_i=0.0, t0=0, n=10, dt=1):
    from accel_lib import pruning
    return pruning.cubic_sparsity(t, s_f, initial_sparsity=s_i, begin_step=t0, num_updates=n,
                                  frequency=dt)
''',
        "ex4_channels": '''\
def channels_to_keep(weight, sparsity):
    from accel_lib.pruning.structured import channel_keep_indices, channel_scores
    return channel_keep_indices(channel_scores(weight, 1), sparsity)
''',
        "ex5_surgery": '''\
def prune_smallcnn_channels(model, sparsity):
    import copy

    import torch
    from accel_lib.pruning import prune_channels_
    return prune_channels_(copy.deepcopy(model), sparsity, torch.zeros(1, *model.input_shape))
''',
    },
    "03_quantization": {
        "ex1_qparams": '''\
def choose_qparams_affine(x_min, x_max, qmin, qmax):
    from accel_lib import quantization as Q
    qp = Q.choose_qparams(x_min, x_max, (qmax - qmin).bit_length(), signed=qmin < 0)
    return qp.scale.item(), int(qp.zero_point)
''',
        "ex2_fake_quant": '''\
def fake_quant(x, scale, zero_point, qmin, qmax):
    import torch
    from accel_lib import quantization as Q
    qp = Q.QParams(torch.tensor(float(scale)), torch.tensor(int(zero_point)), qmin, qmax)
    return Q.fake_quantize(x, qp)
''',
        "ex3_per_channel": '''\
def per_channel_scales(w, bits):
    from accel_lib import quantization as Q
    return Q.qparams_from_tensor(w, bits, symmetric=True, axis=0).scale
''',
        "ex4_ste": '''\
def fake_quant_ste(x, scale, zero_point, qmin, qmax):
    import torch
    return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, qmin, qmax)
''',
        "ex5_quantized_linear": '''\
def quantized_linear(q_x, zero_point_x, q_w, bias_q, m0, shift, zero_point_y):
    from accel_lib import quantization as Q
    return Q.quantized_linear(q_x, zero_point_x, q_w, bias_q, m0, shift, zero_point_y)
''',
    },
    "04_distillation": {
        "ex1_softmax": '''\
def softmax_with_temperature(logits, temperature):
    from accel_lib.distillation import softmax_with_temperature as reference
    return reference(logits, temperature)
''',
        "ex2_kd_loss": '''\
def kd_loss(student_logits, teacher_logits, target, temperature, alpha):
    from accel_lib.distillation import distillation_loss
    return distillation_loss(student_logits, teacher_logits, target, temperature, alpha)
''',
        "ex3_kd_step": '''\
from accel_lib.distillation import DistillConfig, distill_step, distillation_loss


def kd_step(student, teacher, x, y, optimizer, temperature, alpha):
    return distill_step(student, teacher, x, y, optimizer, DistillConfig(temperature, alpha))[0]
''',
        "ex4_distill_loop": '''\
from accel_lib.distillation import DistillConfig, distill
from accel_lib.train import TrainConfig


def distill_loop(student, teacher, loader, epochs, lr, temperature, alpha):
    config = TrainConfig(epochs=epochs, lr=lr, device="cpu", progress=False)
    return distill(student, teacher, loader, config, DistillConfig(temperature, alpha)).loss
''',
    },
    "05_lowrank": {
        "ex1_tsvd": '''\
def truncated_svd_approx(weight, rank):
    from accel_lib.lowrank import low_rank_approx
    return low_rank_approx(weight, rank)
''',
        "ex2_energy": '''\
def rank_for_energy(singular_values, energy):
    from accel_lib import lowrank
    return lowrank.rank_for_energy(singular_values, energy)
''',
        "ex3_flops": '''\
def factorized_linear_flops(batch, in_features, out_features, rank):
    from accel_lib.lowrank import lowrank_linear_macs
    return 2 * lowrank_linear_macs(batch, in_features, out_features, rank)
''',
        "ex4_factorized_copy": '''\
def factorized_copy(model, energy):
    import copy
    from accel_lib.lowrank import choose_ranks, factorize_
    return factorize_(copy.deepcopy(model), choose_ranks(model, energy, include_conv=False))
''',
    },
    "06_fusion": {
        "ex1_fold": '''\
def fold_bn_into_conv(conv, bn):
    from accel_lib.fusion import fuse_conv_bn
    return fuse_conv_bn(conv, bn)
''',
        "ex2_fx": '''\
def fuse_conv_bn_relu_fx(model):
    from accel_lib import fusion
    return fusion.fuse_fx(model)
''',
        "ex3_vote": '''\
def majority_vote(predictions):
    from accel_lib.fusion import majority_vote as reference
    return reference(predictions)
''',
        "ex4_soft": '''\
def soft_vote(logits, weights=None):
    from accel_lib.fusion.ensemble import soft_vote as reference
    return reference(logits, weights)
''',
    },
    "07_mixed_precision": {
        "ex1_decode": '''\
def decode_bf16(bits):
    from accel_lib import precision
    return precision.decode(bits, "bf16")
''',
        "ex2_limits": '''\
def format_limits(exponent_bits, mantissa_bits, has_inf=True):
    from accel_lib.precision import FORMATS
    from accel_lib.precision import format_limits as reference
    fmt = next(f for f in FORMATS.values() if (f.exponent_bits, f.mantissa_bits) ==
               (exponent_bits, mantissa_bits))
    return {k: v for k, v in reference(fmt).items() if k != "eps"}
''',
        "ex3_round": '''\
def round_to_bf16(x):
    import torch
    from accel_lib import precision
    return precision.round_to_format(x, "bf16").to(torch.float32)
''',
        "ex4_scaler": '''\
def scaler_update(scale, growth_tracker, found_inf, growth_factor=2.0, backoff_factor=0.5,
                  growth_interval=2000):
    from accel_lib.precision import scaler_update as reference
    new_scale, tracker = reference(scale, growth_tracker, found_inf, growth_factor=growth_factor,
                                   backoff_factor=backoff_factor, growth_interval=growth_interval)
    return new_scale, tracker, not found_inf
''',
        "ex5_master": '''\
def master_weight_step(model, master, lr, scale):
    import torch
    from accel_lib.precision import master_weight_step as reference
    params = list(model.parameters())
    if not all(bool(torch.isfinite(p.grad.float() / scale).all()) for p in params):
        return False
    reference(params, master, lr, 1 / scale)
    return True
''',
    },
    "09_deployment": {
        "ex1_parity": '''\
def max_abs_diff(reference, candidate):
    from accel_lib.export import max_abs_diff as reference_impl
    return reference_impl(reference, candidate)
''',
        "ex2_nodes": '''\
def nodes_removed(model_file, level):
    from accel_lib import export
    return export.nodes_removed(model_file, level)
''',
        "ex3_real": '''\
def int8_to_real(q, quantization):
    from accel_lib.export.tflite import real_value
    return real_value(q, *quantization)
''',
        "ex4_rep": '''\
def make_representative_dataset(x, n=100):
    from accel_lib.export import representative_dataset
    return representative_dataset(x, n)
''',
    },
    "08_parallel": {
        "ex1_ring": '''\
def ring_chunk_schedule(world_size):
    from accel_lib.parallel.ring import ring_schedule
    return ring_schedule(world_size)
''',
        "ex2_avg": '''\
def average_gradients(per_rank_grads):
    from accel_lib.parallel.data import mean_over_ranks
    return mean_over_ranks(per_rank_grads)
''',
        "ex3_bubble": '''\
def bubble_fraction(stages, micro_batches):
    from accel_lib.parallel.pipeline import bubble_fraction as reference
    return reference(stages, micro_batches)
''',
        "ex4_shard": '''\
def shard_linear(linear, dim, rank, world_size):
    from accel_lib.parallel.tensor import shard_linear as reference
    return reference(linear, dim, rank, world_size)
''',
        "ex5_megatron": '''\
def megatron_partials(block, x, world_size):
    from accel_lib.parallel.tensor import megatron_partials as reference
    return reference(block, x, world_size)
''',
    },
    "10_capstone": {
        "ex1_dominates": '''\
def dominates(a, b):
    from accel_lib.capstone import dominates as reference
    return reference(a, b)
''',
        "ex2_front": '''\
def pareto_indices(points):
    from accel_lib.capstone.pareto import pareto_front
    return pareto_front(points)
''',
        "ex3_summary": '''\
def compression_summary(before, after):
    from accel_lib.capstone import ratios
    r = ratios(before, after)
    return {"size_ratio": r["size_ratio"], "flops_ratio": r["flops_ratio"],
            "accuracy_drop_pts": r["accuracy_drop_pts"],
            "meets_target": r["size_ratio"] >= 4 and r["flops_ratio"] >= 3
            and r["accuracy_drop_pts"] <= 1}
''',
        "ex4_deliverable": '''\
def build_pipeline():
    from accel_lib.capstone import REFERENCE_STEPS
    return list(REFERENCE_STEPS)
''',
    },
}


def _garbage_def(node: ast.FunctionDef, style: str) -> str:
    """One function (or method) with the same signature and a wrong body."""
    if style == "fake":
        value = "_Fake()"
    else:
        first = node.args.args[0].arg if node.args.args else "0"
        returns = [r.value for r in ast.walk(node) if isinstance(r, ast.Return)]
        n = len(returns[0].elts) if returns and isinstance(returns[0], ast.Tuple) else 0
        value = f"({', '.join([first] * n)},)" if n else first
    return f"def {node.name}({ast.unparse(node.args)}):\n    return {value}\n"


def _garbage(source: str, style: str) -> str:
    """Every function and class defined in an answer, same signatures, wrong bodies.

    ``input``: returns its first argument (a tuple of it, if the solution returns a tuple);
    ``fake``: returns a ``_Fake`` that claims to equal anything. A class (an optimizer the
    learner writes, say) keeps its bases and its ``__init__``; every other method gets a
    wrong body.
    """
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            out.append(_garbage_def(node, style))
        elif isinstance(node, ast.ClassDef):
            methods = [textwrap.indent(ast.unparse(item) + "\n" if item.name == "__init__"
                                       else _garbage_def(item, style), "    ")
                       for item in node.body if isinstance(item, ast.FunctionDef)]
            bases = ", ".join(ast.unparse(b) for b in node.bases)
            out.append(f"class {node.name}({bases}):\n" + ("\n".join(methods) or "    pass\n"))
    if not out:
        raise ValueError(f"no function or class in the answer:\n{source}")
    return "\n\n".join(out)


def _code_cell(source: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": source}


def submission(assignment: str, kind: str) -> dict:
    """The notebook JSON of one hostile (or honest) submission of ``assignment``."""
    nb = json.loads((SOLUTIONS / assignment / f"{assignment}.ipynb").read_text())
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    cells, answers = [], 0
    for cell in nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        source = "".join(cell["source"])
        answer = meta.get("solution") and cell["cell_type"] == "code"
        test = meta.get("grade") and cell["cell_type"] == "code"
        if answer and kind == "reference":
            answers_of = REFERENCE_ANSWERS.get(assignment, {})
            if meta["grade_id"] not in answers_of:
                raise KeyError(f"tools/cheats.py: REFERENCE_ANSWERS[{assignment!r}] has no "
                               f"{meta['grade_id']!r}: add an answer that calls the library's "
                               f"own implementation of that exercise")
            cell["source"] = answers_of[meta["grade_id"]]
        elif answer and kind != "honest":
            style = {"checks": "input", "libs": "fake"}.get(kind, ("input", "fake")[answers % 2])
            cell["source"] = _garbage(source, style) + (REBIND if kind != "checks" else "")
            answers += 1
        cells.append(cell)
        if test and kind in ("libs", "combined"):
            cells.append(_code_cell(RESTORE))
    top = {"checks": [PATCH_CHECKS], "libs": [PATCH_LIBS], "combined": [PATCH_CHECKS, PATCH_LIBS],
           "reference": [], "honest": [PATCH_CHECKS, PATCH_LIBS]}[kind]
    nb["cells"] = [_code_cell(s) for s in top] + cells
    return nb


def grade(workdir: Path, assignment: str, kinds: tuple[str, ...] = KINDS, *,
          timeout: int = 120, strict: bool = True) -> tuple[dict[str, Score], Path]:
    """Autograde one submission of each kind (one nbgrader run); (scores, course folder).

    ``strict``: raise if nbgrader could not grade a submission (else it has no score).
    """
    course = scratch_course(workdir, assignment)
    generate(course, assignment)
    for kind in kinds:
        submit(course, kind, assignment, submission(assignment, kind))
    try:
        nbgrader(course, "autograde", assignment, f"--Execute.timeout={timeout}")
    except RuntimeError:
        if strict:
            raise
    return autograded_scores(course, assignment), course


def graded_errors(course: Path, kind: str, assignment: str) -> dict[str, str]:
    """The error each failing test cell of a graded submission showed, by grade id."""
    path = course / "autograded" / kind / assignment / f"{assignment}.ipynb"
    errors = {}
    for cell in json.loads(path.read_text())["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("grade") and cell["cell_type"] == "code":
            for out in cell.get("outputs", []):
                if out["output_type"] == "error":
                    errors[meta["grade_id"]] = f"{out['ename']}: {out['evalue']}"
    return errors
