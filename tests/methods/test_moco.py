"""MoCo v2: symmetric InfoNCE against the queue, and the queue filling with keys."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kit import train_step
from siamese_kit import SMALL_HEADS, each_view, naive_info_nce, tiny_cnn, two_views

from ssltrain.methods.moco import MoCo


def build(queue_size: int = 64) -> MoCo:
    return MoCo(tiny_cnn(), temperature=0.2, queue_size=queue_size, **SMALL_HEADS)


def test_loss_averages_infonce_of_each_view_against_the_other_views_key_and_the_queue():
    method, batch = build(), two_views(size=4)
    method.train()
    queue = method.queue.features.clone()
    q1, q2 = each_view(lambda x: method.projector(method.encoder(x)), batch)
    k1, k2 = each_view(lambda x: method.momentum_projector(method.momentum_encoder(x)), batch)
    expected = (naive_info_nce(q1, k2, 0.2, queue) + naive_info_nce(q2, k1, 0.2, queue)) / 2
    with torch.no_grad():
        loss = method(batch)["loss"]
    assert math.isclose(loss.item(), expected, rel_tol=1e-4)


def test_the_queue_receives_each_view_keys_after_a_step():
    method, batch = build(), two_views(size=8)
    method.train()
    k1, k2 = method.targets(batch.views)  # the keys of this step, before the momentum update
    untouched = method.queue.features[16:].clone()
    train_step(method, batch)
    torch.testing.assert_close(method.queue.features[:16], F.normalize(torch.cat([k1, k2]), dim=1))
    assert torch.equal(method.queue.features[16:], untouched)
    assert method.queue.pointer.item() == 16


def test_the_queue_wraps_around_and_overwrites_its_oldest_keys():
    method = build(queue_size=24)
    train_step(method, two_views(size=8, seed=1))
    method.train()
    keys = F.normalize(torch.cat(method.targets(two_views(size=8, seed=2).views)), dim=1)  # [16, D]
    train_step(method, two_views(size=8, seed=2), step=1)
    torch.testing.assert_close(method.queue.features[16:], keys[:8])
    torch.testing.assert_close(method.queue.features[:8], keys[8:])
    assert method.queue.pointer.item() == 8
