"""PyTorch -> ONNX -> ONNX Runtime: parity, dynamic batch, optimisation levels, int8, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from accel_lib import export as EX
from accel_lib.models import MLP


def test_export_is_checked_and_lists_the_course_operators(onnx_file):
    ops = EX.graph_ops(onnx_file)
    assert ops == {"Conv": 2, "Relu": 2, "MaxPool": 1, "Flatten": 1, "Gemm": 1}, ops
    assert "BatchNormalization" not in ops  # folded by the exporter in eval mode
    assert EX.node_count(onnx_file) == 7
    assert EX.model_format(onnx_file) == "onnx"


def test_parity_with_pytorch_below_1e4_at_every_batch_size(torch_cnn, onnx_file, data):
    x = torch.from_numpy(data[2])
    diff = EX.onnx_max_abs_diff(torch_cnn, onnx_file, x)
    assert diff < 1e-4
    session = EX.make_session(onnx_file, threads=1)
    for batch in (1, 7, 64):  # dynamic batch axis: one file, every size
        assert EX.ort_predict(session, data[2][:batch]).shape == (batch, 10)


def test_parity_catches_a_wrong_graph(torch_cnn, onnx_file, data):
    broken = MLP(in_features=64)  # a different model than the file: must be far off
    assert EX.onnx_max_abs_diff(broken.eval(), onnx_file, torch.from_numpy(data[2][:8])) > 1e-2


def test_mlp_and_dynamo_exporter(tmp_path, data):
    model = MLP().eval()
    x = torch.from_numpy(data[2][:4])
    path = EX.export_onnx(model, x, tmp_path / "mlp.onnx")
    assert EX.graph_ops(path)["Gemm"] == 3
    assert EX.onnx_max_abs_diff(model, path, x) < 1e-5
    dyn = EX.export_onnx(model, x, tmp_path / "mlp_dynamo.onnx", dynamo=True)
    assert EX.onnx_max_abs_diff(model, dyn, torch.from_numpy(data[2][:33])) < 1e-5


def test_optimisation_levels_save_graphs_and_fuse(onnx_file, tmp_path):
    levels = EX.optimize_levels(onnx_file, tmp_path, threads=1)
    assert list(levels) == list(EX.OPT_LEVELS)
    for info in levels.values():
        assert info["path"].is_file()
    assert levels["disabled"]["nodes"] == 7
    # extended fuses each Conv + Relu into one FusedConv: two nodes fewer
    assert levels["extended"]["nodes"] == 5
    assert levels["extended"]["ops"].get("FusedConv") == 2
    assert "Relu" not in levels["extended"]["ops"]


def test_ort_int8_static_and_dynamic(onnx_file, data, tmp_path):
    xtr, _, xte, yte = data
    fp32 = EX.accuracy(EX.ort_predict(EX.make_session(onnx_file), xte), yte)
    static = EX.quantize_onnx(onnx_file, tmp_path / "s.onnx", "static",
                              calibration_data=xtr[:64])
    assert EX.graph_ops(static)["QuantizeLinear"] >= 2
    acc = EX.accuracy(EX.ort_predict(EX.make_session(static), xte), yte)
    assert fp32 - acc < 0.03, (fp32, acc)
    dynamic = EX.quantize_onnx(onnx_file, tmp_path / "d.onnx", "dynamic")
    assert "ConvInteger" in EX.graph_ops(dynamic)
    import onnx

    dtypes = {t.data_type for t in onnx.load(str(static)).graph.initializer}
    assert onnx.TensorProto.INT8 in dtypes  # weights stored as int8 codes


def test_calibration_reader_batches_then_stops():
    reader = EX.DigitsCalibrationReader(np.zeros((5, 1, 8, 8)), batch_size=2)
    sizes = []
    while (b := reader.get_next()) is not None:
        sizes.append(len(b["x"]))
    assert sizes == [2, 2, 1]


def test_errors_name_the_problem(onnx_file, tmp_path):
    with pytest.raises(ValueError, match="calibration_data must hold at least one example"):
        EX.DigitsCalibrationReader(np.zeros((0, 1, 8, 8)))
    with pytest.raises(ValueError, match="calibration_data"):
        EX.quantize_onnx(onnx_file, tmp_path / "q.onnx", "static", calibration_data=np.zeros(
            (0, 1, 8, 8)))
    with pytest.raises(ValueError, match="calibration_data must be an array"):
        EX.quantize_onnx(onnx_file, tmp_path / "q.onnx", "static")
    with pytest.raises(ValueError, match="level must be one of"):
        EX.make_session(onnx_file, "max")
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model at all")
    with pytest.raises(ValueError, match=r"model_file must be an ONNX \(\.onnx\).*model\.onnx"):
        EX.make_session(fake)
    with pytest.raises(ValueError, match="no such file"):
        EX.make_session(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="must be a path"):
        EX.make_session(3)


class _SVD(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svd(x)[1]


def test_unsupported_layer_is_named(tmp_path):
    model = nn.Sequential(nn.Linear(8, 8), _SVD())
    with pytest.raises(ValueError, match=r"unsupported layer '1': _SVD.*linalg_svd"):
        EX.export_onnx(model, torch.randn(2, 8, 8), tmp_path / "bad.onnx")
    assert EX.unsupported_layer(nn.Sequential(nn.Linear(8, 8)), torch.randn(2, 8)) is None


def test_tensorrt_is_named_and_cuda_guarded(onnx_file, data):
    cmd = EX.trtexec_command(onnx_file, "fp16")
    assert cmd.startswith("trtexec --onnx=") and "--fp16" in cmd and "--minShapes=x:1x1x8x8" in cmd
    assert EX.tensorrt_providers()[-1] == "CPUExecutionProvider"
    timing = EX.cuda_session_timing(onnx_file, data[2][:1], repeats=3)
    if not torch.cuda.is_available():
        assert timing is None
    else:  # pragma: no cover - GPU machines only
        assert timing is None or timing > 0


def test_import_is_tensorflow_free():
    import subprocess
    import sys

    code = ("import sys, accel_lib, accel_lib.export; "
            "print('tensorflow' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.split() == ["False", "False"]


def test_max_abs_diff_hand_computed_and_shape_check():
    ref = np.array([[1.0, -2.0], [0.5, -1.0]], dtype=np.float32)
    cand = np.array([[1.0, -1.5], [0.5, 1.0]], dtype=np.float32)
    assert EX.max_abs_diff(ref, cand) == 2.0  # the largest difference is negative: abs first
    assert EX.max_abs_diff(torch.tensor([1.0], requires_grad=True), torch.tensor([1.25])) == 0.25
    with pytest.raises(ValueError, match=r"candidate must have the reference's shape \(4, 10\)"):
        EX.max_abs_diff(np.zeros((4, 10)), np.zeros((1, 10)))


def test_nodes_removed_on_a_hand_built_graph(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    gen = np.random.default_rng(0)
    init = [numpy_helper.from_array(gen.standard_normal((4, 1, 3, 3)).astype(np.float32), "W")]
    init += [numpy_helper.from_array(np.full(4, v, np.float32), n)
             for n, v in (("gamma", 1.5), ("beta", 0.1), ("mean", 0.2), ("var", 2.0))]
    nodes = [helper.make_node("Identity", ["x"], ["x1"]),
             helper.make_node("Conv", ["x1", "W"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["b"]),
             helper.make_node("Relu", ["b"], ["r"]), helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Identity", ["f"], ["y"])]
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 256])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "hand.onnx"
    onnx.save(model, str(path))
    # basic: both Identity and the BatchNorm (folded into the Conv); extended: also the Relu
    assert [EX.nodes_removed(path, lv) for lv in EX.OPT_LEVELS] == [0, 3, 4, 3]


def test_cpu_description_names_an_isa():
    text = EX.cpu_description()
    assert text.endswith(")") and "(" in text
