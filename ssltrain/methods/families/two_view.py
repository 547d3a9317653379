"""What Barlow Twins and VICReg share: a BatchNorm MLP projector after the encoder, run on
each of the two views on its own."""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.methods.base import SSLMethod, encode_each


class TwoViewProjection(SSLMethod):
    views = (2, 2)

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int, proj_output_dim: int, proj_layers: int):
        super().__init__(encoder)
        hidden = [proj_hidden_dim] * (proj_layers - 1)
        self.projector = mlp([encoder.out_dim, *hidden, proj_output_dim])

    def project(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Projections of the two views, [B, D] each, one view at a time as both papers'
        reference code does."""
        z1, z2 = encode_each(batch.views, lambda x: self.projector(self.encoder(x)))  # [B, D] each
        return z1, z2
