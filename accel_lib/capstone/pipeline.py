"""A compression pipeline: a sequence of steps, each a call into a technique package.

Every step's result is measured the same way and recorded in a :class:`StepRecord`:
accuracy on the test split, size in bytes (:func:`accel_lib.stats.state_size_bytes`, or
the file for an exported model), FLOPs of one example (:func:`accel_lib.stats.count_flops`)
and latency at batch 1 and 64 (:func:`accel_lib.bench.time_fn`). Nothing here implements
a technique: distillation, pruning, low rank, folding, quantization and export are the
course's packages, called with a step's ``strength``.

Quantized (integer) layers keep the FLOPs of the float layers they replace (the same
multiply-adds, done in int8), so a quantize step carries the FLOP count over.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._validate import check_choice, check_int, check_module, check_real
from ..bench import markdown_table, time_fn
from ..stats import count_flops, state_size_bytes
from ..train import TrainConfig, evaluate, train

__all__ = ["STEP_KINDS", "EXPORT_KINDS", "Step", "StepRecord", "PipelineData", "Pipeline",
           "RECORD_HEADER", "GPU_HEADER", "Exported", "apply_step", "gpu_device", "measure",
           "ratios"]

# kind -> what strength means (None: the step takes no strength)
STEP_KINDS = {
    "distill": "student width as a fraction of the teacher's channels, in (0, 1]",
    "prune": "fraction of each conv's channels removed (structured), in [0, 1)",
    "sparsify": "fraction of weights zeroed (unstructured, global), in [0, 1)",
    "lowrank": "energy kept by the truncated SVD, in (0, 1]",
    "fold": None,
    "ptq": "bits of weights and activations (8: integer layers)",
    "qat": "bits of weights and activations (8: integer layers)",
    "export": "None (float ONNX) or 8 (ONNX Runtime's static int8, calibrated on train data)",
    "tflite": "None (float32 TFLite), 16 (float16 weights) or 8 (full-integer int8, "
              "calibrated on train data)",
}
# the steps that hand the model to another runtime: last in a pipeline, and then no more
EXPORT_KINDS = {"export": (None, 8), "tflite": (None, 16, 8)}

RECORD_HEADER = ["step", "accuracy %", "size (bytes)", "FLOPs", "bs1 (ms)", "bs64 (ms)"]
GPU_HEADER = ["GPU bs1 (ms)", "GPU bs64 (ms)"]  # appended by StepRecord.row(gpu=True)


@dataclass(frozen=True)
class Step:
    """One pipeline step: a ``kind`` of :data:`STEP_KINDS`, its ``strength`` and the
    fine-tune epochs that follow it (a fixed budget, 0: none)."""

    kind: str
    strength: float | None = None
    finetune_epochs: int = 0

    def __post_init__(self) -> None:
        check_choice(self.kind, "kind", STEP_KINDS)
        check_int(self.finetune_epochs, "finetune_epochs", minimum=0)
        if self.kind in EXPORT_KINDS:
            accepted = EXPORT_KINDS[self.kind]
            if self.strength not in accepted or isinstance(self.strength, bool):
                raise ValueError(f"strength must be one of {accepted} for a {self.kind!r} step, "
                                 f"got {self.strength!r}")
            return
        if STEP_KINDS[self.kind] is None:
            if self.strength is not None:
                raise ValueError(f"strength must be None for a {self.kind!r} step, "
                                 f"got {self.strength!r}")
            return
        if self.strength is None:
            raise ValueError(f"strength must be given for a {self.kind!r} step: "
                             f"{STEP_KINDS[self.kind]}")
        if self.kind in ("ptq", "qat"):
            check_int(self.strength, "strength", 2, 8)
        elif self.kind in ("prune", "sparsify"):
            check_real(self.strength, "strength", low=0, high=1, high_open=True)
        else:
            check_real(self.strength, "strength", low=0, high=1, low_open=True)

    @property
    def label(self) -> str:
        s = "" if self.strength is None else f"({self.strength:g})"
        f = f"+ft{self.finetune_epochs}" if self.finetune_epochs else ""
        return f"{self.kind}{s}{f}"


@dataclass
class StepRecord:
    """What one step left: the model and its measurements.

    Latencies are this machine's CPU (``latency_*``) and, when a GPU timed the model, the
    GPU's (``latency_gpu_*``); None when not timed (``time=False``, no GPU, a runtime that
    runs on the CPU only, or layers without a GPU kernel).
    """

    step: str
    accuracy: float
    size_bytes: int
    flops: int
    latency_bs1_ms: float | None
    latency_bs64_ms: float | None
    latency_gpu_bs1_ms: float | None = None
    latency_gpu_bs64_ms: float | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def row(self, gpu: bool = False) -> list[object]:
        """The record as a table row (:data:`RECORD_HEADER`, + :data:`GPU_HEADER` with
        ``gpu``)."""
        out = [self.step, round(100 * self.accuracy, 2), self.size_bytes, self.flops,
               self.latency_bs1_ms, self.latency_bs64_ms]
        return out + [self.latency_gpu_bs1_ms, self.latency_gpu_bs64_ms] if gpu else out

    def as_dict(self) -> dict[str, object]:
        return {"step": self.step, "accuracy": self.accuracy, "size_bytes": self.size_bytes,
                "flops": self.flops, "latency_bs1_ms": self.latency_bs1_ms,
                "latency_bs64_ms": self.latency_bs64_ms,
                "latency_gpu_bs1_ms": self.latency_gpu_bs1_ms,
                "latency_gpu_bs64_ms": self.latency_gpu_bs64_ms}


@dataclass(frozen=True)
class PipelineData:
    """Train / test loaders and one example batch (e.g. from ``digits_loaders``)."""

    train: Any
    test: Any
    example: torch.Tensor


class Exported:
    """A model handed to another runtime (an ONNX Runtime session, a TFLite interpreter),
    standing in for the PyTorch model: called on an (N, C, H, W) tensor, gives logits.

    ``runtime`` names it (``"onnxruntime"``, ``"tflite"``); ``size_bytes`` is the file's,
    ``flops`` the model's before export (the runtime does the same multiply-adds).
    """

    def __init__(self, runtime: str, predict: Callable[[Any], Any], size_bytes: int,
                 flops: int) -> None:
        self.runtime, self.predict = runtime, predict
        self.size_bytes, self.flops = size_bytes, flops

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.predict(x.detach().cpu().numpy()))

    def __repr__(self) -> str:
        return f"Exported({self.runtime!r}, {self.size_bytes:,} bytes)"


def _train_loader(data: PipelineData, seed: int = 0) -> Any:
    """``data.train`` reshuffled by a generator seeded afresh: a step's fine-tuning sees the
    same batches whatever ran before it in the process (the loader's own generator advances
    with every epoch anyone trains)."""
    from torch.utils.data import DataLoader

    loader = data.train
    if not isinstance(loader, DataLoader):
        return loader
    return DataLoader(loader.dataset, batch_size=loader.batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def _accuracy(model: Any, loader: Any) -> float:
    if isinstance(model, nn.Module):
        return evaluate(model, loader, "cpu")
    correct = total = 0
    for x, y in loader:
        correct += (model(x).argmax(1) == y).sum().item()
        total += y.numel()
    return correct / total


def _latency(model: Any, example: torch.Tensor, batch: int, repeats: int,
             device: torch.device | None = None) -> float:
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    if device is not None:
        x = x.to(device)
    with torch.no_grad():
        return time_fn(lambda: model(x), warmup=2, repeats=repeats, device=device).median_ms


def gpu_device() -> torch.device | None:
    """The GPU :func:`measure` times on by default: ``cuda`` when PyTorch sees one, else None."""
    return torch.device("cuda") if torch.cuda.is_available() else None


def _gpu_latencies(model: Any, example: torch.Tensor, repeats: int,
                   device: torch.device) -> tuple[float | None, float | None]:
    """bs1 and bs64 latency of a copy of ``model`` on ``device``; (None, None) for an exported
    model (its runtime here is the CPU's) or layers without a kernel on that device."""
    if not isinstance(model, nn.Module):
        return None, None
    try:
        on = copy.deepcopy(model).to(device).eval()
        return (_latency(on, example, 1, repeats, device),
                _latency(on, example, 64, repeats, device))
    except (RuntimeError, NotImplementedError):  # e.g. an int8 kernel with no CUDA version
        return None, None


def measure(model: Any, data: PipelineData, label: str, *, flops: int | None = None,
            time: bool = True, repeats: int = 10,
            gpu: str | torch.device | None = "auto") -> StepRecord:
    """Measure ``model`` (an ``nn.Module`` or an :class:`Exported`) into a :class:`StepRecord`.

    ``flops`` overrides the count (a quantized model keeps its float model's); ``time=False``
    leaves every latency ``None``. ``gpu``: the device for the GPU latencies (``"auto"``:
    :func:`gpu_device`; None: not timed). Accuracy is always measured on the CPU.
    """
    if isinstance(model, nn.Module):
        model.eval()
        size = state_size_bytes(model)
        if flops is None:
            flops = count_flops(model, data.example[:1]).flops
    elif isinstance(model, Exported):
        size, flops = model.size_bytes, model.flops
    else:
        raise TypeError(f"model must be an nn.Module or an Exported model, got "
                        f"{type(model).__name__}")
    device = gpu_device() if isinstance(gpu, str) and gpu == "auto" else (
        None if gpu is None else torch.device(gpu))
    bs1 = _latency(model, data.example, 1, repeats) if time else None
    bs64 = _latency(model, data.example, 64, repeats) if time else None
    gpu1, gpu64 = _gpu_latencies(model, data.example, repeats, device) \
        if time and device is not None else (None, None)
    return StepRecord(label, _accuracy(model, data.test), size, int(flops), bs1, bs64,
                      gpu1, gpu64, model)


def _student_like(model: nn.Module, width: float) -> nn.Module:
    from ..models import SmallCNN

    if not isinstance(model, SmallCNN):
        raise ValueError(f"a distill step needs a SmallCNN teacher, got {type(model).__name__}")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    channels = [max(1, round(c.out_channels * width)) for c in convs]
    return SmallCNN(convs[0].in_channels, model.classifier[-1].out_features, channels,
                    model.input_shape[-1])


def _is_quantized(model: nn.Module) -> bool:
    from ..quantization import IntConv2d, IntLinear, quant_wrappers

    return bool(quant_wrappers(model)) or any(
        isinstance(m, (IntLinear, IntConv2d)) for m in model.modules())


def _quantize(model: nn.Module, step: Step, data: PipelineData) -> nn.Module:
    from ..quantization import QuantConfig, convert_to_int_, ptq_, qat_

    bits = int(step.strength)
    config = QuantConfig(weight_bits=bits, act_bits=bits)
    if step.kind == "ptq":
        ptq_(model, data.train, config, max_batches=8)
    else:
        qat_(model, data.train, config,
             TrainConfig(epochs=max(1, step.finetune_epochs), lr=1e-3, progress=False))
    return convert_to_int_(model) if bits == 8 else model


def _calibration(data: PipelineData, n: int) -> Any:
    return torch.cat([x for x, _ in data.train])[:n].numpy()


def _export(model: nn.Module, data: PipelineData, flops: int, step: Step) -> Exported:
    from ..export import export_onnx, file_size_bytes, make_session, ort_predict, quantize_onnx

    if _is_quantized(model):
        raise ValueError(f"a {step.kind!r} step must come before quantization (the runtime "
                         "quantizes the float graph itself): got a model with integer layers")
    threads = torch.get_num_threads()  # the same cores PyTorch's latency used
    if step.kind == "tflite":
        from ..export import LiteModel, convert_tflite, keras_from_torch, to_nhwc

        mode = {None: "float32", 16: "float16", 8: "int8"}[step.strength]
        twin = keras_from_torch(model, data.example)
        calib = to_nhwc(_calibration(data, 100)) if mode == "int8" else None
        lite = LiteModel(convert_tflite(twin, mode, representative_data=calib), threads=threads)
        return Exported("tflite", lambda x: lite.predict(to_nhwc(x)), lite.size_bytes, flops)
    folder = Path(tempfile.mkdtemp(prefix="capstone_"))
    path = export_onnx(model, data.example[:1], folder / "model.onnx")
    if step.strength == 8:
        path = quantize_onnx(path, folder / "model.int8.onnx", "static",
                             calibration_data=_calibration(data, 128))
    session = make_session(path, threads=threads)
    return Exported("onnxruntime", lambda x: ort_predict(session, x), file_size_bytes(path), flops)


def apply_step(model: nn.Module, step: Step, data: PipelineData) -> nn.Module | Exported:
    """Apply one step to a copy of ``model`` and return the new model (fine-tuned if asked)."""
    from .. import fusion, lowrank, pruning
    from ..distillation import distill

    if isinstance(model, Exported):
        raise ValueError(f"an exported model takes no further steps, got {step.kind!r} after "
                         "export: put export last")
    check_module(model)
    model = copy.deepcopy(model).cpu().eval()
    data = PipelineData(_train_loader(data), data.test, data.example)
    if _is_quantized(model) and step.kind not in ("fold", *EXPORT_KINDS):
        raise ValueError(f"a {step.kind!r} step cannot follow quantization (integer layers): "
                         "quantize last (fold may follow), or let an export step quantize")
    flops = count_flops(model, data.example[:1]).flops
    fine = TrainConfig(epochs=max(1, step.finetune_epochs), lr=1e-3, progress=False)
    if step.kind == "distill":
        student = _student_like(model, float(step.strength))
        distill(student, model, data.train,
                TrainConfig(epochs=max(1, step.finetune_epochs), lr=1e-2, progress=False))
        return student.eval()
    if step.kind == "prune":
        pruning.prune_channels_(model, float(step.strength), data.example)
    elif step.kind == "sparsify":
        pruning.prune_unstructured_(model, float(step.strength), scope="global")
    elif step.kind == "lowrank":
        lowrank.factorize_(model, lowrank.choose_ranks(model, float(step.strength)))
    elif step.kind == "fold":
        if not _is_quantized(model):
            fusion.fold_bn_(model)
        return model
    elif step.kind in ("ptq", "qat"):
        return _quantize(model, step, data).eval()
    elif step.kind in EXPORT_KINDS:
        return _export(model, data, flops, step)
    if step.finetune_epochs:
        train(model, data.train, fine)
    if step.kind == "sparsify":
        pruning.make_permanent_(model)
    return model.eval()


class Pipeline:
    """A sequence of :class:`Step` applied to a baseline, each result measured.

    ``run(baseline, data)`` returns one :class:`StepRecord` per step, the baseline first;
    :meth:`table` prints them as the notebook's growing table.
    """

    def __init__(self, steps: Sequence[Step]) -> None:
        steps = list(steps)
        for i, s in enumerate(steps):
            if not isinstance(s, Step):
                raise TypeError(f"steps[{i}] must be a Step, got {type(s).__name__}")
        kinds = [s.kind for s in steps]
        exports = [i for i, k in enumerate(kinds) if k in EXPORT_KINDS]
        if exports and exports != [len(kinds) - 1]:
            raise ValueError(f"an export step ({' or '.join(EXPORT_KINDS)}) must be the last "
                             f"step, and the only one, got steps {kinds}")
        self.steps = steps
        self.records: list[StepRecord] = []

    @property
    def label(self) -> str:
        return " -> ".join(s.label for s in self.steps) or "baseline"

    def run(self, baseline: nn.Module, data: PipelineData, *, time: bool = True,
            repeats: int = 10, gpu: str | torch.device | None = "auto",
            on_step: Callable[[StepRecord], None] | None = None) -> list[StepRecord]:
        """Apply every step to a copy of ``baseline``; measure each result (:func:`measure`,
        with ``time``, ``repeats`` and ``gpu``) and call ``on_step`` with its record."""
        check_module(baseline, "baseline")
        baseline.eval()
        self.records = [measure(baseline, data, "baseline", time=time, repeats=repeats,
                                gpu=gpu)]
        if on_step:
            on_step(self.records[0])
        model: Any = baseline
        for step in self.steps:
            flops_before = self.records[-1].flops
            model = apply_step(model, step, data)
            keep = step.kind in ("ptq", "qat") or step.strength == 8 or (
                isinstance(model, nn.Module) and _is_quantized(model))
            rec = measure(model, data, step.label, flops=flops_before if keep else None,
                          time=time, repeats=repeats, gpu=gpu)
            self.records.append(rec)
            if on_step:
                on_step(rec)
        return self.records

    def table(self, gpu: bool | None = None) -> str:
        """The records as a markdown table; GPU columns when ``gpu`` (None: when any record
        has a GPU latency)."""
        if gpu is None:
            gpu = any(r.latency_gpu_bs1_ms is not None for r in self.records)
        return markdown_table(RECORD_HEADER + (GPU_HEADER if gpu else []),
                              [r.row(gpu) for r in self.records])


def ratios(baseline: StepRecord, final: StepRecord) -> dict[str, float]:
    """Size ratio, FLOPs ratio (baseline / final: > 1 is smaller), accuracy drop in points
    and, where both were timed, the speedups: ``speedup_bs1``, ``speedup_bs64`` (CPU) and
    ``speedup_gpu_bs1``, ``speedup_gpu_bs64``."""
    out = {"size_ratio": baseline.size_bytes / final.size_bytes,
           "flops_ratio": baseline.flops / final.flops,
           "accuracy_drop_pts": 100 * (baseline.accuracy - final.accuracy)}
    for key in ("latency_bs1_ms", "latency_bs64_ms", "latency_gpu_bs1_ms", "latency_gpu_bs64_ms"):
        b, f = getattr(baseline, key), getattr(final, key)
        if b is not None and f is not None:  # speedup_bs1, ..., speedup_gpu_bs64
            out["speedup_" + key.removeprefix("latency_").removesuffix("_ms")] = b / f
    return out


