"""SimSiam: one network, two views; the predictor's output for one view matches the
projection of the other, which sits behind a stop-gradient. No negatives, no momentum copy.

Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021,
https://arxiv.org/abs/2011.10566. Loss (eq. 4): D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2
with D the negative cosine. The predictor keeps a fixed learning rate (sec. 4.4, table 1:
"fixed lr of h"), marked with the `fixed_lr` parameter-group flag.

Heads as in the reference code: projector Linear -> BN -> ReLU (x `proj_layers` - 1) ->
Linear -> BN without affine; predictor Linear -> BN -> ReLU -> Linear (a bottleneck).

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/simsiam.yaml): projector 3
layers of 2048, predictor 2048 -> 512 -> 2048, the predictor's lr fixed (its static_lr).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.cosine import negative_cosine
from ssltrain.methods.base import SSLMethod, encode_each
from ssltrain.optim.param_groups import default_param_groups
from ssltrain.registry import METHODS


@METHODS.register("simsiam")
class SimSiam(SSLMethod):
    views = (2, 2)

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 2048, proj_output_dim: int = 2048,
                 proj_layers: int = 3, pred_hidden_dim: int = 512, fixed_predictor_lr: bool = True):
        super().__init__(encoder)
        hidden = [proj_hidden_dim] * (proj_layers - 1)
        self.projector = mlp([encoder.out_dim, *hidden, proj_output_dim], last_norm="batch_noaffine")
        self.predictor = mlp([proj_output_dim, pred_hidden_dim, proj_output_dim])
        self.fixed_predictor_lr = fixed_predictor_lr

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # one view at a time, as in facebookresearch/simsiam simsiam/builder.py
        z1, z2 = encode_each(batch.views, lambda x: self.projector(self.encoder(x)))  # [B, D] each
        p1, p2 = self.predictor(z1), self.predictor(z2)  # [B, D] each
        loss = (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2  # the targets z are detached inside
        return {"loss": loss}

    def param_groups(self) -> list[dict]:
        """The encoder and projector follow the lr schedule; the predictor's groups carry
        `fixed_lr`, so they keep the base lr throughout."""
        siamese = default_param_groups(nn.ModuleList([self.encoder, self.projector]))
        predictor = [{**group, "fixed_lr": self.fixed_predictor_lr} for group in default_param_groups(self.predictor)]
        return siamese + predictor
