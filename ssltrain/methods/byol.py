"""BYOL: the online network predicts the target network's projection of the other view;
the target is a momentum (EMA) copy of the online encoder and projector. No negatives.

Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, https://arxiv.org/abs/2006.07733.
Loss (eq. 2, symmetrised as L + L~): 2 - 2 cos(q(z1), z2') + 2 - 2 cos(q(z2), z1'), with
the target projections z' behind a stop-gradient. The target's momentum rises from
`base_momentum` to 1 along a cosine (sec. 3.2).

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/byol.yaml): projector
4096 -> 256, predictor hidden 4096, target momentum 0.99 -> 1 along a cosine.
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.cosine import normalized_mse
from ssltrain.methods.base import encode_each
from ssltrain.methods.families.momentum import MomentumMethod
from ssltrain.registry import METHODS


@METHODS.register("byol")
class BYOL(MomentumMethod):
    views = (2, 2)

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 4096, proj_output_dim: int = 256,
                 pred_hidden_dim: int = 4096, base_momentum: float = 0.99):
        # projector and predictor: Linear -> BN -> ReLU -> Linear (sec. 3.3)
        projector = mlp([encoder.out_dim, proj_hidden_dim, proj_output_dim])
        super().__init__(encoder, projector, base_momentum, final_momentum=1.0)
        self.predictor = mlp([proj_output_dim, pred_hidden_dim, proj_output_dim])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # one view at a time, as in deepmind-research byol/byol_experiment.py (apply_once_fn per view)
        p1, p2 = encode_each(batch.views, lambda x: self.predictor(self.projector(self.encoder(x))))  # [B, D] each
        t1, t2 = self.targets(batch.views)  # [B, D] each, no gradient
        return {"loss": normalized_mse(p1, t2) + normalized_mse(p2, t1)}
