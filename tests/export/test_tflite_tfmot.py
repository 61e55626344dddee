"""TensorFlow Lite conversions, LiteRT, int8 parameters vs accel_lib's formulas, tfmot."""

from __future__ import annotations

import numpy as np
import pytest

from accel_lib import export as EX
from accel_lib import quantization as Q


def test_every_conversion_runs_and_is_accurate(lite, keras_cnn, data):
    xte, yte = EX.to_nhwc(data[2]), data[3]
    ref = EX.accuracy(keras_cnn.predict(xte, verbose=0), yte)
    accs = {m: EX.accuracy(EX.LiteModel(c).predict(xte), yte) for m, c in lite.items()}
    assert abs(accs["float32"] - ref) < 1e-9
    assert abs(accs["float16"] - ref) <= 0.01
    for mode in ("dynamic-int8", "int8"):
        assert ref - accs[mode] < 0.04, (mode, accs)
    sizes = {m: len(c) for m, c in lite.items()}
    assert sizes["int8"] < 0.6 * sizes["float32"]
    assert sizes["float16"] < 0.8 * sizes["float32"]


def test_float32_tflite_matches_keras(lite, keras_cnn, data):
    x = EX.to_nhwc(data[2][:16])
    got = EX.LiteModel(lite["float32"]).predict(x)
    assert np.max(np.abs(got - keras_cnn.predict(x, verbose=0))) < 1e-4


def test_int8_io_and_qparams_match_accel_lib_formulas(lite, data):
    model = EX.LiteModel(lite["int8"])
    assert model.input["dtype"] == np.int8 and model.output["dtype"] == np.int8
    rep = EX.to_nhwc(data[0])[:100]  # what the converter calibrated on
    scale, zp = model.input_qparams
    want = Q.choose_qparams(float(rep.min()), float(rep.max()), 8, signed=True)
    assert scale == pytest.approx(float(want.scale), rel=1e-5)
    assert zp == int(want.zero_point)
    # the code of a real value round-trips through real_value within half a step
    q = np.clip(np.round(rep[0] / scale) + zp, -128, 127)
    assert np.max(np.abs(EX.real_value(q, scale, zp) - rep[0])) <= scale / 2 + 1e-6
    tensors = EX.tensor_qparams(lite["int8"])
    assert any(len(t["scale"]) > 1 for t in tensors)  # per-channel conv weights
    assert all(np.all(t["scale"] > 0) for t in tensors)


def test_real_value_hand_computed():
    assert EX.real_value(-128, 1 / 255, -128) == 0.0
    assert EX.real_value(127, 1 / 255, -128) == pytest.approx(1.0)
    assert EX.real_value(np.array([2, 5]), 0.5, 2).tolist() == [0.0, 1.5]


def test_representative_dataset_and_errors(tmp_path):
    gen = EX.representative_dataset(np.ones((5, 8, 8, 1)), n=3)
    batches = list(gen())
    assert len(batches) == 3 and batches[0][0].shape == (1, 8, 8, 1)
    assert batches[0][0].dtype == np.float32
    with pytest.raises(ValueError, match="representative_data must hold at least one"):
        EX.representative_dataset(np.zeros((0, 8, 8, 1)))
    with pytest.raises(ValueError, match="mode must be one of"):
        EX.convert_tflite(None, "int4")
    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match=r"model must be a TFLite \(\.tflite\).*m\.tflite"):
        EX.LiteModel(bad)
    with pytest.raises(ValueError, match="not TFLite"):
        EX.LiteModel(b"0123456789")


def test_onnx_file_given_to_litert_is_refused(onnx_file):
    with pytest.raises(ValueError, match="it is a ONNX model|it is an? ONNX model"):
        EX.LiteModel(onnx_file)


def test_pruning_reaches_sparsity_and_zips_smaller(keras_cnn, lite, data):
    import tensorflow as tf

    xtr, ytr = EX.to_nhwc(data[0]), data[1]
    base = tf.keras.models.clone_model(keras_cnn)
    base.set_weights(keras_cnn.get_weights())
    pruned = EX.prune_keras(base, xtr, ytr, final_sparsity=0.8, epochs=2)
    assert EX.kernel_sparsity(pruned) == pytest.approx(0.8, abs=0.02)
    content = EX.convert_tflite(pruned, "float32")
    assert EX.zipped_size_bytes(content) < 0.6 * EX.zipped_size_bytes(lite["float32"])


def test_clustering_ties_weights(keras_cnn, data):
    import tensorflow as tf

    xtr, ytr = EX.to_nhwc(data[0]), data[1]
    base = tf.keras.models.clone_model(keras_cnn)
    base.set_weights(keras_cnn.get_weights())
    clustered = EX.cluster_keras(base, xtr, ytr, clusters=8, epochs=1)
    assert max(EX.unique_weights(clustered)) <= 8


def test_qat_model_converts_to_int8(keras_cnn, data):
    import tensorflow as tf

    xtr, ytr = EX.to_nhwc(data[0]), data[1]
    base = tf.keras.models.clone_model(keras_cnn)
    base.set_weights(keras_cnn.get_weights())
    qat = EX.qat_keras(base, xtr, ytr, epochs=1)
    content = EX.convert_tflite(qat, "dynamic-int8")
    acc = EX.accuracy(EX.LiteModel(content).predict(EX.to_nhwc(data[2])), data[3])
    assert acc > 0.85


def test_mlp_twin_has_the_same_parameter_count():
    from accel_lib.models import MLP

    keras_mlp = EX.keras_model("mlp")
    assert keras_mlp.count_params() == sum(p.numel() for p in MLP().parameters())
    with pytest.raises(ValueError, match="kind must be one of"):
        EX.keras_model("rnn")


def test_measure_variant_row(data):
    v = EX.measure_variant("PyTorch", "eager", "fp32", 100,
                           lambda x: np.eye(10)[data[3][:len(x)]], data[2], data[3], repeats=3)
    assert v.accuracy == 1.0 and v.bs1_ms > 0 and len(v.row()) == len(EX.VARIANT_HEADER)
