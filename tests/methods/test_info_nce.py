"""InfoNCE against its formula, computed one query at a time, alone and across two ranks."""

from __future__ import annotations

import math
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

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


def _rank_loss(rank: int, port: int, query, key, results) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    half = len(query) // 2
    own = slice(rank * half, (rank + 1) * half)
    local_key = key[own].clone().requires_grad_(True)
    loss = info_nce(query[own], local_key, 0.3)
    # DDP averages gradients over ranks: the mean of the two ranks' losses is the objective
    (loss / 2).backward()
    results[rank] = (loss.item(), local_key.grad.clone())
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not built in")
def test_across_two_ranks_each_query_scores_against_the_global_batch():
    generator = torch.Generator().manual_seed(2)
    query, key = torch.randn(6, 5, generator=generator), torch.randn(6, 5, generator=generator)
    results = mp.Manager().dict()
    mp.spawn(_rank_loss, args=(_free_port(), query, key, results), nprocs=2)
    full_key = key.clone().requires_grad_(True)
    info_nce(query, full_key, 0.3).backward()
    assert math.isclose((results[0][0] + results[1][0]) / 2, naive_info_nce(query, key, 0.3), rel_tol=1e-5)
    assert torch.allclose(torch.cat([results[0][1], results[1][1]]), full_key.grad, atol=1e-6)
