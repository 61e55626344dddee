"""2-D problems, trajectories, and the rates theory predicts for GD and heavy ball."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from accel_lib import optim as O


def test_gd_on_the_quadratic_follows_the_closed_form():
    """On f = (x^2 + k y^2) / 2, GD multiplies x by (1 - lr) and y by (1 - lr k) per step."""
    problem = O.quadratic(10.0)
    path = O.trajectory(problem, lambda p: torch.optim.SGD(p, lr=0.05), 20)
    t = np.arange(21)
    x0, y0 = problem.start
    np.testing.assert_allclose(path[:, 0], x0 * (1 - 0.05) ** t, rtol=1e-12)
    np.testing.assert_allclose(path[:, 1], y0 * (1 - 0.5) ** t, rtol=1e-12)


def test_momentum_turns_kappa_into_its_square_root():
    mu, L = 1.0, 100.0  # noqa: N806
    gd, hb = O.gd_tuning(mu, L), O.heavy_ball_tuning(mu, L)
    assert gd.rate == pytest.approx(99 / 101) and hb.rate == pytest.approx(9 / 11)
    assert gd.steps_per_digit == pytest.approx(math.log(10) / -math.log(99 / 101))
    problem = O.quadratic(L, angle_deg=30.0)
    steps = 150
    for tuning, make in ((gd, lambda p: torch.optim.SGD(p, lr=gd.lr)),
                         (hb, lambda p: O.SGD(p, lr=hb.lr, momentum=hb.momentum))):
        path = O.trajectory(problem, make, steps)
        err = np.linalg.norm(path, axis=1)
        observed = (err[steps] / err[steps // 2]) ** (1 / (steps - steps // 2))
        assert observed == pytest.approx(tuning.rate, rel=0.05)
    assert O.heavy_ball_tuning(1.0, 1.0).rate == 0.0


def test_problems_and_grids():
    rosen = O.rosenbrock()
    assert rosen(torch.tensor(rosen.minimum, dtype=torch.float64)).item() == 0.0
    assert rosen(torch.tensor(rosen.start, dtype=torch.float64)).item() > 1
    q = O.quadratic(25.0, angle_deg=45.0)
    assert q(torch.zeros(2)).item() == 0.0
    # rotated by 45 degrees: the steep direction is (-1, 1) / sqrt(2)
    assert q(torch.tensor([-1.0, 1.0])).item() == pytest.approx(25.0)
    x, y, z = q.grid(30)
    assert x.shape == y.shape == z.shape == (30, 30) and z.min() >= 0


def test_a_diverging_run_is_cut_with_nan():
    path = O.trajectory(O.quadratic(10.0), lambda p: torch.optim.SGD(p, lr=0.5), 200)
    assert np.isnan(path[-1]).all() and np.isfinite(path[:5]).all()


def test_landscape_errors():
    with pytest.raises(ValueError, match="condition_number"):
        O.quadratic(0.5)
    with pytest.raises(ValueError, match="L must be"):
        O.gd_tuning(2.0, 1.0)
    with pytest.raises(ValueError, match="steps"):
        O.trajectory(O.rosenbrock(), lambda p: torch.optim.SGD(p, lr=1e-3), -1)
