"""NNCLR: the positive of a view is the nearest neighbour of its projection in a support
set of projections from earlier steps, contrasted against the other view's predictions.

Dwibedi et al., "With a Little Help from My Friends: Nearest-Neighbor Contrastive Learning
of Visual Representations", ICCV 2021, https://arxiv.org/abs/2104.14548. Loss (eq. 2,
with the predictor of sec. 3.2): InfoNCE with NN(z1) as the query, p2 of the same image as
its positive and the p2 of every other image of the global batch as negatives; symmetric,
(L(NN(z1), p2) + L(NN(z2), p1)) / 2. The nearest neighbours come from the support set,
so no gradient flows through them. The support set (a FeatureQueue) receives the first
view's normalised projections after each step, as in solo-learn's nnclr.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/nnclr.yaml): temperature 0.2,
projector 2048 -> 256, predictor hidden 4096, support set 65536.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.info_nce import info_nce
from ssltrain.methods.base import SSLMethod, encode_each
from ssltrain.parts.queue import FeatureQueue
from ssltrain.registry import METHODS


def nearest_neighbours(queries: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """For each of the [B, D] queries, the row of the [K, D] support set with the highest
    cosine similarity to it; returns [B, D] rows of `support` as stored (no gradient)."""
    similarity = F.normalize(queries.detach(), dim=1) @ F.normalize(support, dim=1).T  # [B, K]
    return support[similarity.argmax(dim=1)]  # [B, D]


@METHODS.register("nnclr")
class NNCLR(SSLMethod):
    couples_batch = True
    views = (2, 2)

    def __init__(self, encoder: nn.Module, temperature: float = 0.2, proj_hidden_dim: int = 2048,
                 proj_output_dim: int = 256, pred_hidden_dim: int = 4096, queue_size: int = 65536):
        super().__init__(encoder)
        self.temperature = temperature
        # heads as in solo-learn's nnclr: a 3-layer projector with BN after every layer, the
        # output included; predictor Linear -> BN -> ReLU -> Linear
        self.projector = mlp([encoder.out_dim, proj_hidden_dim, proj_hidden_dim, proj_output_dim], last_norm="batch")
        self.predictor = mlp([proj_output_dim, pred_hidden_dim, proj_output_dim])
        self.queue = FeatureQueue(queue_size, proj_output_dim)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # one view at a time, as in solo-learn's nnclr (the paper's code is not public)
        z1, z2 = encode_each(batch.views, lambda x: self.projector(self.encoder(x)))  # [B, D] each
        p1, p2 = self.predictor(z1), self.predictor(z2)  # [B, D] each
        support = self.queue.features  # [K, D]
        nn1, nn2 = nearest_neighbours(z1, support), nearest_neighbours(z2, support)  # [B, D] each, copies
        loss = (info_nce(nn1, p2, self.temperature) + info_nce(nn2, p1, self.temperature)) / 2
        self.queue.push(F.normalize(z1.detach(), dim=1))
        return {"loss": loss}
