"""Triplet network: an anchor is nearer its positive (same class) than a negative, by a hard
or soft margin, with batch-hard or semi-hard mining in the batch (supervised).

Hermans, Beyer & Leibe 2017, https://arxiv.org/abs/1703.07737 (batch-hard, soft margin, P x K
batches); Schroff et al., FaceNet, CVPR 2015, https://arxiv.org/abs/1503.03832 (semi-hard).

Defaults: FaceNet's setting: semi-hard mining, embeddings L2-normalised and a hard margin of
0.2 (alpha = 0.2 on the unit hypersphere), on the head of Hermans et al. (1024 units,
BatchNorm, ReLU, then 128-d: triplet-reid's heads/fc1024.py). Hermans et al.'s setting, the
best variant in their paper (batch-hard with the soft margin, softplus(d_ap - d_an)) as their
code's defaults (VisualComputingInstitute/triplet-reid train.py: --loss batch_hard, --margin
soft, --head_name fc1024, --embedding_dim 128, --metric euclidean; embeddings not normalised,
fc1024_normalize being their non-default head), is given by the overrides
    method.mining=batch_hard method.soft_margin=true method.margin=0 method.normalize=false
Why FaceNet's is the default: on the 8-epoch CIFAR-10 learning check both beat random init on
the linear probe, but Hermans et al.'s left kNN and retrieval below it, FaceNet's raised both
(tests/learning_checks.yaml, docs/results/learning-metric-triplet*-cpu.json).
The method's recipe trains on P x K batches (trainer.sampler=pk).
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
    def __init__(self, encoder: nn.Module, mining: str = "semi_hard", soft_margin: bool = False, margin: float = 0.2,
                 normalize: bool = True, hidden_dim: Optional[int] = 1024, output_dim: int = 128):
        """soft_margin: softplus(d_ap - d_an + margin) instead of the hinge max(0, d_ap - d_an + margin)."""
        check_choice("method.mining", mining, MINING)
        super().__init__(encoder, hidden_dim, output_dim, normalize)
        self.mining, self.soft_margin, self.margin = mining, soft_margin, margin

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z, labels = self.embed(batch)  # [N, D], [N]
        return {"loss": triplet_margin_loss(z, labels, self.margin, self.mining, self.soft_margin)}
