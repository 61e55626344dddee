"""Fusion: conv-BN folding, the fx pass, torch.compile, XLA, and model fusion (notebook 06).

Speed figures are ratios measured side by side (accel_lib.bench.compare, interleaved
samples) in one process. Compile times are wall times of the first call, compiled from
scratch (a reset dynamo, inductor's graph caches off); the cold one runs in a fresh process
with an empty inductor cache. TensorFlow is imported last, after torch and triton.
The model-fusion figures follow notebook 06's protocol on the digits.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from accel_lib import fusion as FU
from accel_lib.bench import compare
from accel_lib.data import digits_loaders
from accel_lib.distillation import DistillConfig, distill
from accel_lib.models import MLP, SmallCNN
from accel_lib.runtime import set_seed
from accel_lib.train import TrainConfig, evaluate, train

from .record import Record

ROOT = Path(__file__).resolve().parents[1]
CHAIN_LINKS, CHAIN_NUMEL = 8, 1 << 20


def _threads() -> str:
    return f"fp32 CPU, {torch.get_num_threads()} threads"


def _random_bn_(model: torch.nn.Module) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.5)
    return model.eval()


def _folding_records() -> list[Record]:
    set_seed(0)
    cnn = _random_bn_(SmallCNN(channels=(16, 32)))
    folded = FU.fold_bn_(copy.deepcopy(cnn))
    out = []
    for batch in (1, 64):
        x = torch.randn(batch, 1, 8, 8)
        with torch.no_grad():
            r = compare(lambda: cnn(x), lambda: folded(x), warmup=10, repeats=60, verbose=False)  # noqa: B023
        out.append(Record(f"fusion/conv-bn-fold-speedup-bs{batch}", r.speedup, "x", 1.0,
                          f"SmallCNN(16, 32) on 8x8 digits-shaped input, batch {batch}, conv+BN "
                          f"vs folded conv (FU.fold_bn_), {_threads()}, median of 60 "
                          f"interleaved samples ({r.baseline.median_ms:.3f} vs "
                          f"{r.optimized.median_ms:.3f} ms)"))
    from torchvision.models import resnet18

    resnet = _random_bn_(resnet18(num_classes=10))
    fused = FU.fuse_fx(resnet)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        diff = (fused(x) - resnet(x)).abs().max().item()
    ops = FU.count_ops(fused)
    out.append(Record("fusion/fx-pass-max-abs-diff", diff, "abs", 1e-5,
                      f"ResNet-18 (random weights and BN statistics), 2x3x64x64: max |fused - "
                      f"original| after FU.fuse_fx ({ops.get('ConvReLU', 0)} ConvReLU, "
                      f"{ops.get('BatchNorm2d', 0)} BatchNorm2d left); baseline = tolerance"))
    return out


def _compile_records() -> list[Record]:
    ok, why = FU.compiler_available("cpu")
    if not ok:
        print(f"fusion: skipping torch.compile records: {why}", file=sys.stderr)
        return []
    set_seed(0)
    cnn = _random_bn_(SmallCNN(channels=(16, 32)))
    mlp = MLP(hidden_sizes=(1024, 1024)).eval()
    results = {
        "elementwise-chain": FU.compile_and_compare(FU.elementwise_chain(CHAIN_LINKS),
                                                    torch.randn(CHAIN_NUMEL), repeats=30),
        "mlp": FU.compile_and_compare(mlp, torch.randn(256, 64), repeats=30),
        "cnn": FU.compile_and_compare(cnn, torch.randn(64, 1, 8, 8), repeats=30),
    }
    what = {"elementwise-chain": f"relu(x * 1.01 - 0.01) x {CHAIN_LINKS} on {CHAIN_NUMEL:,} "
                                 f"floats (24 elementwise ops)",
            "mlp": "MLP 64-1024-1024-10, batch 256 (GEMM-bound)",
            "cnn": "SmallCNN(16, 32), batch 64"}
    out = [Record(f"fusion/compile-speedup-{key}", r.speedup, "x", None,
                  f"{what[key]}: eager vs torch.compile (inductor, default mode), {_threads()}, "
                  f"median of 30 interleaved samples ({r.baseline_ms:.3f} vs {r.compiled_ms:.3f} "
                  f"ms); max |diff| {r.max_abs_diff:.1e}")
           for key, r in results.items()]
    cnn_r = results["cnn"]
    out.append(Record("fusion/compile-seconds-cnn", cnn_r.compile_s, "s", None,
                      f"first call of torch.compile(SmallCNN(16, 32)) at batch 64, in a process "
                      f"that has compiled before, graph caches off; {cnn_r.kernels_built} of "
                      f"{cnn_r.kernels} kernels built (the rest loaded from inductor's disk "
                      f"cache); pays back "
                      f"after {cnn_r.breakeven_calls:,.0f} calls"))
    out += _cold_compile_records()
    return out


_COLD = """
import json, time
t0 = time.perf_counter()
import torch
from accel_lib.fusion import compile_and_compare, compiler_available
from accel_lib.models import SmallCNN
import_s = time.perf_counter() - t0
t0 = time.perf_counter()
ok, why = compiler_available("cpu")
startup_s = time.perf_counter() - t0
r = compile_and_compare(SmallCNN(channels=(16, 32)).eval(), torch.randn(64, 1, 8, 8), repeats=3)
print(json.dumps({"import_s": import_s, "startup_s": startup_s, "compile_s": r.compile_s,
                  "kernels": r.kernels, "built": r.kernels_built}))
"""


def _cold_compile_records() -> list[Record]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        proc = subprocess.run([sys.executable, "-c", _COLD], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=600)
    if proc.returncode != 0:
        print(f"fusion: cold compile failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return []
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    return [Record("fusion/compile-seconds-cnn-cold", got["compile_s"], "s", None,
                   f"torch.compile(SmallCNN(16, 32)) in a fresh process with an empty inductor "
                   f"cache: {got['built']} of {got['kernels']} kernels built; before it, the "
                   f"process's first compile (a one-line function) took {got['startup_s']:.1f} s "
                   f"(compiler start-up: CPU ISA probes, headers) and importing torch "
                   f"{got['import_s']:.1f} s")]


def _xla_records() -> list[Record]:
    tf = FU.import_tensorflow(threads=torch.get_num_threads())
    set_seed(0)
    mlp = MLP(hidden_sizes=(1024, 1024)).eval()
    keras_mlp = FU.keras_mlp_from_torch(mlp)
    x = tf.random.normal((256, 64))
    results = {
        "mlp": FU.xla_compare(lambda t: keras_mlp(t, training=False), x, repeats=30),
        "elementwise": FU.xla_compare(FU.tf_elementwise_chain(CHAIN_LINKS),
                                      tf.random.normal((CHAIN_NUMEL,)), repeats=30),
    }
    what = {"mlp": "Keras MLP 64-1024-1024-10 (the PyTorch MLP's weights), batch 256",
            "elementwise": f"relu(x * 1.01 - 0.01) x {CHAIN_LINKS} on {CHAIN_NUMEL:,} floats"}
    return [Record(f"fusion/xla-speedup-{key}", r.speedup, "x", None,
                   f"{what[key]}: tf.function vs tf.function(jit_compile=True), TensorFlow "
                   f"{tf.__version__} on CPU, {torch.get_num_threads()} intra-op threads, median "
                   f"of 30 interleaved samples ({r.baseline_ms:.3f} vs {r.compiled_ms:.3f} ms); "
                   f"XLA compile {r.compile_s:.2f} s")
            for key, r in results.items()]


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return (logits.argmax(-1) == y).float().mean().item()


def _model_fusion_records() -> list[Record]:
    splits = digits_loaders(batch_size=64, seed=0)
    x_test = torch.cat([x for x, _ in splits.test])
    y_test = torch.cat([y for _, y in splits.test])
    def shuffled(seed: int) -> DataLoader:  # each model its own data order, as in notebook 06
        return DataLoader(splits.train.dataset, batch_size=64, shuffle=True,
                          generator=torch.Generator().manual_seed(seed))

    members = []
    for seed in range(5):
        set_seed(seed)
        m = SmallCNN(channels=(4, 8))
        train(m, shuffled(seed), TrainConfig(epochs=6, lr=3e-3, device="cpu", progress=False))
        members.append(m.eval())
    logits = FU.member_logits(members, x_test)
    member_acc = [_accuracy(z, y_test) for z in logits]
    soft = _accuracy(FU.soft_vote(logits), y_test)
    hard = (FU.majority_vote(logits.argmax(-1), 10) == y_test).float().mean().item()
    indep_soup = evaluate(FU.uniform_soup(members), splits.test)

    set_seed(10)
    base = SmallCNN(channels=(4, 8))
    train(base, shuffled(10), TrainConfig(epochs=3, lr=3e-3, device="cpu", progress=False))
    copies = []
    for i, lr in enumerate([1e-3, 2e-3, 3e-3, 1e-3, 2e-3]):
        set_seed(20 + i)
        c = copy.deepcopy(base)
        train(c, shuffled(100 + i), TrainConfig(epochs=3, lr=lr, device="cpu", progress=False))
        copies.append(c.eval())
    copy_acc = [evaluate(c, splits.test) for c in copies]
    soup = evaluate(FU.uniform_soup(copies), splits.test)

    config = TrainConfig(epochs=10, lr=3e-3, device="cpu", progress=False)
    set_seed(7)
    student = SmallCNN(channels=(4, 8))
    distill(student, FU.Ensemble(members), shuffled(7), config,
            DistillConfig(temperature=4.0, alpha=0.3))
    set_seed(7)
    scratch = SmallCNN(channels=(4, 8))
    train(scratch, shuffled(7), config)
    student_acc, scratch_acc = evaluate(student, splits.test), evaluate(scratch, splits.test)
    n = len(y_test)
    return [
        Record("fusion/ensemble-soft-vs-best-member-accuracy-pts",
               100 * (soft - max(member_acc)), "pts", None,
               f"digits test ({n} images, 1 image = {100 / n:.2f} pts): 5 SmallCNN(4, 8) seeds "
               f"0-4, members {[round(a, 3) for a in member_acc]}; soft vote {soft:.3f}, hard "
               f"vote {hard:.3f}; vs the mean member {100 * (soft - sum(member_acc) / 5):+.1f} "
               "pts"),
        Record("fusion/ensemble-distilled-student-accuracy", student_acc, "fraction",
               scratch_acc, f"SmallCNN(4, 8) distilled from the 5-member soft ensemble (T=4, "
               f"alpha=0.3, 10 epochs); baseline = the same student on labels alone; "
               f"ensemble {soft:.3f}"),
        Record("fusion/soup-vs-best-member-accuracy-pts", 100 * (soup - max(copy_acc)), "pts",
               None, f"uniform soup of 5 copies of one SmallCNN(4, 8) (3 epochs) each fine-tuned "
               f"3 more epochs (lr and data order differ): copies {[round(a, 3) for a in copy_acc]}"
               f", soup {soup:.3f}; the soup of the 5 independently seeded members scores "
               f"{indep_soup:.3f}"),
    ]


def records() -> list[Record]:
    return [*_folding_records(), *_compile_records(), *_model_fusion_records(),
            *_xla_records()]
