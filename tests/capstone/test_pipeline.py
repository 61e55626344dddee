"""Pipeline bookkeeping: every step measured, calls into the technique packages, errors."""

from __future__ import annotations

import json

import pytest
import torch

from accel_lib.capstone import Pipeline, Step, grid_search, load_cache, measure, ratios
from accel_lib.capstone import search as search_mod
from accel_lib.stats import count_flops, state_size_bytes
from accel_lib.train import evaluate


def test_step_validation():
    with pytest.raises(ValueError, match="kind"):
        Step("prunee", 0.5)
    with pytest.raises(ValueError, match="strength must be given"):
        Step("prune")
    with pytest.raises(ValueError, match="strength must be None"):
        Step("fold", 0.5)
    with pytest.raises(ValueError, match="strength"):
        Step("prune", 1.0)
    with pytest.raises(ValueError, match="strength"):
        Step("ptq", 16)
    with pytest.raises(ValueError, match="finetune_epochs"):
        Step("prune", 0.5, -1)
    assert Step("prune", 0.5, 2).label == "prune(0.5)+ft2"
    with pytest.raises(TypeError, match=r"steps\[0\]"):
        Pipeline(["prune"])
    with pytest.raises(ValueError, match="must be the last step"):
        Pipeline([Step("export"), Step("fold")])
    with pytest.raises(ValueError, match="and the only one"):
        Pipeline([Step("tflite"), Step("export")])


def test_measure_agrees_with_stats(trained_cnn, digits_data):
    rec = measure(trained_cnn, digits_data, "base", time=False)
    assert rec.size_bytes == state_size_bytes(trained_cnn)
    assert rec.flops == count_flops(trained_cnn, digits_data.example[:1]).flops
    assert rec.accuracy == evaluate(trained_cnn, digits_data.test, "cpu")
    assert rec.latency_bs1_ms is None and rec.latency_bs64_ms is None


def test_reference_pipeline_records(trained_cnn, digits_data):
    before = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    pipe = Pipeline([Step("prune", 0.5, 1), Step("fold"), Step("ptq", 8)])
    recs = pipe.run(trained_cnn, digits_data, repeats=2, gpu=None)
    assert [r.step for r in recs] == ["baseline", "prune(0.5)+ft1", "fold", "ptq(8)"]
    # the baseline is never changed in place
    assert all(torch.equal(before[k], v) for k, v in trained_cnn.state_dict().items())
    base, pruned, folded, quant = recs
    assert pruned.flops < base.flops / 3  # half the channels of both convs
    assert folded.flops == pruned.flops and folded.size_bytes < pruned.size_bytes  # BN gone
    assert quant.flops == folded.flops  # int8 does the same multiply-adds
    assert quant.size_bytes < folded.size_bytes / 3
    assert all(r.latency_bs1_ms > 0 and r.latency_bs64_ms > 0 for r in recs)
    assert quant.accuracy > 0.85
    r = ratios(base, quant)
    assert r["size_ratio"] > 4 and r["flops_ratio"] > 3
    assert set(r) == {"size_ratio", "flops_ratio", "accuracy_drop_pts", "speedup_bs1",
                      "speedup_bs64"}
    assert "| ptq(8) |" in pipe.table()


def test_other_steps(trained_cnn, digits_data):
    recs = Pipeline([Step("distill", 0.5, 1), Step("sparsify", 0.5), Step("lowrank", 0.9),
                     Step("export")]).run(trained_cnn, digits_data, time=False)
    distilled, sparse, low, exported = recs[1:]
    assert distilled.flops < recs[0].flops / 3
    assert sparse.size_bytes == distilled.size_bytes  # unstructured zeros stay dense
    n = sum(int((m.weight == 0).sum()) for m in sparse.model.modules() if hasattr(m, "weight")
            and m.weight is not None and m.weight.dim() > 1)
    assert n > 0
    assert low.flops <= sparse.flops
    assert exported.flops == low.flops and exported.size_bytes > 0
    assert abs(exported.accuracy - low.accuracy) < 0.01  # ONNX Runtime computes the same


def test_second_device_latency_bookkeeping(trained_cnn, digits_data):
    """The GPU columns, with the CPU standing in for the GPU (the same code path, minus
    CUDA): timed for PyTorch models, None for an exported runtime, in the table and ratios."""
    pipe = Pipeline([Step("fold"), Step("export")])
    base, folded, exported = pipe.run(trained_cnn, digits_data, repeats=2, gpu="cpu")
    assert base.latency_gpu_bs1_ms > 0 and folded.latency_gpu_bs64_ms > 0
    assert exported.latency_gpu_bs1_ms is None and exported.latency_gpu_bs64_ms is None
    assert "GPU bs1 (ms)" in pipe.table() and "GPU bs1 (ms)" not in pipe.table(gpu=False)
    assert len(base.row(gpu=True)) == 8 and base.as_dict()["latency_gpu_bs64_ms"] > 0
    r = ratios(base, folded)
    assert r["speedup_gpu_bs1"] > 0 and r["speedup_gpu_bs64"] > 0
    assert "speedup_gpu_bs1" not in ratios(base, exported)
    untimed = measure(trained_cnn, digits_data, "x", gpu=None, repeats=2)
    assert untimed.latency_bs1_ms > 0 and untimed.latency_gpu_bs1_ms is None
    assert measure(trained_cnn, digits_data, "x", gpu="cpu", time=False).latency_gpu_bs1_ms \
        is None
    with pytest.raises(TypeError, match="model must be an nn.Module or an Exported"):
        measure("model", digits_data, "x")


@pytest.mark.gpu
def test_gpu_latency_on_cuda(trained_cnn, digits_data):
    """On a CUDA machine the default (gpu='auto') times float models on the GPU."""
    from accel_lib.capstone import gpu_device

    assert gpu_device() is not None
    base, folded, quant = Pipeline([Step("fold"), Step("ptq", 8)]).run(
        trained_cnn, digits_data, repeats=3)
    assert base.latency_gpu_bs1_ms > 0 and folded.latency_gpu_bs64_ms > 0
    assert quant.latency_gpu_bs1_ms is None or quant.latency_gpu_bs1_ms > 0
    assert next(trained_cnn.parameters()).device.type == "cpu"  # timed on a copy


def test_tflite_steps(trained_cnn, digits_data):
    """The float32 FlatBuffer computes what PyTorch computes; full-integer int8 is ~4x
    smaller than float32 TFLite and keeps the FLOPs; both run in LiteRT."""
    base, folded, lite = Pipeline([Step("fold"), Step("tflite")]).run(
        trained_cnn, digits_data, repeats=2)
    assert lite.model.runtime == "tflite" and lite.flops == folded.flops
    assert lite.accuracy == pytest.approx(folded.accuracy, abs=1e-9)
    assert lite.latency_bs1_ms > 0 and lite.latency_bs64_ms > 0
    x = digits_data.example
    with torch.no_grad():
        want = folded.model(x)
    assert (lite.model(x) - want).abs().max() < 1e-4
    int8 = Pipeline([Step("fold"), Step("tflite", 8)]).run(trained_cnn, digits_data,
                                                            time=False)[-1]
    assert int8.flops == folded.flops
    assert int8.size_bytes < lite.size_bytes / 2.5
    assert folded.accuracy - int8.accuracy < 0.03
    half = Pipeline([Step("tflite", 16)]).run(trained_cnn, digits_data, time=False)[-1]
    assert half.size_bytes < 0.7 * Pipeline([Step("tflite")]).run(
        trained_cnn, digits_data, time=False)[-1].size_bytes
    with pytest.raises(ValueError, match="takes no further steps"):
        from accel_lib.capstone import apply_step

        apply_step(lite.model, Step("fold"), digits_data)


def test_order_errors(trained_cnn, digits_data):
    with pytest.raises(ValueError, match="cannot follow quantization"):
        Pipeline([Step("ptq", 8), Step("prune", 0.5)]).run(trained_cnn, digits_data,
                                                            time=False)
    with pytest.raises(ValueError, match="before quantization"):
        Pipeline([Step("ptq", 8), Step("export")]).run(trained_cnn, digits_data, time=False)
    with pytest.raises(ValueError, match="'tflite' step must come before quantization"):
        Pipeline([Step("ptq", 8), Step("tflite", 8)]).run(trained_cnn, digits_data,
                                                           time=False)


def test_search_cache(trained_cnn, digits_data, tmp_path, monkeypatch):
    grid = [[Step("fold")], [Step("fold"), Step("ptq", 8)]]
    cache = tmp_path / "c.json"
    out = grid_search(trained_cnn, digits_data, grid, cache=cache, time=False)
    assert [r["name"] for r in out] == ["fold", "fold -> ptq(8)"]
    assert out[1]["size_bytes"] < out[0]["size_bytes"] and len(out[1]["steps"]) == 3
    assert load_cache(cache, grid, 0) == json.loads(json.dumps(out))
    calls = []
    monkeypatch.setattr(search_mod.Pipeline, "run", lambda *a, **k: calls.append(1))
    assert grid_search(trained_cnn, digits_data, grid, cache=cache, time=False)[0]["name"] \
        == "fold" and not calls  # fresh: nothing re-run
    assert load_cache(cache, grid, seed=1) is None  # another seed
    assert load_cache(cache, grid[:1], 0) is None  # another grid
    monkeypatch.setattr(search_mod, "cache_key", lambda: {"accel_lib": "9.9"})
    assert load_cache(cache, grid, 0) is None  # another version / machine: stale
    assert load_cache(tmp_path / "missing.json", grid, 0) is None
    with pytest.raises(ValueError, match="grid"):
        grid_search(trained_cnn, digits_data, [], time=False)


def test_export_strength_and_reference():
    from accel_lib.capstone import BASELINE_CHANNELS, ORDER_GRID, REFERENCE_STEPS

    assert Step("export", 8).label == "export(8)" and Step("export").strength is None
    with pytest.raises(ValueError, match=r"one of \(None, 8\) for a 'export'"):
        Step("export", 4)
    with pytest.raises(ValueError, match=r"one of \(None, 16, 8\) for a 'tflite'"):
        Step("tflite", 4)
    assert Step("tflite", 16).label == "tflite(16)"
    assert BASELINE_CHANNELS == (32, 64) and Pipeline(REFERENCE_STEPS).label
    assert all(Pipeline(steps).label for steps in ORDER_GRID)


def test_fine_tuning_does_not_depend_on_what_ran_before(trained_cnn, digits_data):
    steps = [Step("prune", 0.5, 1)]
    a = Pipeline(steps).run(trained_cnn, digits_data, time=False)[-1]
    for _ in digits_data.train:  # advance the loader's own shuffle generator
        pass
    b = Pipeline(steps).run(trained_cnn, digits_data, time=False)[-1]
    assert a.accuracy == b.accuracy
    assert all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(),
                                                   b.model.state_dict().values(), strict=True))
