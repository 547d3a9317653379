"""Barlow Twins: the cross-correlation of two views' projections goes to the identity.

Zbontar et al., ICML 2021, https://arxiv.org/abs/2103.03230.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/barlow.yaml): projector
2048 -> 2048 -> 2048, scale_loss 0.1; lambd 0.0051 is solo-learn's default and the official
code's --lambd (the paper rounds it to 5e-3).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.losses.barlow_twins import barlow_twins_loss
from ssltrain.methods.families.two_view import TwoViewProjection
from ssltrain.registry import METHODS


@METHODS.register("barlow_twins")
class BarlowTwins(TwoViewProjection):
    couples_batch = True

    def __init__(self, encoder: nn.Module, lambd: float = 0.0051, scale_loss: float = 0.1,
                 proj_hidden_dim: int = 2048, proj_output_dim: int = 2048, proj_layers: int = 3):
        super().__init__(encoder, proj_hidden_dim, proj_output_dim, proj_layers)
        self.lambd = lambd
        self.scale_loss = scale_loss

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z1, z2 = self.project(batch)  # [B, D] each
        return barlow_twins_loss(z1, z2, self.lambd, self.scale_loss)
