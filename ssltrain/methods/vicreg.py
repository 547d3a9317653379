"""VICReg: invariance between two views' projections, with variance and covariance
regularisers that keep every dimension alive and decorrelated.

Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/vicreg.yaml): projector
2048 -> 2048 -> 2048, loss weights 25 / 25 / 1 (also the paper's lambda / mu / nu).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.losses.vicreg import vicreg_loss
from ssltrain.methods.families.two_view import TwoViewProjection
from ssltrain.registry import METHODS


@METHODS.register("vicreg")
class VICReg(TwoViewProjection):
    couples_batch = True

    def __init__(self, encoder: nn.Module, invariance_weight: float = 25.0, variance_weight: float = 25.0,
                 covariance_weight: float = 1.0, proj_hidden_dim: int = 2048, proj_output_dim: int = 2048,
                 proj_layers: int = 3):
        super().__init__(encoder, proj_hidden_dim, proj_output_dim, proj_layers)
        self.weights = (invariance_weight, variance_weight, covariance_weight)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z1, z2 = self.project(batch)  # [B, D] each
        return vicreg_loss(z1, z2, *self.weights)
