"""The update rules on hand-computed cases; the foreach rules equal the per-tensor ones."""

from __future__ import annotations

import math

import pytest
import torch

from accel_lib import optim as O


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_sgd_step_hand_computed_pytorch_convention():
    p, g = _t(1.0, 2.0), _t(0.5, -1.0)
    buf = O.sgd_step_(p, g, None, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1)
    # g' = g + 0.1 p = (0.6, -0.8); first buffer = g' (not dampened); p -= 0.1 g'
    assert buf.tolist() == pytest.approx([0.6, -0.8])
    assert p.tolist() == pytest.approx([0.94, 2.08])
    buf = O.sgd_step_(p, g, buf, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1)
    # g' = (0.594, -0.792); v = 0.9 v + 0.5 g' = (0.837, -1.116)
    assert buf.tolist() == pytest.approx([0.837, -1.116])
    assert p.tolist() == pytest.approx([0.94 - 0.0837, 2.08 + 0.1116])
    q = _t(1.0)
    nb = O.sgd_step_(q, _t(1.0), _t(2.0), lr=0.1, momentum=0.5, nesterov=True)
    # v = 0.5 * 2 + 1 = 2; d = g + 0.5 v = 2; p = 1 - 0.2
    assert nb.tolist() == [2.0] and q.tolist() == pytest.approx([0.8])
    r = _t(1.0)
    assert O.sgd_step_(r, _t(2.0), None, lr=0.1, maximize=True) is None
    assert r.tolist() == pytest.approx([1.2])


def test_adam_first_step_moves_each_coordinate_by_about_lr():
    """After bias correction, m_hat = g and v_hat = g^2 at t = 1: the step is lr * sign(g)."""
    p, g = _t(0.0, 0.0, 0.0), _t(1e-4, -3.0, 50.0)
    m, v = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
    O.adam_step_(p, g, m, v, 1, lr=0.01, eps=1e-12)
    assert p.tolist() == pytest.approx([-0.01, 0.01, -0.01], rel=1e-6)
    assert m.tolist() == pytest.approx((0.1 * g).tolist())
    assert v.tolist() == pytest.approx((0.001 * g * g).tolist())


def test_adam_hand_computed_with_eps_and_decay():
    # t = 2 with m = 0.1, v = 0.001 (after g = 1 at t = 1), g = 1 again, eps = 0.1
    p, m, v = _t(1.0), _t(0.1), _t(0.001)
    O.adam_step_(p, _t(1.0), m, v, 2, lr=0.1, beta1=0.9, beta2=0.999, eps=0.1)
    m2, v2 = 0.9 * 0.1 + 0.1, 0.999 * 0.001 + 0.001
    expected = 1 - 0.1 / (1 - 0.81) * m2 / (math.sqrt(v2) / math.sqrt(1 - 0.999**2) + 0.1)
    assert p.item() == pytest.approx(expected, rel=1e-12)
    a, b = _t(2.0), _t(2.0)
    O.adam_step_(a, _t(0.0), _t(0.0), _t(0.0), 1, lr=0.1, weight_decay=0.5, decoupled=True)
    assert a.item() == pytest.approx(2.0 * (1 - 0.05))  # AdamW: decay only, no gradient
    O.adam_step_(b, _t(0.0), _t(0.0), _t(0.0), 1, lr=0.1, weight_decay=0.5, eps=1e-12)
    assert b.item() == pytest.approx(1.9)  # Adam + L2: the decay gradient is normalised


def test_adagrad_rmsprop_hand_computed():
    p, s = _t(1.0), _t(0.0)
    O.adagrad_step_(p, _t(2.0), s, 1, lr=0.1, eps=0.0)
    assert s.item() == 4.0 and p.item() == pytest.approx(0.9)
    O.adagrad_step_(p, _t(2.0), s, 2, lr=0.1, lr_decay=1.0, eps=0.0)
    assert p.item() == pytest.approx(0.9 - 0.05 * 2 / math.sqrt(8))
    q, sq = _t(1.0), _t(0.0)
    O.rmsprop_step_(q, _t(2.0), sq, lr=0.1, alpha=0.75, eps=0.0)
    assert sq.item() == 1.0 and q.item() == pytest.approx(0.8)
    with pytest.raises(ValueError, match="grad_avg"):
        O.rmsprop_step_(q, _t(2.0), sq, lr=0.1, centered=True)
    with pytest.raises(ValueError, match="momentum_buffer"):
        O.rmsprop_step_(q, _t(2.0), sq, lr=0.1, momentum=0.9)


def test_classical_momentum_hand_computed():
    p = _t(1.0)
    v = O.classical_momentum_step_(p, _t(2.0), None, lr=0.1, momentum=0.9)
    assert v.item() == pytest.approx(0.2) and p.item() == pytest.approx(0.8)
    v = O.classical_momentum_step_(p, _t(2.0), v, lr=0.01, momentum=0.9)
    assert v.item() == pytest.approx(0.18 + 0.02) and p.item() == pytest.approx(0.6)


@pytest.mark.parametrize("maximize", [False, True])
def test_foreach_rules_equal_the_loop_and_leave_gradients_alone(maximize):
    gen = torch.Generator().manual_seed(0)
    shapes = [(3, 4), (5,), (2, 2, 2)]
    dtypes = [torch.float32, torch.float64, torch.float32]  # two foreach groups

    def fresh():
        return [torch.randn(*s, generator=gen).to(d) for s, d in zip(shapes, dtypes, strict=True)]

    params, grads = fresh(), fresh()
    grads_before = [g.clone() for g in grads]
    a, b = [p.clone() for p in params], [p.clone() for p in params]
    bufs_a: list = [None] * 3
    bufs_b: list = [None] * 3
    hyper = dict(lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True, maximize=maximize)
    for _ in range(3):
        bufs_a = [O.sgd_step_(p, g, buf, **hyper) for p, g, buf in zip(a, grads, bufs_a,
                                                                          strict=True)]
        bufs_b = O.sgd_foreach_(b, grads, bufs_b, **hyper)
    for x, y in zip(a + bufs_a, b + bufs_b, strict=True):
        assert torch.equal(x, y)
    m_a, v_a = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    m_b, v_b = [torch.zeros_like(p) for p in params], [torch.zeros_like(p) for p in params]
    hyper = dict(lr=1e-2, weight_decay=0.1, decoupled=False, maximize=maximize)
    for t in (1, 2, 3):
        for p, g, m, v in zip(a, grads, m_a, v_a, strict=True):
            O.adam_step_(p, g, m, v, t, **hyper)
        O.adam_foreach_(b, grads, m_b, v_b, [t] * 3, **hyper)
    for x, y in zip(a + m_a + v_a, b + m_b + v_b, strict=True):
        assert torch.equal(x, y)
    for g, before in zip(grads, grads_before, strict=True):
        assert torch.equal(g, before)
