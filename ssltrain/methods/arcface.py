"""ArcFace: a classifier on normalised embeddings and class centres whose true-class logit
carries an additive angular margin, s * cos(theta_y + m) (supervised).

Deng et al., CVPR 2019, https://arxiv.org/abs/1801.07698.

Defaults: a 512-d embedding, FC then BatchNorm: the paper's output setting E
(BN-Dropout-FC-BN) without its first BatchNorm and dropout; margin m = 0.5 (the paper's). Scale s = 16 (our choice; the paper's 64 is sized for 85k identities):
CosFace's lower bound on the scale (Wang et al. 2018, https://arxiv.org/abs/1801.09414),
s >= (C - 1) / C * log((C - 1) P / (1 - P)), asks s >= 4 for a true-class probability
P = 0.9 among C = 10 classes (6.2 for CIFAR-100's 100), and 16 leaves a margin over both.
The class count comes from the dataset (build_method's num_classes).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.losses.arcface import arcface_loss
from ssltrain.methods.embedding import EmbeddingMethod
from ssltrain.registry import METHODS


@METHODS.register("arcface")
class ArcFace(EmbeddingMethod):
    def __init__(self, encoder: nn.Module, num_classes: Optional[int] = None, scale: float = 16.0, margin: float = 0.5,
                 output_dim: int = 512):
        if not num_classes or num_classes < 2:
            raise UserError(f"method arcface needs the dataset's number of classes (2 or more) and got {num_classes}; "
                            f"train on a labelled dataset")
        super().__init__(encoder, None, output_dim, normalize=False, last_norm="batch")  # the loss normalises
        self.scale, self.margin = scale, margin
        self.centres = nn.Parameter(torch.empty(num_classes, output_dim))  # W: [C, D]
        nn.init.normal_(self.centres, std=0.01)  # insightface's initialisation of W

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z, labels = self.embed(batch)  # [N, D], [N]
        return {"loss": arcface_loss(z, self.centres, labels, self.scale, self.margin)}
