import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from accel_lib.data import digits_loaders
from accel_lib.distillation import (
    DistillConfig,
    FeatureHint,
    distill,
    distill_step,
    distillation_loss,
    hint_loss,
    log_softmax_with_temperature,
    make_adapter,
    soft_target_kl,
    softmax_with_temperature,
)
from accel_lib.models import MLP, SmallCNN
from accel_lib.train import TrainConfig, evaluate, train
from tests.reference import assert_matches_reference


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0, 20.0])
def test_softmax_with_temperature_matches_torch(temperature):
    z = torch.randn(5, 7, dtype=torch.float64) * 10
    assert_matches_reference(lambda t: softmax_with_temperature(t, temperature),
                             lambda t: F.softmax(t / temperature, dim=-1), z)
    assert_matches_reference(lambda t: log_softmax_with_temperature(t, temperature),
                             lambda t: F.log_softmax(t / temperature, dim=-1), z)


def test_softmax_with_temperature_hand_computed_and_limits():
    z = torch.tensor([[2.0 * torch.log(torch.tensor(3.0)), 0.0]])  # exp(z/2) = (3, 1)
    torch.testing.assert_close(softmax_with_temperature(z, 2.0), torch.tensor([[0.75, 0.25]]))
    big = torch.tensor([[1000.0, 0.0, -1000.0]])  # stable: no overflow to nan
    assert torch.isfinite(softmax_with_temperature(big, 1.0)).all()
    # T -> inf: uniform; T -> 0: one-hot of the argmax
    z = torch.randn(3, 10)
    torch.testing.assert_close(softmax_with_temperature(z, 1e6), torch.full((3, 10), 0.1))
    torch.testing.assert_close(softmax_with_temperature(z, 1e-4),
                               F.one_hot(z.argmax(1), 10).float())


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_soft_target_kl_matches_kl_div_with_log_target(temperature):
    zs, zt = torch.randn(6, 10, dtype=torch.float64), torch.randn(6, 10, dtype=torch.float64) * 3
    assert_matches_reference(
        lambda s, t: soft_target_kl(s, t, temperature),
        lambda s, t: F.kl_div(F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1),
                              log_target=True, reduction="batchmean"), zs, zt)
    assert soft_target_kl(zt, zt, temperature).abs() < 1e-12  # KL(p || p) = 0
    assert soft_target_kl(zs, zt, temperature) > 0


@pytest.mark.parametrize("temperature", [1e2, 1e3, 1e4])
def test_soft_target_kl_in_float32_matches_a_float64_reference_at_high_temperature(temperature):
    """In float32 the KL is a small difference of large sums: at T = 1e4 it came out
    negative (-6.1 after the T^2 factor), 1.2% off at T = 1e3."""
    g = torch.Generator().manual_seed(0)
    zt = torch.randn(64, 10, generator=g) * 5
    zs = zt + torch.randn(64, 10, generator=g) * 0.5
    kl = soft_target_kl(zs, zt, temperature)
    assert kl.dtype == torch.float32 and kl >= 0
    reference = F.kl_div(F.log_softmax(zs.double() / temperature, 1),
                         F.log_softmax(zt.double() / temperature, 1), log_target=True,
                         reduction="batchmean")
    torch.testing.assert_close(kl.double() * temperature**2, reference * temperature**2,
                               rtol=1e-4, atol=0)


@pytest.mark.parametrize("temperature", [1e4, 1e6, 1e8])
def test_soft_target_kl_times_t_squared_reaches_its_large_temperature_limit(temperature):
    """As T -> inf, T^2 KL -> 1/(2N) sum_i (d_i - mean d)^2 with d = z_t - z_s (per example,
    then the batch mean): finite, positive, and what the T^2 factor is there for."""
    g = torch.Generator().manual_seed(0)
    zt, zs = torch.randn(16, 10, generator=g) * 5, torch.randn(16, 10, generator=g) * 5
    d = (zt - zs).double()
    limit = ((d - d.mean(1, keepdim=True)) ** 2).mean(1).mean() / 2
    scaled = soft_target_kl(zs, zt, temperature).double() * temperature**2
    torch.testing.assert_close(scaled, limit, rtol=2e-3, atol=0)
    assert soft_target_kl(zt, zt, temperature) == 0


def test_numpy_scalars_work_like_python_numbers():
    """A temperature from a numpy sweep (np.int64(4)) works wherever 4 does."""
    zs, zt = torch.randn(6, 10), torch.randn(6, 10)
    y = torch.randint(0, 10, (6,))
    assert_matches_reference(lambda t: softmax_with_temperature(t, np.int64(4)),
                             lambda t: F.softmax(t / 4, dim=-1), zs)
    loss = distillation_loss(zs, zt, y, temperature=np.int64(4), alpha=np.float32(0.25))
    assert isinstance(loss, torch.Tensor) and loss.dtype == torch.float32
    torch.testing.assert_close(loss, distillation_loss(zs, zt, y, temperature=4.0, alpha=0.25))
    config = DistillConfig(temperature=np.int64(4), alpha=np.float32(0.5))
    assert (config.temperature, config.alpha) == (4.0, 0.5)
    assert type(config.temperature) is float and type(config.alpha) is float


def test_soft_target_kl_hand_computed():
    # p_t = (0.5, 0.5), p_s = (0.25, 0.75): KL = 0.5 ln 2 + 0.5 ln(2/3)
    zt = torch.zeros(1, 2)
    zs = torch.log(torch.tensor([[0.25, 0.75]]))
    expected = 0.5 * torch.log(torch.tensor(2.0)) + 0.5 * torch.log(torch.tensor(2.0 / 3.0))
    torch.testing.assert_close(soft_target_kl(zs, zt, 1.0), expected)


@pytest.mark.parametrize("temperature, alpha", [(1.0, 0.5), (4.0, 0.3), (10.0, 0.0), (2.0, 1.0)])
def test_distillation_loss_matches_direct_torch_computation(temperature, alpha):
    zs, zt = torch.randn(8, 10, dtype=torch.float64), torch.randn(8, 10, dtype=torch.float64)
    y = torch.randint(0, 10, (8,))

    def expected(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # the teacher is a constant target: the library detaches it, so does the reference
        t = t.detach()
        return alpha * F.cross_entropy(s, y) + (1 - alpha) * temperature**2 * F.kl_div(
            F.log_softmax(s / temperature, 1), F.log_softmax(t / temperature, 1),
            log_target=True, reduction="batchmean")

    assert_matches_reference(lambda s, t: distillation_loss(s, t, y, temperature, alpha),
                             expected, zs, zt)


def test_distillation_loss_gradient_is_exact_and_teacher_gets_none():
    temperature, b = 3.0, 4
    zs = torch.randn(b, 5, dtype=torch.float64, requires_grad=True)
    zt = torch.randn(b, 5, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (b,))
    distillation_loss(zs, zt, y, temperature, alpha=0.0).backward()
    # d/dz_s of T^2 KL(p_t || p_s) (batch mean) = T (p_s - p_t) / B
    ps, pt = F.softmax(zs / temperature, 1), F.softmax(zt / temperature, 1)
    torch.testing.assert_close(zs.grad, temperature * (ps - pt).detach() / b)
    assert zt.grad is None  # the teacher is a fixed target


def test_soft_gradient_scales_as_one_over_t_squared():
    """Why T^2: without it the soft term's gradient falls as 1/T^2; with it, it stays put."""
    zs = torch.randn(16, 10, dtype=torch.float64)
    zt = torch.randn(16, 10, dtype=torch.float64) * 2
    zs, zt = zs - zs.mean(1, keepdim=True), zt - zt.mean(1, keepdim=True)

    def grad_norm(temperature, scaled):
        z = zs.clone().requires_grad_(True)
        loss = soft_target_kl(z, zt, temperature) * (temperature**2 if scaled else 1.0)
        loss.backward()
        return z.grad.norm().item()

    for t in (10.0, 20.0):
        assert grad_norm(t, False) / grad_norm(2 * t, False) == pytest.approx(4.0, rel=0.03)
        assert grad_norm(t, True) / grad_norm(2 * t, True) == pytest.approx(1.0, rel=0.03)
    # the limit: T^2-scaled gradient -> (z_s - z_t) / (N B), logit matching
    z = zs.clone().requires_grad_(True)
    (soft_target_kl(z, zt, 1e4) * 1e4**2).backward()
    torch.testing.assert_close(z.grad, (zs - zt) / (10 * 16), rtol=1e-2, atol=1e-6)


@pytest.mark.parametrize("temperature, error", [(0.0, ValueError), (-1.0, ValueError),
                                                (float("nan"), ValueError),
                                                (float("inf"), ValueError), (True, TypeError)])
def test_bad_temperature_is_a_clear_error(temperature, error):
    z = torch.randn(2, 3)
    with pytest.raises(error, match="temperature"):
        distillation_loss(z, z, torch.zeros(2, dtype=torch.long), temperature, 0.5)
    with pytest.raises(error, match="temperature"):
        softmax_with_temperature(z, temperature)
    with pytest.raises(error, match="temperature"):
        DistillConfig(temperature=temperature)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan")])
def test_bad_alpha_is_a_clear_error(alpha):
    z = torch.randn(2, 3)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(z, z, torch.zeros(2, dtype=torch.long), 2.0, alpha)
    with pytest.raises(ValueError, match="alpha"):
        DistillConfig(alpha=alpha)


def test_shape_mismatches_are_clear_errors():
    y = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(torch.randn(2, 3), torch.randn(2, 4), y)
    with pytest.raises(ValueError, match="student_logits"):
        distillation_loss(torch.randn(2, 3, 1), torch.randn(2, 3, 1), y)
    with pytest.raises(ValueError, match="target"):
        distillation_loss(torch.randn(2, 3), torch.randn(2, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="hint_weight"):
        DistillConfig(hint_weight=-1.0)


def test_hint_loss_and_adapters():
    s, t = torch.randn(4, 8), torch.randn(4, 16)
    adapter = make_adapter((8,), (16,))
    assert isinstance(adapter, nn.Linear)
    torch.testing.assert_close(hint_loss(s, t, adapter), F.mse_loss(adapter(s), t))
    conv = make_adapter((8, 4, 4), (16, 4, 4))
    assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1)
    assert hint_loss(torch.randn(2, 8, 4, 4), torch.randn(2, 16, 4, 4), conv).dim() == 0
    with pytest.raises(ValueError, match="student_shape"):
        make_adapter((8, 4, 4), (16, 2, 2))
    with pytest.raises(ValueError, match="student_features"):
        hint_loss(s, t)


def test_feature_hint_hooks_capture_and_train_the_adapter():
    student, teacher = MLP(hidden_sizes=(8,)), MLP(hidden_sizes=(32, 16))
    x = torch.randn(5, 64)
    with pytest.raises(ValueError, match="student_layer"):
        FeatureHint(student, "nope", teacher, "net.2", x)
    with pytest.raises(ValueError, match="teacher_layer"):
        FeatureHint(student, "net.2", teacher, "nope", x)
    hint = FeatureHint(student, "net.2", teacher, "net.4", x)  # ReLU outputs: 8 -> 16
    assert isinstance(hint.adapter, nn.Linear) and hint.adapter.out_features == 16
    opt = torch.optim.SGD(list(student.parameters()) + list(hint.adapter.parameters()), lr=0.1)
    losses = []
    for _ in range(20):
        teacher(x)
        student(x)
        loss = hint.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    hint.remove()
    hint.student_features = None
    student(x)
    assert hint.student_features is None  # hooks are gone


def test_distill_step_with_alpha_one_is_a_plain_training_step():
    torch.manual_seed(0)
    a, teacher = MLP(hidden_sizes=(8,)), MLP(hidden_sizes=(8,))
    b = MLP(hidden_sizes=(8,))
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(6, 64), torch.randint(0, 10, (6,))
    opt_a = torch.optim.SGD(a.parameters(), lr=0.1)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.1)
    loss, logits = distill_step(a, teacher, x, y, opt_a, DistillConfig(alpha=1.0))
    opt_b.zero_grad()
    expected = F.cross_entropy(b(x), y)
    expected.backward()
    opt_b.step()
    assert loss == pytest.approx(expected.item()) and logits.shape == (6, 10)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)
    with pytest.raises(ValueError, match="hint"):
        distill_step(a, teacher, x, y, opt_a, DistillConfig(hint_weight=1.0))


def test_distilled_student_beats_scratch_student_on_digits():
    splits = digits_loaders(batch_size=32, seed=0)
    teacher = SmallCNN(channels=(16, 32))
    train(teacher, splits.train, TrainConfig(epochs=4, lr=3e-3, progress=False))
    teacher_acc = evaluate(teacher, splits.test)
    order = torch.randperm(len(splits.train.dataset), generator=torch.Generator().manual_seed(0))
    subset = Subset(splits.train.dataset, order[:100].tolist())

    def student_accuracy(kd):
        torch.manual_seed(0)
        loader = DataLoader(subset, batch_size=32, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        student = MLP(hidden_sizes=(32,))
        config = TrainConfig(epochs=60, lr=1e-2, progress=False)
        if kd is None:
            train(student, loader, config)
        else:
            history = distill(student, teacher, loader, config, kd, val_loader=splits.val)
            assert len(history.val_accuracy) == 60 and history.loss[-1] < history.loss[0]
        return evaluate(student, splits.test)

    scratch = student_accuracy(None)
    distilled = student_accuracy(DistillConfig(temperature=10.0, alpha=0.1))
    assert teacher_acc > 0.95
    assert distilled > scratch, (scratch, distilled, teacher_acc)


def test_distill_trains_a_hint_adapter():
    splits = digits_loaders(batch_size=64, seed=0)
    teacher = SmallCNN(channels=(8, 16))
    train(teacher, splits.train, TrainConfig(epochs=1, progress=False))
    student = SmallCNN(channels=(4, 8))
    x = next(iter(splits.train))[0]
    hint = FeatureHint(student, "features.5", teacher, "features.5", x)  # (8,8,8) -> (16,8,8)
    assert isinstance(hint.adapter, nn.Conv2d)
    before = hint.adapter.weight.detach().clone()
    distill(student, teacher, splits.train, TrainConfig(epochs=1, progress=False),
            DistillConfig(hint_weight=1.0), hint=hint)
    assert not torch.equal(before, hint.adapter.weight)
    assert evaluate(student, splits.test) > 0.5
