"""Triplet network: an anchor is nearer its positive (same class) than a negative by a
margin, with batch-hard or semi-hard mining in the batch (supervised).

Hermans, Beyer & Leibe 2017, https://arxiv.org/abs/1703.07737 (batch-hard, P x K
batches); Schroff et al., FaceNet, CVPR 2015, https://arxiv.org/abs/1503.03832 (semi-hard).

Defaults: the head of Hermans et al. (1024 units, BatchNorm, ReLU, then 128-d); embeddings
L2-normalised with margin 0.2, as FaceNet's (alpha = 0.2 on the unit hypersphere). The method's recipe trains on P x K batches (trainer.sampler=pk).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import check_choice
from ssltrain.losses.triplet import MINING, triplet_margin_loss
from ssltrain.methods.embedding import EmbeddingMethod
from ssltrain.registry import METHODS


@METHODS.register("triplet")
class Triplet(EmbeddingMethod):
    couples_batch = True  # its pairs (triplets) are mined within the batch
    def __init__(self, encoder: nn.Module, mining: str = "batch_hard", margin: float = 0.2, normalize: bool = True,
                 hidden_dim: Optional[int] = 1024, output_dim: int = 128):
        check_choice("method.mining", mining, MINING)
        super().__init__(encoder, hidden_dim, output_dim, normalize)
        self.mining, self.margin = mining, margin

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z, labels = self.embed(batch)  # [N, D], [N]
        return {"loss": triplet_margin_loss(z, labels, self.margin, self.mining)}
