"""accel_lib.quantization: against PyTorch's fake-quantize ops and observers, hand-computed
cases, invariants, and every bad-input error."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from accel_lib.data import digits_loaders
from accel_lib.models import MLP, SmallCNN
from accel_lib.quantization import (
    IntConv2d,
    IntLinear,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    QParams,
    QuantConfig,
    QuantWrapper,
    calibrate_,
    cast_error,
    choose_qparams,
    cluster_quantize,
    convert_to_int_,
    dequantize,
    dynamic_quantize,
    fake_quantize,
    fake_quantize_ste,
    int_matmul,
    kmeans_codebook,
    linear_error_bound,
    make_observer,
    packed_size_bytes,
    pow2_quantize,
    prepare_,
    ptq_,
    qat_,
    qparams_from_tensor,
    quant_range,
    quantization_mse,
    quantize,
    quantize_multiplier,
    requantize,
    serialized_size_bytes,
    state_size_bytes,
    unit_roundoff,
)
from accel_lib.train import TrainConfig, evaluate, train

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import torch.ao.quantization as tq


# ---------------------------------------------------------------- ranges and qparams

def test_quant_range_hand_computed():
    assert quant_range(8, signed=True) == (-128, 127)
    assert quant_range(8, signed=False) == (0, 255)
    assert quant_range(2, signed=True) == (-2, 1)
    assert quant_range(16, signed=False) == (0, 65535)


@pytest.mark.parametrize("bits", [1, 17, 0, 8.0, True, "8"])
def test_bits_out_of_range_is_a_clear_error(bits):
    with pytest.raises(ValueError, match="bits must be an int in"):
        quant_range(bits)
    with pytest.raises(ValueError, match="bits"):
        choose_qparams(-1.0, 1.0, bits)
    with pytest.raises(ValueError, match="bits"):
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


# ------------------------------------------------------------------------ observers

def test_moving_average_observer_matches_torch():
    ref = tq.MovingAverageMinMaxObserver(averaging_constant=0.1)
    mine = MovingAverageMinMaxObserver(0.1)
    for i in range(5):
        x = torch.randn(100) * (i + 1)
        ref(x)
        mine(x)
    lo, hi = mine.range()
    assert torch.allclose(lo, ref.min_val) and torch.allclose(hi, ref.max_val)


def test_per_channel_minmax_observer_across_batches():
    obs = MinMaxObserver(axis=1)
    a, b = torch.randn(8, 3, 4), torch.randn(8, 3, 4) * 5
    obs(a)
    obs(b)
    both = torch.cat([a, b]).transpose(0, 1).reshape(3, -1)
    lo, hi = obs.range()
    assert torch.equal(lo, both.amin(1)) and torch.equal(hi, both.amax(1))
    with pytest.raises(ValueError, match="channels"):
        obs(torch.randn(8, 4, 4))


def test_percentile_observer_clips_outliers_minmax_does_not():
    x = torch.randn(10_000)
    x[0] = 100.0
    pct, mm = PercentileObserver(99.9), MinMaxObserver()
    pct(x)
    mm(x)
    assert mm.range()[1] == 100.0
    lo, hi = pct.range()
    assert hi.item() == pytest.approx(torch.quantile(x.double(), 0.999).item(), rel=1e-5)
    inliers = x[1:]  # the one clipped outlier pays, every other value gets a finer step
    assert quantization_mse(inliers, pct.qparams(8)) < quantization_mse(inliers, mm.qparams(8)) / 10


def test_mse_observer_never_worse_than_minmax_and_clips_more_at_low_bits():
    x = torch.distributions.Laplace(0.0, 1.0).sample((20_000,))
    mse, mm = MSEObserver(grid=50), MinMaxObserver()
    mse(x)
    mm(x)
    for bits in (3, 8):
        assert quantization_mse(x, mse.qparams(bits)) <= quantization_mse(x, mm.qparams(bits))
    assert mse.range(3)[1] < mse.range(8)[1] < mm.range()[1]
    per_channel = MSEObserver(grid=20, axis=0)
    per_channel(torch.randn(4, 100))
    assert per_channel.qparams(4).scale.shape == (4,)


def test_observer_bad_inputs():
    for name in ("minmax", "moving_average", "percentile", "mse"):
        obs = make_observer(name)
        with pytest.raises(ValueError, match="observed no data"):
            obs.qparams(8)
        with pytest.raises(ValueError, match="empty"):
            obs.update(torch.empty(0))
    with pytest.raises(ValueError, match="observer must be one of"):
        make_observer("histogram")
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(20)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(0.0)


# ------------------------------------------------------------------------- the STE

@pytest.mark.parametrize("per_channel", [False, True])
def test_ste_values_and_gradients_match_torch(per_channel):
    x = (torch.randn(6, 5) * 2).requires_grad_()
    qp = qparams_from_tensor(x.detach()[:2], 4, axis=1 if per_channel else None)
    grad_out = torch.randn(6, 5)
    fake_quantize_ste(x, qp).backward(grad_out)
    mine = x.grad.clone()
    x.grad = None
    if per_channel:
        ref = torch.fake_quantize_per_channel_affine(x, qp.scale, qp.zero_point, 1, qp.qmin,
                                                     qp.qmax)
    else:
        ref = torch.fake_quantize_per_tensor_affine(x, qp.scale.item(), int(qp.zero_point),
                                                    qp.qmin, qp.qmax)
    ref.backward(grad_out)
    assert torch.equal(fake_quantize_ste(x, qp), ref)
    assert torch.equal(mine, x.grad)
    assert (mine == 0).any() and (mine == grad_out).any()  # some clipped, some passed


# ------------------------------------------------------------- models: PTQ and QAT

@pytest.fixture(scope="module")
def digits():
    return digits_loaders(64)


@pytest.fixture(scope="module")
def trained_mlp(digits):
    from accel_lib import set_seed

    set_seed(0)
    model = MLP()
    train(model, digits.train, TrainConfig(epochs=4, lr=1e-2, progress=False))
    return model, evaluate(model, digits.test)


def test_ptq_int8_keeps_accuracy(trained_mlp, digits):
    model, base = trained_mlp
    q = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=4)
    assert len([m for m in q.modules() if isinstance(m, QuantWrapper)]) == 3
    assert abs(evaluate(q, digits.test) - base) <= 0.02


def test_ptq_weights_lie_on_the_grid(trained_mlp, digits):
    q = ptq_(copy.deepcopy(trained_mlp[0]), digits.train, QuantConfig(weight_bits=3),
             max_batches=2)
    for w in [m for m in q.modules() if isinstance(m, QuantWrapper)]:
        assert (w.quantized_weight().unique(dim=None).numel()
                <= 8 * w.module.weight.shape[0])
        codes = w.quantized_weight() / w.weight_qparams().scale.reshape(-1, 1)
        assert torch.allclose(codes, codes.round(), atol=1e-4)


def test_qat_recovers_low_bit_accuracy(trained_mlp, digits):
    model, _ = trained_mlp
    config = QuantConfig(weight_bits=2, act_bits=2)
    ptq_acc = evaluate(ptq_(copy.deepcopy(model), digits.train, config, max_batches=4),
                       digits.test)
    qat = qat_(copy.deepcopy(model), digits.train, config,
               TrainConfig(epochs=2, lr=1e-3, progress=False), calibration_batches=4)
    assert evaluate(qat, digits.test) >= ptq_acc


def test_qat_trains_the_cnn_through_the_fake_quantizers(digits):
    model = SmallCNN(channels=(8, 8))
    before = copy.deepcopy(model.state_dict())
    qat_(model, digits.train, QuantConfig(weight_bits=4, act_bits=8),
         TrainConfig(epochs=1, lr=1e-2, progress=False), calibration_batches=2)
    conv = model.features[0]
    assert isinstance(conv, QuantWrapper)
    assert not torch.equal(conv.module.weight, before["features.0.weight"])
    assert evaluate(model, digits.test) > 0.5


def test_model_level_bad_inputs(digits):
    with pytest.raises(ValueError, match="no layer to quantize"):
        prepare_(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="module must be one of"):
        QuantWrapper(nn.LSTM(3, 3), QuantConfig())
    with pytest.raises(ValueError, match="already prepared"):
        prepare_(prepare_(MLP()))
    with pytest.raises(ValueError, match="calibration data is empty"):
        ptq_(MLP(), [])
    with pytest.raises(ValueError, match="not prepared"):
        calibrate_(MLP(), digits.train)
    with pytest.raises(RuntimeError, match="calibrate_"):
        prepare_(MLP())(torch.randn(2, 64))
    with pytest.raises(ValueError, match="weight_bits"):
        QuantConfig(weight_bits=1)
    with pytest.raises(ValueError, match="act_bits"):
        QuantConfig(act_bits=32)
    with pytest.raises(ValueError, match="observer"):
        QuantConfig(observer="max")
    with pytest.raises(ValueError, match="weight_bits=8"):
        convert_to_int_(ptq_(MLP(), digits.train, QuantConfig(weight_bits=4), max_batches=1))
    with pytest.raises(ValueError, match="Conv1d"):
        convert_to_int_(ptq_(nn.Sequential(nn.Conv1d(2, 2, 1)), [torch.randn(3, 2, 5)]))


# ------------------------------------------------------------- the integer path

def test_int_matmul_is_exact():
    q_x = torch.randint(-128, 128, (5, 37), dtype=torch.int8)
    q_w = torch.randint(-127, 128, (9, 37), dtype=torch.int8)
    ref = (q_x.long() - 7) @ q_w.long().t()
    assert torch.equal(int_matmul(q_x, 7, q_w).long(), ref)
    with pytest.raises(TypeError, match="int8"):
        int_matmul(q_x.int(), 0, q_w)


def test_fixed_point_requantize_matches_float_within_one_code():
    acc = torch.randint(-2**20, 2**20, (64, 16), dtype=torch.int32)
    multiplier = torch.rand(16, dtype=torch.float64) * 1e-3 + 1e-5
    m0, shift = quantize_multiplier(multiplier)
    assert ((m0 >= 2**30) & (m0 <= 2**31)).all()
    assert torch.allclose(m0.double() * torch.exp2(-31.0 - shift.double()), multiplier,
                          rtol=1e-9)
    q = requantize(acc, m0, shift, zero_point=3, qmin=-128, qmax=127)
    ref = (torch.round(acc.double() * multiplier) + 3).clamp(-128, 127)
    diff = (q.double() - ref).abs()
    assert diff.max() <= 1 and (diff == 0).float().mean() > 0.99
    with pytest.raises(ValueError, match="multiplier"):
        quantize_multiplier(torch.tensor([-1.0]))


def test_int_linear_matches_fake_quant_and_stays_within_the_error_bound():
    lin = nn.Linear(40, 12)
    x = torch.randn(32, 40)
    act = qparams_from_tensor(x, 8, signed=True)
    int_lin = IntLinear.from_float(lin, act)
    assert int_lin.weight_q.dtype == torch.int8
    y = int_lin(x)
    with torch.no_grad():
        w_qp = qparams_from_tensor(lin.weight, 8, symmetric=True, axis=0)
        simulated = nn.functional.linear(fake_quantize(x, act), fake_quantize(lin.weight, w_qp),
                                         lin.bias)
        exact = lin(x)
    bound = linear_error_bound(x, lin.weight, act.scale.item(), w_qp.scale).float()
    assert ((y - exact).abs() <= bound + 1e-5 * exact.abs()).all()
    assert torch.allclose(y, simulated, atol=float(int_lin.acc_scale.max()) + 1e-5)
    # requantized int8 output: one more half step of the output grid
    out = qparams_from_tensor(exact, 8, signed=True)
    y8 = IntLinear.from_float(lin, act, out_qparams=out)(x)
    assert ((y8 - exact).abs() <= bound + out.scale / 2 + 1e-4).all()


def test_int_conv2d_matches_float_conv():
    conv = nn.Conv2d(3, 5, 3, padding=1, stride=2)
    x = torch.randn(2, 3, 9, 9)
    act = qparams_from_tensor(x, 8, signed=True)
    y = IntConv2d.from_float(conv, act)(x)
    with torch.no_grad():
        w_qp = qparams_from_tensor(conv.weight, 8, symmetric=True, axis=0)
        simulated = nn.functional.conv2d(fake_quantize(x, act), fake_quantize(conv.weight, w_qp),
                                         conv.bias, stride=2, padding=1)
        exact = conv(x)
    assert y.shape == exact.shape
    assert torch.allclose(y, simulated, atol=1e-4)
    assert (y - exact).abs().max() < 0.05 * exact.abs().max()
    with pytest.raises(ValueError, match="groups=1"):
        IntConv2d.from_float(nn.Conv2d(4, 4, 3, groups=2), act)
    with pytest.raises(TypeError, match="nn.Linear"):
        IntLinear.from_float(conv, act)


def test_convert_to_int_keeps_ptq_accuracy_and_shrinks_weights(trained_mlp, digits):
    model, _ = trained_mlp
    fake = ptq_(copy.deepcopy(model), digits.train, QuantConfig(), max_batches=4)
    real = convert_to_int_(copy.deepcopy(fake))
    assert all(not isinstance(m, QuantWrapper) for m in real.modules())
    assert abs(evaluate(real, digits.test) - evaluate(fake, digits.test)) <= 0.01
    weight_bytes = sum(m.weight_q.numel() for m in real.modules() if isinstance(m, IntLinear))
    assert weight_bytes == sum(p.numel() for n, p in model.named_parameters() if "weight" in n)
    cnn = SmallCNN(channels=(4, 4))
    q_cnn = convert_to_int_(ptq_(copy.deepcopy(cnn), digits.train, max_batches=2))
    x = next(iter(digits.test))[0]
    assert q_cnn(x).shape == (x.shape[0], 10)


def test_dynamic_quantization_and_sizes():
    model = MLP(784, (256,), 10).eval()
    q = dynamic_quantize(model)
    x = torch.randn(4, 784)
    with torch.no_grad():
        assert torch.allclose(q(x), model(x), atol=0.05)
    fp32, int8 = serialized_size_bytes(model), serialized_size_bytes(q)
    assert 3.0 < fp32 / int8 < 4.1
    weights = 784 * 256 + 256 * 10
    assert state_size_bytes(model) == 4 * (weights + 266)
    assert weights <= state_size_bytes(q) < weights + 4 * 266 + 100  # int8 weights, fp32 bias
    with pytest.raises(ValueError, match="nn.Linear"):
        dynamic_quantize(nn.Sequential(nn.Conv2d(1, 1, 1)))


def test_replace_modules_swaps_depth_first_and_counts():
    from accel_lib.quantization import replace_modules_

    model = torch.nn.Sequential(torch.nn.Linear(2, 2),
                                torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(2, 2)))
    n = replace_modules_(model, lambda m: torch.nn.Identity()
                         if isinstance(m, torch.nn.Linear) else None)
    assert n == 2
    assert isinstance(model[0], torch.nn.Identity) and isinstance(model[1][1], torch.nn.Identity)
    assert isinstance(model[1][0], torch.nn.ReLU)
