"""accel_lib's optimisers against torch.optim's: same model, data and hyper-parameters."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from torch import nn

from accel_lib import optim as O
from accel_lib.models import MLP
from accel_lib.train import TrainConfig, evaluate, train

STEPS = 100


class _WithUnused(nn.Module):
    """An MLP plus a parameter that never gets a gradient (its .grad stays None)."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = MLP(hidden_sizes=(32,))
        self.unused = nn.Parameter(torch.ones(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


@pytest.fixture(scope="module")
def batches(digits):
    return list(itertools.islice(itertools.cycle(list(digits.train)), STEPS))


def _groups(model: _WithUnused, second_lr: float | None) -> list[dict]:
    """Two parameter groups (the output layer with its own lr), or one."""
    if second_lr is None:
        return [{"params": list(model.parameters())}]
    head = list(model.mlp.net[-1].parameters())
    rest = [p for p in model.parameters() if all(p is not h for h in head)]
    return [{"params": rest}, {"params": head, "lr": second_lr}]


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list) -> None:
    for x, y in batches:
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


CASES = [
    ("SGD", {"lr": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.03, "momentum": 0.8, "nesterov": True, "weight_decay": 1e-3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "maximize": True}),
    ("Adagrad", {"lr": 0.05}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 1e-2, "weight_decay": 1e-3,
                 "initial_accumulator_value": 0.1, "eps": 1e-6}),
    ("RMSprop", {"lr": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "alpha": 0.9, "momentum": 0.5, "centered": True,
                 "weight_decay": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "maximize": True}),
    ("Adam", {"lr": 1e-3}),
    ("Adam", {"lr": 2e-3, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-2}),
    ("Adam", {"lr": 1e-3, "amsgrad": True, "maximize": True}),
    ("AdamW", {"lr": 1e-3}),
    ("AdamW", {"lr": 2e-3, "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.mark.parametrize("second_lr", [None, 0.5e-2])
@pytest.mark.parametrize("name,hyper", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_equals_torch_optim_after_100_steps(name, hyper, second_lr, batches):
    torch.manual_seed(0)
    reference = _WithUnused()
    ours = {flag: copy.deepcopy(reference) for flag in (False, True)}
    torch_opt = getattr(torch.optim, name)(_groups(reference, second_lr), **hyper)
    _train(reference, torch_opt, batches)
    expected = _flat(reference)
    assert reference.unused.grad is None
    foreach_flags = (False, True) if name in ("SGD", "Adam", "AdamW") else (None,)
    for flag in foreach_flags:
        model = ours[bool(flag)]
        extra = {} if flag is None else {"foreach": flag}
        opt = getattr(O, name)(_groups(model, second_lr), **hyper, **extra)
        _train(model, opt, batches)
        # the same order of float32 operations: bit-identical, not merely close
        assert torch.equal(_flat(model), expected), f"{name} foreach={flag}"
        torch.testing.assert_close(_flat(model), expected, rtol=0, atol=1e-6)
        assert model.unused not in opt.state, "no state for a parameter without gradient"
        for p in model.parameters():  # the state holds the same tensors, by the same names
            if p is model.unused:
                continue
            mine = opt.state[p]
            theirs = torch_opt.state[dict(zip(model.parameters(), reference.parameters(),
                                              strict=True))[p]]
            assert set(mine) == set(theirs)
            for key, value in mine.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:
                    assert torch.equal(value, theirs[key]), key
                else:
                    assert float(value) == float(theirs[key]), key


def test_state_dict_round_trip_continues_the_same_trajectory(batches):
    torch.manual_seed(0)
    a = MLP(hidden_sizes=(16,))
    b = copy.deepcopy(a)
    opt_a = O.Adam(a.parameters(), lr=1e-3)
    _train(a, opt_a, batches[:10])
    b.load_state_dict(a.state_dict())
    opt_b = O.Adam(b.parameters(), lr=1e-3)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if saved and loaded
    _train(a, opt_a, batches[10:20])
    _train(b, opt_b, batches[10:20])
    assert torch.equal(_flat(a), _flat(b))


def test_drops_into_the_course_training_loop(digits):
    torch.manual_seed(0)
    model = MLP()
    history = train(model, digits.train, TrainConfig(epochs=3, progress=False, device="cpu"),
                    optimizer=O.AdamW(model.parameters(), lr=3e-3))
    assert history.loss[-1] < history.loss[0]
    assert evaluate(model, digits.test) > 0.9


def test_torch_schedulers_drive_our_optimizers():
    p = nn.Parameter(torch.zeros(2))
    opt = O.SGD([p], lr=1.0, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs, momenta = [], []
    for _ in range(9):
        p.grad = torch.ones(2)
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
    assert max(lrs) == pytest.approx(1.0) and momenta[0] < 0.95


# ---------------------------------------------------------------- classical momentum


def _fixed_grads(n: int, shape: tuple[int, ...], seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=gen, dtype=torch.float64) for _ in range(n)]


def test_classical_momentum_equals_pytorch_convention_at_constant_lr():
    torch.manual_seed(0)
    model = MLP(hidden_sizes=(16,)).double()
    twin = copy.deepcopy(model)
    x, y = torch.randn(32, 64, dtype=torch.float64), torch.randint(0, 10, (32,))
    for opt, m in ((torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), model),
                   (O.ClassicalMomentum(twin.parameters(), lr=0.05, momentum=0.9), twin)):
        _train(m, opt, [(x, y)] * 50)
    torch.testing.assert_close(_flat(twin), _flat(model), rtol=1e-9, atol=1e-12)


def test_classical_momentum_differs_once_the_lr_changes_as_derived():
    """v_classical = sum_s mu^(t-s) lr_s g_s; PyTorch's step is lr_t sum_s mu^(t-s) g_s."""
    grads = _fixed_grads(6, (4,))
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]  # a step schedule: lr drops 10x at step 3
    mu = 0.9
    p_torch, p_classical = nn.Parameter(torch.zeros(4, dtype=torch.float64)), \
        nn.Parameter(torch.zeros(4, dtype=torch.float64))
    a = torch.optim.SGD([p_torch], lr=lrs[0], momentum=mu)
    b = O.ClassicalMomentum([p_classical], lr=lrs[0], momentum=mu)
    expected_torch = torch.zeros(4, dtype=torch.float64)
    expected_classical = torch.zeros(4, dtype=torch.float64)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True)):
        for opt, p in ((a, p_torch), (b, p_classical)):
            opt.param_groups[0]["lr"] = lr
            p.grad = g.clone()
            opt.step()
        expected_torch -= lr * sum(mu ** (t - s) * grads[s] for s in range(t + 1))
        expected_classical -= sum(mu ** (t - s) * lrs[s] * grads[s] for s in range(t + 1))
    torch.testing.assert_close(p_torch.detach(), expected_torch)
    torch.testing.assert_close(p_classical.detach(), expected_classical)
    assert (p_torch - p_classical).abs().max() > 1e-3, "after the drop they must differ"


# ---------------------------------------------------------------- Lion and LAMB


def test_lion_hand_computed_and_every_coordinate_moves_by_lr():
    p = nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    opt = O.Lion([p], lr=0.1, betas=(0.9, 0.99), weight_decay=0.5)
    p.grad = torch.tensor([0.2, -5.0, 0.0])
    opt.step()
    # c = 0.1 * g -> sign (1, -1, 0); p <- p (1 - 0.1 * 0.5) - 0.1 sign(c)
    torch.testing.assert_close(p.detach(), torch.tensor([0.95 - 0.1, -1.9 + 0.1, 2.85]))
    torch.testing.assert_close(opt.state[p]["exp_avg"], 0.01 * torch.tensor([0.2, -5.0, 0.0]))
    q = nn.Parameter(torch.randn(100))
    opt = O.Lion([q], lr=0.01)
    for g in _fixed_grads(5, (100,)):
        before = q.detach().clone()
        q.grad = g.float()
        opt.step()
        torch.testing.assert_close((q.detach() - before).abs(), torch.full((100,), 0.01))
    assert O.state_bytes_ratio(opt) == 1.0  # one state tensor: half of Adam's


def test_lamb_steps_along_adam_with_each_layer_moving_lr_times_its_norm():
    """LAMB's update direction is Adam's (torch.optim.Adam, same gradients), rescaled so
    the step of each tensor has norm lr * ||p||."""
    lr = 0.01
    shapes = [(8, 4), (4,)]
    params = [nn.Parameter(torch.randn(*s, dtype=torch.float64)) for s in shapes]
    adam_params = [nn.Parameter(torch.zeros(*s, dtype=torch.float64)) for s in shapes]
    lamb = O.LAMB(params, lr=lr, eps=1e-8)
    adam = torch.optim.Adam(adam_params, lr=1.0, eps=1e-8)
    gens = [_fixed_grads(5, s, seed=i) for i, s in enumerate(shapes)]
    for t in range(5):
        before = [p.detach().clone() for p in params]
        adam_before = [p.detach().clone() for p in adam_params]
        for p, q, g in zip(params, adam_params, gens, strict=True):
            p.grad, q.grad = g[t].clone(), g[t].clone()
        lamb.step()
        adam.step()
        for p, b, q, qb in zip(params, before, adam_params, adam_before, strict=True):
            step, direction = b - p.detach(), qb - q.detach()  # Adam's m_hat/(sqrt(v_hat)+eps)
            torch.testing.assert_close(step.norm(), lr * b.norm())
            torch.testing.assert_close(step / step.norm(), direction / direction.norm())
    assert len(lamb.last_trust_ratios) == 2
    assert O.trust_ratio(torch.zeros(3), torch.ones(3)) == 1.0


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("make,error,match", [
    (lambda p: O.SGD(p, lr=-0.1), ValueError, "lr must be"),
    (lambda p: O.Adam(p, lr=-1e-3), ValueError, "lr must be"),
    (lambda p: O.Adam(p, lr="fast"), TypeError, "lr must be"),
    (lambda p: O.Adam(p, betas=(1.0, 0.999)), ValueError,
     r"betas\[0\] must be a number in \[0, 1\)"),
    (lambda p: O.Adam(p, betas=(0.9, -0.1)), ValueError, r"betas\[1\]"),
    (lambda p: O.AdamW(p, betas=0.9), TypeError, "betas must be a pair"),
    (lambda p: O.Lion(p, betas=(0.9, 1.5)), ValueError, r"betas\[1\]"),
    (lambda p: O.LAMB(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (lambda p: O.SGD(p, lr=0.1, momentum=1.2), ValueError, "momentum"),
    (lambda p: O.SGD(p, lr=0.1, nesterov=True), ValueError, "nesterov=True needs momentum > 0"),
    (lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "dampening = 0"),
    (lambda p: O.SGD(p, lr=0.1, weight_decay=-1), ValueError, "weight_decay"),
    (lambda p: O.RMSprop(p, alpha=1.5), ValueError, "alpha"),
    (lambda p: O.Adagrad(p, eps=-1.0), ValueError, "eps"),
    (lambda p: O.Adam(p, foreach="yes"), TypeError, "foreach must be a bool"),
    (lambda p: O.build_optimizer("adamax", p), ValueError, "name must be one of"),
])
def test_clear_errors(make, error, match):
    with pytest.raises(error, match=match):
        make([nn.Parameter(torch.zeros(2))])


def test_a_bad_param_group_changes_nothing():
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    opt = O.Adam([a], lr=1e-3)
    with pytest.raises(ValueError, match="lr must be"):
        opt.add_param_group({"params": [b], "lr": -1.0})
    with pytest.raises(ValueError, match=r"betas\[0\]"):
        opt.add_param_group({"params": [b], "betas": (1.0, 0.9)})
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [a]
    opt.add_param_group({"params": [b], "lr": 1e-2})
    assert opt.param_groups[1]["lr"] == 1e-2 and opt.param_groups[1]["betas"] == (0.9, 0.999)


def test_build_optimizer_by_name():
    p = [nn.Parameter(torch.zeros(2))]
    assert isinstance(O.build_optimizer("adamw", p, lr=1e-3), O.AdamW)
    assert set(O.OPTIMIZERS) >= {"sgd", "adam", "adamw", "lion", "lamb", "rmsprop", "adagrad"}
