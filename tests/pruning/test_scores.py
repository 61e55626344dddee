"""Pruning scores: magnitude, Taylor and OBD by hand and against per-batch autograd."""

from __future__ import annotations

import torch
from torch import nn

from accel_lib.models import SmallCNN
from accel_lib.pruning import (
    gradient_statistics,
    importance_scores,
    magnitude_scores,
    obd_scores,
    taylor_scores,
)

# ---------------------------------------------------------------- scores


def test_scores_hand_computed():
    w = torch.tensor([[1.0, -2.0], [0.5, -0.1]])
    g = torch.tensor([[0.5, 0.5], [-4.0, 1.0]])
    torch.testing.assert_close(magnitude_scores(w, 1), w.abs())
    torch.testing.assert_close(magnitude_scores(w, 2), w**2)
    torch.testing.assert_close(taylor_scores(w, g), torch.tensor([[0.5, 1.0], [2.0, 0.1]]))
    torch.testing.assert_close(obd_scores(w, g**2), 0.5 * w**2 * g**2)


def test_gradient_statistics_match_per_batch_autograd(digits):
    model = SmallCNN(channels=(4, 8))
    batches = [b for _, b in zip(range(3), digits.train, strict=False)]
    mean, fisher = gradient_statistics(model, batches)
    grads = []
    for x, y in batches:
        model.zero_grad()
        nn.functional.cross_entropy(model.eval()(x), y).backward()
        grads.append(model.features[0].weight.grad.clone())
    g = torch.stack(grads)
    torch.testing.assert_close(mean["features.0"], g.mean(0))
    torch.testing.assert_close(fisher["features.0"], (g**2).mean(0))
    scores = importance_scores(model, "obd", batches)
    torch.testing.assert_close(scores["features.0"],
                               0.5 * model.features[0].weight.detach()**2 * (g**2).mean(0))
    scores = importance_scores(model, "taylor", batches)
    torch.testing.assert_close(scores["classifier.1"],
                               (model.classifier[1].weight * mean["classifier.1"]).abs().detach())


