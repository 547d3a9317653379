"""Small builders shared by the tests of the two-view methods (MoCo, MoCo v3, BYOL,
SimSiam, NNCLR): a tiny encoder, a seeded two-view batch, and the naive InfoNCE the method
losses are checked against (one training step: kit.train_step)."""

from __future__ import annotations

import math

import torch
from torch import nn

from kit import views_batch
from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn

IMAGE_SIZE = 32
# heads small enough for fast tests; the kwargs every two-view method here accepts
SMALL_HEADS = {"proj_hidden_dim": 32, "proj_output_dim": 16}


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return small_cnn(channels=(8, 16))


def two_views(size: int = 8, seed: int = 1) -> Batch:
    return views_batch([IMAGE_SIZE, IMAGE_SIZE], batch=size, seed=seed)


def naive_info_nce(query, key, temperature, negatives=None) -> float:
    """-log exp(q.k+/t) / (exp(q.k+/t) + sum over negatives exp(q.n/t)), query by query;
    negatives None: the other keys of the batch."""
    unit = lambda v: v / v.norm()  # noqa: E731
    total = 0.0
    for i in range(len(query)):
        q = unit(query[i])
        positive = math.exp(float(q @ unit(key[i])) / temperature)
        others = [key[j] for j in range(len(key)) if j != i] if negatives is None else list(negatives)
        negative = sum(math.exp(float(q @ unit(n)) / temperature) for n in others)
        total += -math.log(positive / (positive + negative))
    return total / len(query)


def each_view(network, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """`network` on each of the two views on its own (as encode_each does), without a graph."""
    with torch.no_grad():
        first, second = (network(view) for view in batch.views)
        return first, second
