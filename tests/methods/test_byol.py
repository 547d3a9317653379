"""BYOL: symmetric normalised MSE between online predictions and the other view's target
projections."""

from __future__ import annotations

import math

import torch

from siamese_kit import SMALL_HEADS, each_view, tiny_cnn, two_views

from ssltrain.methods.byol import BYOL


def unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def test_loss_sums_both_directions_of_the_squared_distance_of_unit_vectors():
    method, batch = BYOL(tiny_cnn(), pred_hidden_dim=32, **SMALL_HEADS), two_views(size=4)
    method.train()
    p1, p2 = each_view(lambda x: method.predictor(method.projector(method.encoder(x))), batch)
    t1, t2 = each_view(lambda x: method.momentum_projector(method.momentum_encoder(x)), batch)
    expected = sum(float(((unit(p[i]) - unit(t[i])) ** 2).sum()) / 4 for p, t in ((p1, t2), (p2, t1)) for i in range(4))
    with torch.no_grad():
        loss = method(batch)["loss"]
    assert math.isclose(loss.item(), expected, rel_tol=1e-4)
