"""Quantization ops: qparams, bit-exact fake-quantize against torch, log and k-means schemes."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from accel_lib.quantization import (
    OBSERVERS,
    MinMaxObserver,
    QParams,
    cast_error,
    choose_qparams,
    cluster_quantize,
    dequantize,
    fake_quantize,
    in_range_mask,
    kmeans_codebook,
    make_observer,
    packed_size_bytes,
    pow2_quantize,
    qparams_from_tensor,
    quant_range,
    quantization_mse,
    quantize,
    unit_roundoff,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch.ao.quantization as tq


# ---------------------------------------------------------------- ranges and qparams

def test_quant_range_hand_computed():
    assert quant_range(8, signed=True) == (-128, 127)
    assert quant_range(8, signed=False) == (0, 255)
    assert quant_range(2, signed=True) == (-2, 1)
    assert quant_range(16, signed=False) == (0, 65535)


@pytest.mark.parametrize("bits, error", [(1, ValueError), (17, ValueError), (0, ValueError),
                                         (8.0, TypeError), (True, TypeError), ("8", TypeError)])
def test_bits_out_of_range_is_a_clear_error(bits, error):
    with pytest.raises(error, match=r"bits must be an int in \[2, 16\]"):
        quant_range(bits)
    with pytest.raises(error, match="bits"):
        choose_qparams(-1.0, 1.0, bits)
    with pytest.raises(error, match="bits"):
        pow2_quantize(torch.ones(3), bits)


def test_choose_qparams_hand_computed():
    # range [-1, 3] over 0..255: s = 4/255, z = 0 - round(-1 / s) = round(63.75) = 64
    qp = choose_qparams(-1.0, 3.0, 8)
    assert qp.scale.item() == pytest.approx(4 / 255)
    assert qp.zero_point.item() == 64
    # symmetric signed: s = 3 / 127.5, z = 0
    qp = choose_qparams(-1.0, 3.0, 8, symmetric=True)
    assert qp.scale.item() == pytest.approx(3 / 127.5)
    assert qp.zero_point.item() == 0
    # a range that excludes 0 is widened to include it (0 must be exact)
    qp = choose_qparams(2.0, 4.0, 4)
    assert qp.zero_point.item() == 0 and qp.scale.item() == pytest.approx(4 / 15)
    assert fake_quantize(torch.zeros(3), choose_qparams(-0.37, 1.91, 5)).abs().max() == 0


@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_qparams_match_torch_minmax_observer(bits, symmetric):
    x = torch.randn(500) * 2 + 0.3
    dtype = torch.qint8 if symmetric else torch.quint8
    qmin, qmax = quant_range(bits, signed=symmetric)
    scheme = torch.per_tensor_symmetric if symmetric else torch.per_tensor_affine
    obs = tq.MinMaxObserver(dtype=dtype, qscheme=scheme, quant_min=qmin, quant_max=qmax)
    obs(x)
    ref_scale, ref_zp = obs.calculate_qparams()
    mine = MinMaxObserver()
    mine(x)
    qp = mine.qparams(bits, symmetric=symmetric)
    assert torch.equal(qp.scale.reshape(1), ref_scale)
    assert torch.equal(qp.zero_point.reshape(1).long(), ref_zp.long())


def test_per_channel_qparams_match_torch_per_channel_observer():
    w = torch.randn(6, 5, 3) * torch.arange(1, 7).reshape(6, 1, 1)
    obs = tq.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                      qscheme=torch.per_channel_symmetric)
    obs(w)
    ref_scale, ref_zp = obs.calculate_qparams()
    qp = qparams_from_tensor(w, 8, symmetric=True, axis=0)
    assert torch.equal(qp.scale, ref_scale) and torch.equal(qp.zero_point.long(), ref_zp.long())


# ------------------------------------------------- quantize / dequantize vs torch ops

@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8, 12, 16])
@pytest.mark.parametrize("symmetric", [False, True])
def test_fake_quantize_is_bit_exact_with_torch_per_tensor(bits, symmetric):
    x = torch.randn(300, 7) * 3
    qp = qparams_from_tensor(x[:50], bits, symmetric=symmetric)  # later rows get clipped
    ref = torch.fake_quantize_per_tensor_affine(x, qp.scale.item(), int(qp.zero_point),
                                                qp.qmin, qp.qmax)
    assert torch.equal(fake_quantize(x, qp), ref)
    assert torch.equal(dequantize(quantize(x, qp), qp), ref)


@pytest.mark.parametrize("axis", [0, 1, 2, -1])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_fake_quantize_is_bit_exact_with_torch_per_channel(axis, bits):
    x = torch.randn(4, 5, 6) * torch.rand(1, 5, 1) * 4
    qp = qparams_from_tensor(x, bits, axis=axis)
    ref = torch.fake_quantize_per_channel_affine(x, qp.scale, qp.zero_point, axis % 3,
                                                 qp.qmin, qp.qmax)
    assert torch.equal(fake_quantize(x, qp), ref)
    assert torch.equal(dequantize(quantize(x, qp), qp), ref)


def test_rounding_is_half_to_even_like_torch():
    qp = QParams(torch.tensor(0.5), torch.tensor(0, dtype=torch.int32), -128, 127)
    x = torch.tensor([0.25, 0.75, 1.25, -0.25, -0.75])  # codes 0.5, 1.5, 2.5, -0.5, -1.5
    assert quantize(x, qp).tolist() == [0, 2, 2, 0, -2]
    ref = torch.fake_quantize_per_tensor_affine(x, 0.5, 0, -128, 127)
    assert torch.equal(fake_quantize(x, qp), ref)


def test_codes_use_the_smallest_integer_dtype_and_clip():
    x = torch.tensor([-10.0, 0.0, 10.0])
    assert quantize(x, choose_qparams(-1.0, 1.0, 8, symmetric=True)).dtype == torch.int8
    assert quantize(x, choose_qparams(-1.0, 1.0, 8)).dtype == torch.uint8
    assert quantize(x, choose_qparams(-1.0, 1.0, 12)).dtype == torch.int16
    q = quantize(x, choose_qparams(-1.0, 1.0, 4, symmetric=True))
    assert q.tolist() == [-8, 0, 7]


def test_rounding_error_is_uniform_with_variance_step_squared_over_12():
    x = torch.rand(200_000) * 2 - 1
    for bits in (4, 6, 8):
        qp = choose_qparams(-1.0, 1.0, bits)
        err = fake_quantize(x, qp) - x
        step = qp.scale.item()
        assert err.abs().max() <= step / 2 + 1e-6
        assert quantization_mse(x, qp) == pytest.approx(step**2 / 12, rel=0.05)


def test_per_channel_beats_per_tensor_when_channel_ranges_differ():
    w = torch.randn(16, 64) * torch.logspace(-2, 0, 16).reshape(16, 1)
    per_tensor = quantization_mse(w, qparams_from_tensor(w, 4, symmetric=True))
    per_channel = quantization_mse(w, qparams_from_tensor(w, 4, symmetric=True, axis=0))
    assert per_channel < per_tensor / 2


def test_qparams_bad_inputs():
    with pytest.raises(ValueError, match="min_val must be <= max_val"):
        choose_qparams(1.0, -1.0)
    with pytest.raises(ValueError, match="finite"):
        choose_qparams(float("nan"), 1.0)
    with pytest.raises(ValueError, match="axis"):
        choose_qparams(torch.zeros(3), torch.ones(3))  # 1-d ranges need an axis
    with pytest.raises(ValueError, match="channels"):
        fake_quantize(torch.randn(4, 5), qparams_from_tensor(torch.randn(3, 5), axis=0))
    with pytest.raises(ValueError, match="axis must be an int"):
        qparams_from_tensor(torch.randn(3, 4), axis=2)
    with pytest.raises(ValueError, match="empty"):
        qparams_from_tensor(torch.empty(0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        quantize([1.0, 2.0], choose_qparams(-1.0, 1.0))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        fake_quantize([1.0, 2.0], choose_qparams(-1.0, 1.0))  # was an AttributeError


# --------------------------------------------------------------- non-uniform schemes

def test_pow2_quantize_levels_and_error():
    # 3 bits: sign + 3 magnitudes 2^e_max, 2^(e_max-1), 2^(e_max-2), e_max = round(log2 3) = 2
    x = torch.tensor([1.0, -1.6, -0.3, 0.0, 0.004, 3.0])
    assert pow2_quantize(x, 3).tolist() == [1.0, -2.0, 0.0, 0.0, 0.0, 4.0]
    w = torch.randn(10_000)
    q = pow2_quantize(w, 6)
    nonzero = q != 0
    mags = q[nonzero].abs()
    assert torch.equal(torch.exp2(torch.log2(mags).round()), mags)  # all powers of two
    assert len(mags.unique()) <= 2**5 - 1
    rel = ((q - w).abs() / w.abs())[nonzero]
    assert rel.max() <= 2**0.5 - 1 + 1e-6
    assert pow2_quantize(torch.zeros(4), 4).abs().max() == 0


def test_kmeans_matches_scikit_learn_lloyd():
    from sklearn.cluster import KMeans

    x = torch.randn(3000, dtype=torch.float32)
    codebook, labels = kmeans_codebook(x, 8, iters=300)
    init = torch.linspace(float(x.min()), float(x.max()), 8).reshape(-1, 1).double().numpy()
    ref = KMeans(8, init=init, n_init=1, max_iter=300, tol=0, algorithm="lloyd")
    ref.fit(x.double().reshape(-1, 1).numpy())
    assert torch.allclose(codebook.double(), torch.from_numpy(ref.cluster_centers_[:, 0]),
                          atol=1e-5)
    assert (labels.numpy() == ref.labels_).mean() > 0.999


def test_cluster_quantize_has_at_most_2_to_the_bits_values_and_beats_uniform():
    w = torch.randn(4000) ** 3  # heavy-tailed: a uniform grid wastes levels on the tails
    q = cluster_quantize(w, 3)
    assert len(q.unique()) <= 8
    uniform = fake_quantize(w, qparams_from_tensor(w, 3))
    assert ((q - w) ** 2).mean() < ((uniform - w) ** 2).mean()
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans_codebook(w, 0)


# ------------------------------------------------------------------ non-finite input

_REFUSING_NON_FINITE = {
    "quantize": lambda x: quantize(x, choose_qparams(-2.0, 2.0)),
    "fake_quantize": lambda x: fake_quantize(x, choose_qparams(-2.0, 2.0)),
    "in_range_mask": lambda x: in_range_mask(x, choose_qparams(-2.0, 2.0)),
    "qparams_from_tensor": lambda x: qparams_from_tensor(x),
    "pow2_quantize": lambda x: pow2_quantize(x),
    "kmeans_codebook": lambda x: kmeans_codebook(x, 2),
    "cluster_quantize": lambda x: cluster_quantize(x, 2),
    **{f"{name} observer": (lambda x, name=name: make_observer(name).update(x))
       for name in OBSERVERS},
}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("name", list(_REFUSING_NON_FINITE))
def test_non_finite_input_is_one_clear_error_everywhere(name, bad):
    """One contract: NaN and infinities are refused, naming x. Before, fake_quantize gave NaN
    where torch's fake-quantize gives the lowest code's value, pow2_quantize zeroed the whole
    output for one NaN (or raised OverflowError for inf), k-means gave a NaN codebook."""
    with pytest.raises(ValueError, match="x must be finite, got"):
        _REFUSING_NON_FINITE[name](torch.tensor([1.0, bad, -0.5]))


def test_pow2_quantize_edges():
    with pytest.raises(ValueError, match="max_val must be a finite number > 0"):
        pow2_quantize(torch.ones(3), max_val=-1.0)
    with pytest.raises(ValueError, match="max_val"):
        pow2_quantize(torch.ones(3), max_val=math.nan)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        pow2_quantize([1.0, 2.0])
    # a finite 3e38 rounds to the exponent 128, past float32's range: it saturates at 2^127
    q = pow2_quantize(torch.tensor([3e38, -1e38, 1.0]), 8)
    assert torch.isfinite(q).all() and q.tolist() == [2.0**127, -(2.0**126), 0.0]


def test_kmeans_edges():
    with pytest.raises(ValueError, match="iters must be a positive int, got -1"):
        kmeans_codebook(torch.randn(10), 2, iters=-1)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        kmeans_codebook([1.0, 2.0], 2)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        cluster_quantize([1.0, 2.0])


def test_reduced_precision_casts_stay_within_unit_roundoff():
    x = torch.randn(10_000)
    x = torch.sign(x) * (x.abs() * 10 + 1e-3)  # stay clear of fp16's subnormals (< 6.1e-5)
    for dtype, u in ((torch.float16, 2**-11), (torch.bfloat16, 2**-8)):
        assert unit_roundoff(dtype) == u
        err = cast_error(x, dtype)
        assert err["max_rel"] <= u and err["overflow"] == 0
    assert cast_error(torch.tensor([1e5]), torch.float16)["overflow"] == 1.0  # > 65504
    with pytest.raises(ValueError, match="dtype"):
        unit_roundoff(torch.int8)


def test_packed_size_bytes():
    assert packed_size_bytes(10, 4) == 5 and packed_size_bytes(3, 3) == 2
    with pytest.raises(ValueError, match="numel"):
        packed_size_bytes(-1, 8)


