"""Siamese network with the contrastive margin loss: same-class pairs pull together,
other pairs push apart to the margin (supervised).

Hadsell, Chopra & LeCun, CVPR 2006,
http://yann.lecun.com/exdb/publis/pdf/hadsell-chopra-lecun-06.pdf.

Pairs: every pair of images in the batch (losses/contrastive_margin.py; positive and
negative terms averaged separately). Defaults: the head of Hermans et al. 2017 (1024, BN,
ReLU, 128; the paper's own nets were small CNNs for MNIST and NORB), L2-normalised
embeddings with margin 1.0 (pytorch-metric-learning's ContrastiveLoss default neg_margin
for normalised embeddings; the paper's margin is for its unnormalised 2-d outputs).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.losses.contrastive_margin import contrastive_margin_loss
from ssltrain.methods.embedding import EmbeddingMethod
from ssltrain.registry import METHODS


@METHODS.register("siamese")
class Siamese(EmbeddingMethod):
    couples_batch = True  # its pairs (triplets) are mined within the batch
    def __init__(self, encoder: nn.Module, margin: float = 1.0, normalize: bool = True,
                 hidden_dim: Optional[int] = 1024, output_dim: int = 128):
        super().__init__(encoder, hidden_dim, output_dim, normalize)
        self.margin = margin

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z, labels = self.embed(batch)  # [N, D], [N]
        return {"loss": contrastive_margin_loss(z, labels, self.margin)}
