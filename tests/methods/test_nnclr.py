"""NNCLR: nearest neighbours from the support set as positives, contrasted against the
other view's predictions; the support set fills with first-view projections."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kit import train_step
from siamese_kit import SMALL_HEADS, each_view, naive_info_nce, tiny_cnn, two_views

from ssltrain.methods.nnclr import NNCLR, nearest_neighbours


def build(queue_size: int = 64) -> NNCLR:
    return NNCLR(tiny_cnn(), temperature=0.2, pred_hidden_dim=32, queue_size=queue_size, **SMALL_HEADS)


def naive_nearest(query: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    best = max(range(len(support)), key=lambda k: float(query @ support[k]) / (query.norm() * support[k].norm()).item())
    return support[best]


def test_nearest_neighbour_is_the_support_row_of_highest_cosine_not_dot_product():
    support = torch.tensor([[10.0, 0.0], [0.6, 0.8], [0.0, 1.0]])  # row 0 wins on dot product only
    queries = torch.tensor([[0.5, 0.9], [1.0, 0.1], [0.0, -1.0]])
    found = nearest_neighbours(queries, support)
    for query, row in zip(queries, found):
        assert torch.equal(row, naive_nearest(query, support))
    assert torch.equal(found[0], support[1])


def test_nearest_neighbours_carry_no_gradient():
    queries = torch.randn(4, 3, requires_grad=True)
    assert not nearest_neighbours(queries, torch.randn(10, 3)).requires_grad


def test_loss_averages_infonce_of_each_views_neighbour_against_the_other_views_predictions():
    method, batch = build(), two_views(size=4)
    method.train()
    support = method.queue.features.clone()
    z1, z2 = each_view(lambda x: method.projector(method.encoder(x)), batch)
    with torch.no_grad():
        p1, p2 = method.predictor(z1), method.predictor(z2)
    nn1 = torch.stack([naive_nearest(z, support) for z in z1])
    nn2 = torch.stack([naive_nearest(z, support) for z in z2])
    expected = (naive_info_nce(nn1, p2, 0.2) + naive_info_nce(nn2, p1, 0.2)) / 2
    with torch.no_grad():
        loss = method(batch)["loss"]
    assert math.isclose(loss.item(), expected, rel_tol=1e-4)


def test_the_support_set_receives_the_first_views_projections_after_a_step():
    method, batch = build(), two_views(size=8)
    method.train()
    z1, _ = each_view(lambda x: method.projector(method.encoder(x)), batch)
    untouched = method.queue.features[8:].clone()
    train_step(method, batch)
    torch.testing.assert_close(method.queue.features[:8], F.normalize(z1, dim=1))
    assert torch.equal(method.queue.features[8:], untouched)
    assert method.queue.pointer.item() == 8
