"""The batch-statistics losses see the global batch under DDP: two gloo processes, each
holding half the batch, give the loss and (after DDP's gradient average) the gradient of
one process holding all of it."""

from __future__ import annotations

import pytest
import torch

from kit import run_on_two_ranks
from ssltrain.losses.barlow_twins import barlow_twins_loss
from ssltrain.losses.supcon import supcon_loss
from ssltrain.losses.vicreg import vicreg_loss

WORLD = 2  # the processes of kit.run_on_two_ranks
LOSSES = {
    "barlow_twins": lambda z1, z2, labels: barlow_twins_loss(z1, z2, lambd=0.05, scale=0.1)["loss"],
    "vicreg": lambda z1, z2, labels: vicreg_loss(z1, z2, 25.0, 25.0, 1.0)["loss"],
    "supcon": lambda z1, z2, labels: supcon_loss(torch.stack([z1, z2], dim=1), labels, 0.2),
}


def full_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    z1, z2 = 0.5 * torch.randn(2, 8, 5, generator=generator, dtype=torch.float64)
    return z1, z2, torch.tensor([0, 1, 2, 0, 1, 1, 3, 2])


def loss_and_gradients(name: str, z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor):
    z1, z2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = LOSSES[name](z1, z2, labels)
    loss.backward()
    return loss.detach(), z1.grad, z2.grad


def _every_loss_and_its_gradients(share: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, tuple]:
    return {name: loss_and_gradients(name, *share) for name in LOSSES}


@pytest.fixture(scope="module")
def per_rank() -> list[dict]:
    """Each rank's {loss name: (loss, grad z1, grad z2)} from one two-process run."""
    shares = [tuple(t.chunk(WORLD)[rank] for t in full_batch()) for rank in range(WORLD)]
    return run_on_two_ranks(_every_loss_and_its_gradients, shares)


@pytest.mark.parametrize("name", LOSSES)
def test_two_processes_with_half_the_batch_match_one_process_with_all_of_it(name, per_rank):
    loss, grad1, grad2 = loss_and_gradients(name, *full_batch())
    # DDP averages over ranks: the mean of the ranks' losses, each rank's gradient / WORLD
    assert torch.stack([result[name][0] for result in per_rank]).mean().item() == pytest.approx(loss.item(), rel=1e-10)
    for rank, result in enumerate(per_rank):
        _, rank_grad1, rank_grad2 = result[name]
        torch.testing.assert_close(rank_grad1 / WORLD, grad1.chunk(WORLD)[rank], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(rank_grad2 / WORLD, grad2.chunk(WORLD)[rank], rtol=1e-9, atol=1e-12)
