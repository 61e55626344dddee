"""Mixed precision (notebook 07): 16-bit matmul speed, autocast accuracy, layout, sums, scaler.

Speed figures are ratios measured side by side (accel_lib.bench.compare, interleaved
samples) in one process; the notes name the CPU and PyTorch's CPU capability, because the
bf16 ratio depends on the chip (AVX-512 BF16 / AMX: faster than fp32; AVX2 only: ~100x
slower). :func:`gpu_records` gives the CUDA rows (``make gpu-check``); :func:`records`
includes them when a GPU is present.
"""

from __future__ import annotations

import math

import torch

from accel_lib import precision as PR
from accel_lib.bench import compare
from accel_lib.data import digits_loaders
from accel_lib.models import SmallCNN
from accel_lib.runtime import set_seed

from .record import Record

MATMUL_N = 2048
SUM_TERMS = 10**6


def _cpu() -> str:
    r = PR.hardware_report()
    flags = ", ".join(r.flags) if r.flags is not None else "unknown"
    return (f"{r.cpu_model}, torch CPU capability {r.cpu_capability}, flags: {flags}; "
            f"{torch.get_num_threads()} threads")


def _matmul_ratio(dtype: torch.dtype, device: str, n: int, repeats: int) -> tuple[float, str]:
    g = torch.Generator().manual_seed(0)
    a32, b32 = (torch.randn(n, n, generator=g).to(device) for _ in range(2))
    a, b = a32.to(dtype), b32.to(dtype)
    r = compare(lambda: a32 @ b32, lambda: a @ b, warmup=1, repeats=repeats, device=device,
                verbose=False)
    return r.speedup, f"{r.baseline.median_ms:.1f} vs {r.optimized.median_ms:.1f} ms"


def _matmul_records() -> list[Record]:
    out = []
    for dt, short in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        ratio, ms = _matmul_ratio(dt, "cpu", MATMUL_N, 5)
        out.append(Record(f"precision/{short}-matmul-speed-ratio", ratio, "x", 1.0,
                          f"{MATMUL_N}^3 matmul, fp32 time / {short} time (> 1: {short} faster), "
                          f"CPU ({ms}), median of 5 interleaved samples; {_cpu()}"))
    return out


def _amp_record() -> Record:
    loaders = digits_loaders(64)
    set_seed(0)
    res = PR.compare_precisions(SmallCNN(), loaders, (None, torch.bfloat16), "cpu", epochs=5)
    drop = 100 * (res["float32"].accuracy - res["bfloat16"].accuracy)
    return Record("precision/amp-bf16-train-accuracy-drop-pts", drop, "pts", 0.0,
                  f"SmallCNN on the digits, Adam lr 1e-2, 5 epochs, seed 0: fp32 test accuracy "
                  f"{100 * res['float32'].accuracy:.2f}% minus torch.autocast(cpu, bfloat16) "
                  f"{100 * res['bfloat16'].accuracy:.2f}% (one test image = "
                  f"{100 / len(loaders.test.dataset):.2f} pts)")


def _layout_record(device: str = "cpu") -> Record:
    from torchvision.models import resnet18

    set_seed(0)
    t = PR.channels_last_timing(resnet18(num_classes=10), (3, 64, 64), batch_size=64,
                                device=device, repeats=10)
    where = "CPU" if device == "cpu" else torch.cuda.get_device_name(0)
    name = "precision/channels-last-speedup" + ("" if device == "cpu" else "-gpu")
    return Record(name, t.speedup, "x", 1.0,
                  f"ResNet-18 inference, batch 64 x 3x64x64, fp32, {where}: NCHW time / "
                  f"channels_last time ({t.contiguous_ms:.1f} vs {t.channels_last_ms:.1f} ms, "
                  f"median of 10 interleaved samples), max |diff| {t.max_abs_diff:.1e}")


def _sum_record() -> Record:
    x = torch.rand(SUM_TERMS, generator=torch.Generator().manual_seed(0)) * 0.1
    exact = float(x.to(torch.float16).double().sum())
    naive = PR.relative_error(PR.naive_sum(x), exact)
    fp32 = PR.relative_error(PR.fp32_accumulated_sum(x), exact)
    pair = PR.relative_error(PR.pairwise_sum(x), exact)
    return Record("precision/fp16-sum-relative-error", naive, "rel", fp32,
                  f"sum of 1e6 fp16 terms uniform in [0, 0.1): left-to-right with an fp16 "
                  f"accumulator (value) vs an fp32 accumulator (baseline); pairwise in fp16: "
                  f"{pair:.1e}; exact = float64 sum of the fp16 terms")


def _scaler_record() -> Record:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(300, generator=g).tolist()
    for i in torch.randint(0, 300, (30,), generator=g).tolist():
        grads[i] = [math.inf, -math.inf, math.nan, 1e36][i % 4]
    kw = dict(init_scale=2.0**16, growth_interval=7)
    ours, theirs = PR.loss_scaler_decisions(grads, **kw), PR.grad_scaler_decisions(grads, **kw)
    match = sum(a == b for a, b in zip(ours, theirs, strict=True)) / len(ours)
    skipped = sum(s for _, s in theirs)
    return Record("precision/loss-scaler-decisions-match", match, "fraction", 1.0,
                  f"accel_lib LossScaler vs torch.amp.GradScaler('cpu') on 300 steps with 30 "
                  f"injected inf/NaN/1e36 gradients, growth_interval 7: fraction of steps with "
                  f"the same (scale, skipped) ({skipped} skipped)")


def gpu_records() -> list[Record]:
    """The CUDA rows: 16-bit matmul on tensor cores, TF32 on/off, autocast fp16, layout."""
    if not torch.cuda.is_available():
        return []
    name = torch.cuda.get_device_name(0)
    sm = "sm_{}{}".format(*torch.cuda.get_device_capability(0))
    out = []
    for dt, short in ((torch.bfloat16, "bf16"), (torch.float16, "fp16")):
        ratio, ms = _matmul_ratio(dt, "cuda", 8192, 10)
        out.append(Record(f"precision/gpu-{short}-matmul-speed-ratio", ratio, "x", 1.0,
                          f"8192^3 matmul on {name} ({sm}), fp32 (TF32 "
                          f"{'on' if torch.backends.cuda.matmul.allow_tf32 else 'off'}) time / "
                          f"{short} time ({ms})"))
    out.append(Record("precision/gpu-tf32-speedup", PR.tf32_ratio(8192, 10), "x", 1.0,
                      f"8192^3 fp32 matmul on {name}: TF32 off / TF32 on"))
    loaders = digits_loaders(64)
    res = PR.compare_precisions(SmallCNN(), loaders, (None, torch.float16, torch.bfloat16),
                                "cuda", epochs=5)
    for short, key in (("fp16", "float16"), ("bf16", "bfloat16")):
        drop = 100 * (res["float32"].accuracy - res[key].accuracy)
        out.append(Record(f"precision/gpu-amp-{short}-train-accuracy-drop-pts", drop, "pts", 0.0,
                          f"SmallCNN on the digits, 5 epochs on {name}: fp32 minus autocast "
                          f"{key} test accuracy ({res[key].skipped_steps} steps skipped)"))
    out.append(_layout_record("cuda"))
    return out


def records() -> list[Record]:
    return [*_matmul_records(), _amp_record(), _layout_record(), _sum_record(),
            _scaler_record(), *gpu_records()]
