"""SimCLR: two views of each image attract, all other views in the batch repel (NT-Xent).

Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/simclr.yaml): temperature 0.2,
projector 2048 -> 256.
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.nt_xent import nt_xent
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.registry import METHODS


@METHODS.register("simclr")
class SimCLR(SSLMethod):
    couples_batch = True
    views = (2, 2)

    def __init__(self, encoder: nn.Module, temperature: float = 0.2, proj_hidden_dim: int = 2048,
                 proj_output_dim: int = 256, proj_layers: int = 2):
        super().__init__(encoder)
        self.temperature = temperature
        hidden = [proj_hidden_dim] * (proj_layers - 1)
        self.projector = mlp([encoder.out_dim, *hidden, proj_output_dim])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z1, z2 = encode_views(batch.views, lambda x: self.projector(self.encoder(x)))  # [B, D] each
        return {"loss": nt_xent(z1, z2, self.temperature)}
