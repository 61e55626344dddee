"""Deployment: ONNX Runtime, TensorFlow Lite and the TF Model Optimization Toolkit
(notebook 09).

Speed figures are ratios measured side by side (accel_lib.bench.compare, interleaved samples)
in one process, every runtime on the same number of threads. Size ratios are the original
file's bytes over the compressed one's (above 1: smaller), as quantization/ and capstone/
record theirs. Accuracies are on the digits test split (270 images: one image = 0.37 pts).
TensorFlow is imported after torch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from accel_lib import export as EX
from accel_lib.bench import compare
from accel_lib.models import SmallCNN
from accel_lib.runtime import set_seed

from .record import Record

CHANNELS = (8, 16)


def _torch_records(tmp: Path, data: tuple) -> list[Record]:
    from accel_lib.data import digits_loaders
    from accel_lib.train import TrainConfig, train

    xtr, ytr, xte, yte = data
    threads = torch.get_num_threads()
    set_seed(0)
    model = SmallCNN(channels=CHANNELS)
    train(model, digits_loaders(batch_size=64).train,
          TrainConfig(epochs=6, lr=3e-3, device="cpu", progress=False))
    model.eval()
    path = EX.export_onnx(model, torch.from_numpy(xte[:1]), tmp / "cnn.onnx")
    diff = EX.onnx_max_abs_diff(model, path, torch.from_numpy(xte))
    session = EX.make_session(path, "all", threads=threads)
    out = [Record("deploy/onnx-max-abs-diff", diff, "abs", 1e-4,
                  f"SmallCNN{CHANNELS} trained on digits, exported with torch.onnx.export "
                  f"(TorchScript, opset {EX.DEFAULT_OPSET}, dynamic batch): max |PyTorch - "
                  f"ONNX Runtime| over the {len(xte)} test images' logits; baseline = "
                  "tolerance")]
    for batch in (1, 64):
        xb = xte[:batch]
        tb = torch.from_numpy(xb)
        with torch.inference_mode():
            r = compare(lambda: model(tb), lambda: EX.ort_predict(session, xb),  # noqa: B023
                        warmup=10, repeats=60, verbose=False)
        out.append(Record(f"deploy/ort-speedup-bs{batch}", r.speedup, "x", 1.0,
                          f"SmallCNN{CHANNELS}, batch {batch}: eager PyTorch (inference_mode) "
                          f"vs ONNX Runtime (ORT_ENABLE_ALL, CPU provider), {threads} threads "
                          f"each, median of 60 interleaved samples ({r.baseline.median_ms:.3f} "
                          f"vs {r.optimized.median_ms:.3f} ms)"))
    fp32_acc = EX.accuracy(EX.ort_predict(session, xte), yte)
    q = EX.quantize_onnx(path, tmp / "cnn.int8.onnx", "static", calibration_data=xtr[:128])
    q_acc = EX.accuracy(EX.ort_predict(EX.make_session(q, threads=threads), xte), yte)
    fp32_bytes, int8_bytes = EX.file_size_bytes(path), EX.file_size_bytes(q)
    out += [Record("deploy/ort-int8-size-ratio", fp32_bytes / int8_bytes, "x", None,
                   f"the float ONNX file over quantize_static's int8 file (QDQ, per-channel int8 "
                   f"weights and activations, 128 calibration digits): {fp32_bytes:,} / "
                   f"{int8_bytes:,} bytes (above 1: smaller)"),
            Record("deploy/ort-int8-accuracy-drop-pts", 100 * (fp32_acc - q_acc), "pts", None,
                   f"digits test accuracy, float ONNX {fp32_acc:.4f} minus static int8 "
                   f"{q_acc:.4f}")]
    return out


def _tflite_records(data: tuple) -> list[Record]:
    xtr, ytr, xte, yte = data
    xtr, xte = EX.to_nhwc(xtr), EX.to_nhwc(xte)
    tf = EX.import_tf()
    model = EX.train_keras(EX.keras_model("cnn", channels=CHANNELS), xtr, ytr, epochs=8)
    lite = {m: EX.LiteModel(EX.convert_tflite(model, m, representative_data=xtr),
                            threads=torch.get_num_threads()) for m in EX.TFLITE_MODES}
    acc = {m: EX.accuracy(lm.predict(xte), yte) for m, lm in lite.items()}
    size = {m: lm.size_bytes for m, lm in lite.items()}
    one = xte[:1]
    r = compare(lambda: lite["float32"].predict(one), lambda: lite["int8"].predict(one),
                warmup=10, repeats=60, verbose=False)
    what = f"tf.keras SmallCNN{CHANNELS} (TensorFlow {tf.__version__}) trained on digits"
    out = [
        Record("deploy/tflite-int8-size-ratio", size["float32"] / size["int8"], "x", None,
               f"{what}: float32 TFLite over full-integer int8 TFLite (100 representative "
               f"digits, int8 in/out): {size['float32']:,} / {size['int8']:,} bytes (above 1: "
               f"smaller); dynamic-range int8 {size['dynamic-int8']:,}"),
        Record("deploy/tflite-int8-accuracy-drop-pts", 100 * (acc["float32"] - acc["int8"]),
               "pts", None, f"{what}: float32 TFLite {acc['float32']:.4f} minus full-integer "
               f"int8 {acc['int8']:.4f} (dynamic-range {acc['dynamic-int8']:.4f}, float16 "
               f"{acc['float16']:.4f})"),
        Record("deploy/tflite-fp16-size-ratio", size["float32"] / size["float16"], "x", None,
               f"{what}: float32 TFLite over float16-weight TFLite: {size['float32']:,} / "
               f"{size['float16']:,} bytes (above 1: smaller)"),
        Record("deploy/tflite-int8-speedup-bs1", r.speedup, "x", 1.0,
               f"{what}, batch 1, LiteRT interpreter (ai_edge_litert), "
               f"{torch.get_num_threads()} threads: float32 vs full-integer int8 TFLite, "
               f"median of 60 interleaved samples ({r.baseline.median_ms:.3f} vs "
               f"{r.optimized.median_ms:.3f} ms; input quantization included)"),
    ]
    dense_zip = EX.zipped_size_bytes(lite["float32"].content)
    base = EX.train_keras(EX.keras_model("cnn", channels=CHANNELS), xtr, ytr, epochs=8)
    pruned = EX.prune_keras(base, xtr, ytr, final_sparsity=0.8, epochs=3)
    pruned_content = EX.convert_tflite(pruned, "float32")
    pruned_acc = EX.accuracy(EX.LiteModel(pruned_content).predict(xte), yte)
    pruned_zip = EX.zipped_size_bytes(pruned_content)
    out.append(Record("deploy/tfmot-pruned-80pct-zip-size-ratio", dense_zip / pruned_zip, "x",
                      None, f"{what}: the zipped dense float32 TFLite ({dense_zip:,} bytes) over "
                      f"the pruned one: prune_low_magnitude (PolynomialDecay 0 -> 80%, 3 epochs "
                      f"of fine-tuning), strip_pruning, float32 TFLite, zipped ({pruned_zip:,} "
                      f"bytes, kernel sparsity {EX.kernel_sparsity(pruned):.2f}, accuracy "
                      f"{pruned_acc:.4f}); above 1: smaller"))
    qat = EX.qat_keras(model, xtr, ytr, epochs=2)
    qat_lite = EX.LiteModel(EX.convert_tflite(qat, "dynamic-int8"))
    qat_acc = EX.accuracy(qat_lite.predict(xte), yte)
    out.append(Record("deploy/tfmot-qat-accuracy-drop-pts", 100 * (acc["float32"] - qat_acc),
                      "pts", None, f"{what}: float32 TFLite {acc['float32']:.4f} minus the "
                      f"quantize_model QAT model (2 epochs of fine-tuning) converted to int8 "
                      f"TFLite ({qat_acc:.4f}, {qat_lite.size_bytes:,} bytes)"))
    return out


def records() -> list[Record]:
    data = EX.digits_arrays()
    np.random.seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = _torch_records(Path(tmp), data)
    return out + _tflite_records(data)
