"""NPID: the non-parametric softmax and its NCE estimate against hand computations, the
memory bank's momentum update (one rank and two), and the bank as checkpointed state."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from kit import run_on_two_ranks, train_step, views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.losses.npid import instance_nce_loss, instance_softmax_loss
from ssltrain.methods.npid import NPID
from ssltrain.parts.memory_bank import MemoryBank


def test_the_softmax_loss_is_minus_the_log_probability_of_the_own_row():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    # feature 0 against its row 0: scores 1, 0, 0.6; feature 1 against its row 2: scores 0, 1, 0.8
    t = 0.5
    by_hand = (-math.log(math.exp(1 / t) / (math.exp(1 / t) + 1 + math.exp(0.6 / t)))
               - math.log(math.exp(0.8 / t) / (1 + math.exp(1 / t) + math.exp(0.8 / t)))) / 2
    loss = instance_softmax_loss(features, memory, torch.tensor([0, 2]), t)
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_the_nce_loss_is_the_papers_posterior_formula():
    generator = torch.Generator().manual_seed(0)
    positive, negatives = torch.rand(3, generator=generator), torch.rand(3, 5, generator=generator) * 2 - 1
    t, z, n = 0.1, torch.tensor(250.0), 1000
    expected = 0.0
    for b in range(3):  # eq. 6-7: h = P / (P + K / N), P = exp(s / t) / Z
        h = lambda score: math.exp(score / t) / z.item() / (math.exp(score / t) / z.item() + 5 / n)  # noqa: E731
        expected += -math.log(h(positive[b].item())) - sum(math.log(1 - h(s)) for s in negatives[b].tolist())
    loss = instance_nce_loss(positive, negatives, t, z, n)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_the_bank_blends_the_rows_of_the_batch_and_renormalises_them():
    bank = MemoryBank(4, 2, momentum=0.5)
    bank.features.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]]))
    bank.update(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([2, 1]))
    s = 1 / math.sqrt(2)  # normalise(0.5 * (1, 0) + 0.5 * (0, 1))
    assert torch.allclose(bank.features, torch.tensor([[1.0, 0.0], [s, s], [s, s], [0.0, 1.0]]))
    assert "features" in dict(bank.named_buffers()), "the bank is checkpointed with the model"


def _npid(**options) -> NPID:
    torch.manual_seed(0)
    return NPID(small_cnn(channels=(8, 16)), num_images=20, **options)


@pytest.mark.parametrize("loss", ["softmax", "nce"])
def test_a_step_updates_the_rows_of_the_batchs_images_only(loss):
    method = _npid(loss=loss, num_negatives=6)
    before = method.bank.features.clone()
    batch = views_batch([16, 16], batch=4)
    batch.indices = torch.tensor([3, 7, 11, 19])
    train_step(method, batch)
    changed = (method.bank.features != before).any(dim=1)
    assert changed.nonzero().flatten().tolist() == [3, 7, 11, 19]
    assert torch.allclose(method.bank.features[batch.indices].norm(dim=1), torch.ones(4))


def test_nce_fixes_its_normaliser_at_the_first_step_and_keeps_it():
    method = _npid(loss="nce", num_negatives=6)
    train_step(method, views_batch([16], batch=4))
    first = method.normaliser.clone()
    assert first > 0
    train_step(method, views_batch([16], batch=4, seed=2), step=1)
    assert torch.equal(method.normaliser, first) and "normaliser" in method.state_dict()


def test_an_unknown_loss_names_the_key_and_the_choices():
    with pytest.raises(UserError, match=r"method.loss='ncee' is not valid; choose one of: softmax, nce"):
        _npid(loss="ncee")


def _update_on_a_rank(inputs) -> torch.Tensor:
    features, indices = inputs
    bank = MemoryBank(6, 2, momentum=0.5)
    bank.features.copy_(F.normalize(torch.ones(6, 2), dim=1))
    bank.update(features, indices)
    return bank.features


def test_under_ddp_every_rank_blends_every_ranks_rows_into_the_same_bank():
    features = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]), dim=1)
    indices = torch.tensor([0, 4, 2, 5])
    rank0, rank1 = run_on_two_ranks(_update_on_a_rank, [(features[:2], indices[:2]), (features[2:], indices[2:])])
    alone = _update_on_a_rank((features, indices))
    assert torch.equal(rank0, rank1) and torch.allclose(rank0, alone)
