"""Two-dimensional test problems, optimiser trajectories on them, and the theory of rates.

On ``f(x) = x^T A x / 2`` with eigenvalues ``mu <= L`` (condition number ``kappa = L/mu``),
gradient descent with its best step ``2 / (mu + L)`` shrinks the error by
``(kappa - 1) / (kappa + 1)`` per step; heavy-ball momentum with its best step and momentum
by ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)``. For ``kappa = 100`` that is 0.980 vs 0.818:
about 115 steps vs 11 per decimal digit of accuracy. Momentum turns the condition number
into its square root.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim import Optimizer

from .._validate import check_int, check_real

__all__ = ["Problem", "quadratic", "rosenbrock", "trajectory", "Tuning", "gd_tuning",
           "heavy_ball_tuning"]


@dataclass(frozen=True)
class Problem:
    """A function of two variables to minimise, where to start, and where the minimum is."""

    name: str
    fn: Callable[[Tensor], Tensor]  # (..., 2) -> (...)
    start: tuple[float, float]
    minimum: tuple[float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def __call__(self, xy: Tensor) -> Tensor:
        return self.fn(xy)

    def grid(self, n: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, Y, Z)`` on an ``n x n`` grid over ``xlim x ylim``, for a contour plot.

        Shapes: each is ``(n, n)``.
        """
        check_int(n, "n", minimum=2)
        xs = torch.linspace(*self.xlim, n, dtype=torch.float64)
        ys = torch.linspace(*self.ylim, n, dtype=torch.float64)
        gx, gy = torch.meshgrid(xs, ys, indexing="xy")
        z = self.fn(torch.stack([gx, gy], dim=-1))
        return gx.numpy(), gy.numpy(), z.numpy()


def quadratic(condition_number: float = 25.0, *, angle_deg: float = 0.0) -> Problem:
    """``f = (u^2 + kappa * w^2) / 2`` in axes ``(u, w)`` rotated by ``angle_deg`` from
    ``(x, y)``: a long narrow valley with curvatures 1 and ``kappa``, minimum at 0.

    The start is ``(u, w) = (-4, 1.5)`` in the valley's own axes, so problems that differ
    only in ``angle_deg`` are the same problem, rotated. Axis-aligned (angle 0), the
    per-coordinate scaling of AdaGrad/RMSProp/Adam fixes the conditioning; rotated, it
    cannot (the valley no longer runs along a coordinate).
    """
    kappa = check_real(condition_number, "condition_number", low=1.0)
    theta = math.radians(check_real(angle_deg, "angle_deg"))
    c, s = math.cos(theta), math.sin(theta)

    def fn(xy: Tensor) -> Tensor:
        x, y = xy[..., 0], xy[..., 1]
        u, w = c * x + s * y, -s * x + c * y
        return 0.5 * (u**2 + kappa * w**2)

    start = (c * -4.0 - s * 1.5, s * -4.0 + c * 1.5)  # (u, w) = (-4, 1.5), whatever the angle
    return Problem(f"quadratic (kappa={kappa:g})", fn, start, (0.0, 0.0), (-4.5, 4.5), (-3.0, 3.0))


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Problem:
    """``f = (a - x)^2 + b * (y - x^2)^2``: a curved, flat-bottomed valley, minimum at
    ``(a, a^2)``. Easy to find the valley, hard to follow it."""
    a, b = check_real(a, "a"), check_real(b, "b", low=0.0, low_open=True)

    def fn(xy: Tensor) -> Tensor:
        x, y = xy[..., 0], xy[..., 1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    return Problem(f"Rosenbrock (a={a:g}, b={b:g})", fn, (-1.5, 2.0), (a, a * a),
                   (-2.0, 2.0), (-1.0, 3.0))


def trajectory(problem: Problem, make_optimizer: Callable[[list[nn.Parameter]], Optimizer],
               steps: int, *, bound: float = 1e6) -> np.ndarray:
    """The points an optimiser visits from ``problem.start``: ``steps + 1`` rows ``(x, y)``.

    ``make_optimizer`` builds the optimiser from ``[xy]`` (e.g.
    ``lambda p: torch.optim.SGD(p, lr=0.1)``). Works in float64. A run that diverges
    (non-finite or beyond ``bound``) is cut there: the remaining rows are NaN.

    Shapes: returns ``(steps + 1, 2)``.
    """
    check_int(steps, "steps", minimum=0)
    xy = nn.Parameter(torch.tensor(problem.start, dtype=torch.float64))
    optimizer = make_optimizer([xy])
    path = np.full((steps + 1, 2), np.nan)
    path[0] = problem.start
    for t in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        problem.fn(xy).backward()
        optimizer.step()
        point = xy.detach().numpy()
        if not np.isfinite(point).all() or np.abs(point).max() > bound:
            break
        path[t] = point
    return path


@dataclass(frozen=True)
class Tuning:
    """The best constant hyper-parameters on a quadratic, and the rate they give."""

    lr: float
    momentum: float
    rate: float  # error multiplied by this per step (asymptotically)

    @property
    def steps_per_digit(self) -> float:
        """Steps to gain a factor 10 of accuracy: ``ln 10 / -ln(rate)``."""
        return math.inf if self.rate >= 1 else math.log(10) / -math.log(self.rate)


def _curvatures(mu: float, L: float) -> tuple[float, float]:  # noqa: N803 (the usual names)
    mu = check_real(mu, "mu", low=0.0, low_open=True)
    L = check_real(L, "L", low=mu)  # noqa: N806
    return mu, L


def gd_tuning(mu: float, L: float) -> Tuning:  # noqa: N803
    """Gradient descent on curvatures in ``[mu, L]``: ``lr = 2 / (mu + L)``, rate
    ``(kappa - 1) / (kappa + 1)``."""
    mu, L = _curvatures(mu, L)  # noqa: N806
    kappa = L / mu
    return Tuning(2 / (mu + L), 0.0, (kappa - 1) / (kappa + 1))


def heavy_ball_tuning(mu: float, L: float) -> Tuning:  # noqa: N803
    """Polyak's heavy ball (PyTorch's ``SGD(momentum)``) on curvatures in ``[mu, L]``:
    ``lr = 4 / (sqrt(L) + sqrt(mu))^2``, ``momentum = ((sqrt(kappa) - 1) / (sqrt(kappa) + 1))^2``,
    rate ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)``."""
    mu, L = _curvatures(mu, L)  # noqa: N806
    r = (math.sqrt(L / mu) - 1) / (math.sqrt(L / mu) + 1)
    return Tuning(4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, r * r, r)
