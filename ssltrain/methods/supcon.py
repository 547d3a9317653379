"""SupCon: contrastive learning where every view of the same class attracts (supervised;
the upper-bound baseline for the self-supervised methods).

Khosla et al., NeurIPS 2020, https://arxiv.org/abs/2004.11362.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/supcon.yaml): temperature 0.2,
projector 2048 -> 256 (Linear, ReLU, Linear).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.supcon import supcon_loss
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.registry import METHODS


@METHODS.register("supcon")
class SupCon(SSLMethod):
    couples_batch = True
    views = (2, None)
    needs_labels = True

    def __init__(self, encoder: nn.Module, temperature: float = 0.2, proj_hidden_dim: int = 2048,
                 proj_output_dim: int = 256, proj_layers: int = 2):
        super().__init__(encoder)
        self.temperature = temperature
        hidden = [proj_hidden_dim] * (proj_layers - 1)
        # Linear -> ReLU -> Linear without BatchNorm, as in the reference code and solo-learn
        self.projector = mlp([encoder.out_dim, *hidden, proj_output_dim], hidden_norm=None)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z = encode_views(batch.views, lambda x: self.projector(self.encoder(x)))  # V x [B, D]
        return {"loss": supcon_loss(torch.stack(z, dim=1), batch.labels, self.temperature)}  # z: [B, V, D]
