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

__all__ = ["STEP_KINDS", "Step", "StepRecord", "PipelineData", "Pipeline", "RECORD_HEADER",
           "apply_step", "measure", "ratios"]

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
}

RECORD_HEADER = ["step", "accuracy %", "size (bytes)", "FLOPs", "bs1 (ms)", "bs64 (ms)"]


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
        if self.kind == "export":
            if self.strength not in (None, 8) or isinstance(self.strength, bool):
                raise ValueError(f"strength must be None or 8 for an export step, "
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
    """What one step left: the model and its measurements (latency None when not timed)."""

    step: str
    accuracy: float
    size_bytes: int
    flops: int
    latency_bs1_ms: float | None
    latency_bs64_ms: float | None
    model: Any = field(default=None, repr=False, compare=False)

    def row(self) -> list[object]:
        return [self.step, round(100 * self.accuracy, 2), self.size_bytes, self.flops,
                self.latency_bs1_ms, self.latency_bs64_ms]

    def as_dict(self) -> dict[str, object]:
        return dict(zip(("step", "accuracy", "size_bytes", "flops", "latency_bs1_ms",
                         "latency_bs64_ms"), self.row(), strict=True)) | {
            "accuracy": self.accuracy}


@dataclass(frozen=True)
class PipelineData:
    """Train / test loaders and one example batch (e.g. from ``digits_loaders``)."""

    train: Any
    test: Any
    example: torch.Tensor


class _OrtModel:
    """An ONNX Runtime session standing in for a model: called on a tensor, gives logits."""

    def __init__(self, session: Any, size_bytes: int, flops: int) -> None:
        self.session, self.size_bytes, self.flops = session, size_bytes, flops

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from ..export import ort_predict

        return torch.from_numpy(ort_predict(self.session, x.numpy()))


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


def _latency(model: Any, example: torch.Tensor, batch: int, repeats: int) -> float:
    x = example[:1].expand(batch, *example.shape[1:]).contiguous()
    with torch.no_grad():
        return time_fn(lambda: model(x), warmup=2, repeats=repeats).median_ms


def measure(model: Any, data: PipelineData, label: str, *, flops: int | None = None,
            time: bool = True, repeats: int = 10) -> StepRecord:
    """Measure ``model`` (an ``nn.Module`` or an exported session) into a :class:`StepRecord`.

    ``flops`` overrides the count (a quantized model keeps its float model's); ``time=False``
    leaves both latencies ``None``.
    """
    if isinstance(model, nn.Module):
        model.eval()
        size = state_size_bytes(model)
        if flops is None:
            flops = count_flops(model, data.example[:1]).flops
    else:
        size, flops = model.size_bytes, model.flops
    bs1 = _latency(model, data.example, 1, repeats) if time else None
    bs64 = _latency(model, data.example, 64, repeats) if time else None
    return StepRecord(label, _accuracy(model, data.test), size, int(flops), bs1, bs64, model)


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


def _export(model: nn.Module, data: PipelineData, flops: int, bits: int | None) -> _OrtModel:
    from ..export import export_onnx, file_size_bytes, make_session, quantize_onnx

    if _is_quantized(model):
        raise ValueError("an export step must come before quantization (ONNX Runtime "
                         "quantizes the float graph itself): got a quantized model")
    folder = Path(tempfile.mkdtemp(prefix="capstone_"))
    path = export_onnx(model, data.example[:1], folder / "model.onnx")
    if bits == 8:
        calib = torch.cat([x for x, _ in data.train])[:128].numpy()
        path = quantize_onnx(path, folder / "model.int8.onnx", "static", calibration_data=calib)
    return _OrtModel(make_session(path), file_size_bytes(path), flops)


def apply_step(model: nn.Module, step: Step, data: PipelineData) -> nn.Module | _OrtModel:
    """Apply one step to a copy of ``model`` and return the new model (fine-tuned if asked)."""
    from .. import fusion, lowrank, pruning
    from ..distillation import distill

    if isinstance(model, _OrtModel):
        raise ValueError(f"an exported model takes no further steps, got {step.kind!r} after "
                         "export: put export last")
    check_module(model)
    model = copy.deepcopy(model).cpu().eval()
    data = PipelineData(_train_loader(data), data.test, data.example)
    if _is_quantized(model) and step.kind not in ("fold", "export"):
        raise ValueError(f"a {step.kind!r} step cannot follow quantization (integer layers): "
                         "quantize last, or before export only")
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
    elif step.kind == "export":
        return _export(model, data, flops, None if step.strength is None else 8)
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
        if "export" in kinds and kinds.index("export") != len(kinds) - 1:
            raise ValueError(f"export must be the last step, got steps {kinds}")
        self.steps = steps
        self.records: list[StepRecord] = []

    @property
    def label(self) -> str:
        return " -> ".join(s.label for s in self.steps) or "baseline"

    def run(self, baseline: nn.Module, data: PipelineData, *, time: bool = True,
            repeats: int = 10,
            on_step: Callable[[StepRecord], None] | None = None) -> list[StepRecord]:
        check_module(baseline, "baseline")
        baseline.eval()
        self.records = [measure(baseline, data, "baseline", time=time, repeats=repeats)]
        if on_step:
            on_step(self.records[0])
        model: Any = baseline
        for step in self.steps:
            flops_before = self.records[-1].flops
            model = apply_step(model, step, data)
            keep = step.kind in ("ptq", "qat") or step.strength == 8 or (
                isinstance(model, nn.Module) and _is_quantized(model))
            rec = measure(model, data, step.label, flops=flops_before if keep else None,
                          time=time, repeats=repeats)
            self.records.append(rec)
            if on_step:
                on_step(rec)
        return self.records

    def table(self) -> str:
        return markdown_table(RECORD_HEADER, [r.row() for r in self.records])


def ratios(baseline: StepRecord, final: StepRecord) -> dict[str, float]:
    """Size ratio, FLOPs ratio (baseline / final: > 1 is smaller), accuracy drop in points
    and, where both were timed, bs1 / bs64 speedups."""
    out = {"size_ratio": baseline.size_bytes / final.size_bytes,
           "flops_ratio": baseline.flops / final.flops,
           "accuracy_drop_pts": 100 * (baseline.accuracy - final.accuracy)}
    for key in ("latency_bs1_ms", "latency_bs64_ms"):
        b, f = getattr(baseline, key), getattr(final, key)
        if b is not None and f is not None:
            out["speedup_" + key.split("_")[1]] = b / f
    return out


