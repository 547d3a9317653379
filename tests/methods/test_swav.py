"""SwAV: Sinkhorn-Knopp codes, the swapped prediction loss, prototypes, the queue."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kit import MULTI_CROP, run_on_two_ranks, train_step, views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.losses.swav import sinkhorn_knopp, swav_loss
from ssltrain.methods import swav as swav_module
from ssltrain.methods.swav import SwAV


def naive_sinkhorn(scores: list[list[float]], epsilon: float, iterations: int) -> list[list[float]]:
    """Sinkhorn-Knopp element by element: alternately give each prototype (column) mass
    1/K and each sample (row) mass 1/N, then scale the rows to sum to 1."""
    n, k = len(scores), len(scores[0])
    q = [[math.exp(s / epsilon) for s in row] for row in scores]
    total = sum(sum(row) for row in q)
    q = [[value / total for value in row] for row in q]
    for _ in range(iterations):
        for j in range(k):
            column = sum(q[i][j] for i in range(n))
            for i in range(n):
                q[i][j] = q[i][j] / column / k
        for i in range(n):
            row = sum(q[i])
            q[i] = [value / row / n for value in q[i]]
    return [[value * n for value in row] for row in q]


def random_scores(n: int, k: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, 8, generator=generator), dim=1) @ F.normalize(torch.randn(k, 8, generator=generator), dim=1).T


def test_sinkhorn_codes_are_distributions_over_prototypes():
    codes = sinkhorn_knopp(random_scores(6, 4), epsilon=0.05, iterations=3)
    assert (codes >= 0).all()
    assert torch.allclose(codes.sum(dim=1), torch.ones(6), atol=1e-5)


def test_sinkhorn_splits_the_samples_equally_among_prototypes_after_enough_iterations():
    scores = random_scores(12, 4)
    codes = sinkhorn_knopp(scores, epsilon=0.1, iterations=200)
    assert torch.allclose(codes.sum(dim=0), torch.full((4,), 12 / 4), atol=1e-3)
    unbalanced = torch.exp(scores / 0.1)
    unbalanced = unbalanced / unbalanced.sum(dim=1, keepdim=True)
    assert (unbalanced.sum(dim=0) - 3).abs().max() > 0.1, "the raw softmax is not balanced: the test checks something"


def test_sinkhorn_matches_a_naive_loop_on_a_tiny_matrix():
    scores = random_scores(5, 3, seed=1)
    expected = torch.tensor(naive_sinkhorn(scores.tolist(), epsilon=0.05, iterations=3))
    assert torch.allclose(sinkhorn_knopp(scores, epsilon=0.05, iterations=3), expected, atol=1e-5)


def _sinkhorn_on_my_half(scores: torch.Tensor) -> torch.Tensor:
    return sinkhorn_knopp(scores, epsilon=0.05, iterations=3)


def test_sinkhorn_over_two_ranks_equals_sinkhorn_over_the_whole_batch():
    scores = random_scores(8, 3, seed=2)
    halves = run_on_two_ranks(_sinkhorn_on_my_half, [scores[:4], scores[4:]])
    assert torch.allclose(torch.cat(halves), sinkhorn_knopp(scores, epsilon=0.05, iterations=3), atol=1e-5)


def test_swav_loss_matches_a_hand_computation():
    generator = torch.Generator().manual_seed(3)
    scores = [torch.randn(2, 3, generator=generator) for _ in range(3)]  # 3 crops, B 2, K 3
    codes = [torch.softmax(torch.randn(2, 3, generator=generator), dim=1) for _ in range(2)]
    temperature = 0.5
    terms = []
    for i in range(2):  # the code of global crop i ...
        for v in range(3):  # ... predicted by every other crop v
            if v == i:
                continue
            for b in range(2):
                logits = [value / temperature for value in scores[v][b].tolist()]
                log_norm = math.log(sum(math.exp(value) for value in logits))
                terms.append(-sum(codes[i][b, k].item() * (logits[k] - log_norm) for k in range(3)))
    expected = sum(terms) / len(terms)  # every (code, crop) pair has the same batch size
    assert swav_loss(scores, codes, temperature).item() == pytest.approx(expected, rel=1e-5)


def test_no_gradient_flows_through_the_sinkhorn_codes():
    scores = [random_scores(4, 3, seed=seed).requires_grad_() for seed in range(3)]  # 3 crops, B 4, K 3
    live_codes = [sinkhorn_knopp(scores[i], 0.05, 3) for i in range(2)]  # computed from scores that need grad
    constant_codes = [sinkhorn_knopp(scores[i].detach(), 0.05, 3) for i in range(2)]
    live = torch.autograd.grad(swav_loss(scores, live_codes, 0.1), scores)
    constant = torch.autograd.grad(swav_loss(scores, constant_codes, 0.1), scores)
    assert not any(code.requires_grad for code in live_codes)
    assert all(torch.allclose(a, b) for a, b in zip(live, constant))
    assert all(g.abs().sum() > 0 for g in live), "each crop still gets a gradient as a predictor"


def build(**options) -> SwAV:
    torch.manual_seed(0)
    settings = dict(proj_hidden_dim=32, proj_output_dim=8, num_prototypes=5, freeze_prototypes_fraction=0.0,
                    queue_size=0)
    return SwAV(small_cnn(channels=(8, 16)), **{**settings, **options})


def test_training_step_predicts_the_global_crops_codes_from_every_other_crop():
    method = build(temperature=0.2).eval()  # eval: BatchNorm per sample, so crops can be encoded one by one
    batch = views_batch(MULTI_CROP)
    with torch.no_grad():
        embeddings = [F.normalize(method.projector(method.encoder(view)), dim=1) for view in batch.views]
        scores = [z @ method.prototypes.weight.T for z in embeddings]  # 4 x [B, K]
        codes = [sinkhorn_knopp(scores[i], 0.05, 3) for i in range(2)]
        expected = swav_loss(scores, codes, temperature=0.2)
        assert method(batch)["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_prototypes_have_unit_norm_after_a_step():
    method = build()
    train_step(method, views_batch(MULTI_CROP), step=0, total_steps=10, lr=0.5)
    assert torch.allclose(method.prototypes.weight.norm(dim=1), torch.ones(5), atol=1e-6)


def test_prototypes_do_not_move_while_frozen_and_move_once_released():
    method = build(freeze_prototypes_fraction=0.5)
    before = method.prototypes.weight.detach().clone()
    train_step(method, views_batch(MULTI_CROP), step=4, total_steps=10, lr=0.5)  # 4 < 0.5 * 10: frozen
    assert torch.allclose(method.prototypes.weight, before, atol=1e-7, rtol=0)
    train_step(method, views_batch(MULTI_CROP), step=5, total_steps=10, lr=0.5)
    assert not torch.allclose(method.prototypes.weight, before, atol=1e-4, rtol=0)


def test_queue_pads_the_sinkhorn_batch_from_its_start_and_stores_the_global_crops(monkeypatch):
    rows = []

    def recording_sinkhorn(scores, epsilon, iterations):
        rows.append(scores.shape[0])
        return sinkhorn_knopp(scores, epsilon, iterations)

    monkeypatch.setattr(swav_module, "sinkhorn_knopp", recording_sinkhorn)
    method = build(queue_size=12, queue_start_fraction=0.5).eval()  # eval: embeddings reproducible below
    batch = views_batch(MULTI_CROP, batch=6)
    method.on_step_start(4, 10)
    method(batch)
    assert rows == [6, 6], "before the start, codes come from the batch alone"
    method.on_step_start(5, 10)
    method(batch)
    assert rows[2:] == [6 + 12, 6 + 12], "then from the batch and the queue"
    with torch.no_grad():
        newest = F.normalize(method.projector(method.encoder(batch.views[1])), dim=1)
    assert torch.allclose(method.queues[1].features[6:12], newest, atol=1e-5), "the last push fills rows 6-11"
