"""InfoNCE against its formula, computed one query at a time, alone and across two ranks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist

from kit import run_on_two_ranks
from siamese_kit import naive_info_nce

from ssltrain.losses.info_nce import info_nce


def test_with_a_queue_the_negatives_are_the_queue_only():
    generator = torch.Generator().manual_seed(0)
    query, key = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    queue = torch.randn(5, 4, generator=generator)
    expected = naive_info_nce(query, key, 0.2, negatives=queue)
    assert math.isclose(info_nce(query, key, 0.2, queue).item(), expected, rel_tol=1e-5)


def test_without_a_queue_the_negatives_are_the_other_keys_of_the_batch():
    generator = torch.Generator().manual_seed(1)
    query, key = torch.randn(4, 6, generator=generator), torch.randn(4, 6, generator=generator)
    assert math.isclose(info_nce(query, key, 0.5).item(), naive_info_nce(query, key, 0.5), rel_tol=1e-5)


def test_one_query_matching_its_key_with_one_orthogonal_negative():
    # q.k+ = 1, q.n = 0 at t = 0.5: -log(e^2 / (e^2 + 1))
    query, key, queue = torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 1))
    assert math.isclose(info_nce(query, key, 0.5, queue).item(), expected, rel_tol=1e-6)


def test_gradients_reach_both_queries_and_keys():
    query, key = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    info_nce(query, key, 0.2).backward()
    assert query.grad.abs().sum() > 0 and key.grad.abs().sum() > 0


def _loss_and_key_gradient(share: tuple[torch.Tensor, torch.Tensor]) -> tuple[float, torch.Tensor]:
    query, key = share
    key = key.clone().requires_grad_(True)
    loss = info_nce(query, key, 0.3)
    # DDP averages gradients over ranks: the mean of the two ranks' losses is the objective
    (loss / 2).backward()
    return loss.item(), key.grad


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_across_two_ranks_each_query_scores_against_the_global_batch():
    generator = torch.Generator().manual_seed(2)
    query, key = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    halves = [(query[:3], key[:3]), (query[3:], key[3:])]
    (loss0, grad0), (loss1, grad1) = run_on_two_ranks(_loss_and_key_gradient, halves)
    full_key = key.clone().requires_grad_(True)
    info_nce(query, full_key, 0.3).backward()
    assert math.isclose((loss0 + loss1) / 2, naive_info_nce(query, key, 0.3), rel_tol=1e-5)
    assert torch.allclose(torch.cat([grad0, grad1]), full_key.grad, atol=1e-6)
