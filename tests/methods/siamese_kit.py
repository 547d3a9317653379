"""Small builders shared by the tests of the two-view methods (MoCo, MoCo v3, BYOL,
SimSiam, NNCLR): a tiny encoder, a seeded two-view batch, one optimizer step, and the
naive InfoNCE the method losses are checked against."""

from __future__ import annotations

import math

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn
from ssltrain.methods.base import SSLMethod

IMAGE_SIZE = 32
# heads small enough for fast tests; the kwargs every two-view method here accepts
SMALL_HEADS = {"proj_hidden_dim": 32, "proj_output_dim": 16}


def tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return small_cnn(channels=(8, 16))


def two_views(size: int = 8, seed: int = 1) -> Batch:
    generator = torch.Generator().manual_seed(seed)
    views = [torch.randn(size, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) for _ in range(2)]
    return Batch(views=views, labels=torch.arange(size) % 4)


def sgd_step(method: SSLMethod, batch: Batch, step: int = 0, total_steps: int = 10, lr: float = 0.05) -> dict:
    """One step as the engine takes it: hooks, forward, backward, update, after-step hook."""
    optimizer = torch.optim.SGD([g for g in method.param_groups() if g["params"]], lr=lr)
    method.train()
    method.on_step_start(step, total_steps)
    outputs = method(batch)
    optimizer.zero_grad()
    outputs["loss"].backward()
    optimizer.step()
    method.after_optimizer_step(step, total_steps)
    return outputs


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
