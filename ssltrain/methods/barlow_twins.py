"""Barlow Twins: the cross-correlation of two views' projections goes to the identity.

Zbontar et al., ICML 2021, https://arxiv.org/abs/2103.03230.
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.losses.barlow_twins import barlow_twins_loss
from ssltrain.methods.families.two_view import TwoViewProjection
from ssltrain.optim.param_groups import default_param_groups
from ssltrain.registry import METHODS


@METHODS.register("barlow_twins")
class BarlowTwins(TwoViewProjection):
    def __init__(self, encoder: nn.Module, lambd: float = 0.0051, scale_loss: float = 0.1,
                 proj_hidden_dim: int = 2048, proj_output_dim: int = 2048, proj_layers: int = 3,
                 bias_lr_scale: float = 0.024):
        super().__init__(encoder, proj_hidden_dim, proj_output_dim, proj_layers)
        self.lambd = lambd
        self.scale_loss = scale_loss
        self.bias_lr_scale = bias_lr_scale

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z1, z2 = self.project(batch)  # [B, D] each
        return barlow_twins_loss(z1, z2, self.lambd, self.scale_loss)

    def param_groups(self) -> list[dict]:
        """Biases and norm parameters at bias_lr_scale times the scheduled lr. The loss is a
        sum over D^2 entries, so its gradients are large, and these parameters take plain
        SGD steps outside LARS's trust ratio: at the weights' rate they swamp the encoder's
        norm layers. The paper uses 0.0048 for them against 0.2 for the weights."""
        weights, biases_and_norms = default_param_groups(self)
        return [weights, {**biases_and_norms, "lr_scale": self.bias_lr_scale}]
