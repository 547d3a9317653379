"""MoCo v3: the online predictor's output for one view must find the momentum network's
projection of the other view among the keys of every image of the global batch (no queue).

Chen, Xie, He, "An Empirical Study of Training Self-Supervised Vision Transformers",
ICCV 2021, https://arxiv.org/abs/2104.02057, algorithm 1. Symmetric:
2t * (InfoNCE(q1, k2) + InfoNCE(q2, k1)), the 2t factor as in the reference code (it keeps
the gradient's scale independent of the temperature t). The momentum rises from
`base_momentum` to 1 along a cosine.

Heads as in the reference code (facebookresearch/moco-v3, moco/builder.py): every layer
is Linear -> BatchNorm (-> ReLU on hidden layers), the projector's output BatchNorm has no
affine; the projector has 2 layers on a CNN and 3 on a ViT, and the predictor's output
has a BatchNorm on a ViT only. `proj_layers` / `pred_last_bn` override the choice.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/mocov3.yaml): temperature 0.2,
projector 4096 -> 256, predictor hidden 4096, momentum 0.99 -> 1 along a cosine.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.parts.heads import mlp
from ssltrain.losses.info_nce import info_nce
from ssltrain.methods.base import encode_each
from ssltrain.methods.families.momentum import MomentumMethod
from ssltrain.registry import METHODS


@METHODS.register("mocov3")
class MoCoV3(MomentumMethod):
    couples_batch = True
    views = (2, 2)
    encoder_kinds = ("cnn", "vit")

    def __init__(self, encoder: nn.Module, temperature: float = 0.2, proj_hidden_dim: int = 4096,
                 proj_output_dim: int = 256, pred_hidden_dim: int = 4096, proj_layers: Optional[int] = None,
                 pred_last_bn: Optional[bool] = None, base_momentum: float = 0.99, freeze_patch_embedding: bool = False):
        vit = encoder.kind == "vit"
        layers = proj_layers if proj_layers is not None else (3 if vit else 2)
        hidden = [proj_hidden_dim] * (layers - 1)
        projector = mlp([encoder.out_dim, *hidden, proj_output_dim], last_norm="batch_noaffine")
        if freeze_patch_embedding:
            # the ViT recipe's --stop-grad-conv1 (sec. 4.2): a fixed random patch projection
            # steadies training; the momentum copy below inherits the frozen projection
            if not vit:
                raise UserError("method.freeze_patch_embedding=true needs a ViT encoder; use encoder=vit_tiny or vit_small")
            encoder.conv_proj.requires_grad_(False)
        super().__init__(encoder, projector, base_momentum, final_momentum=1.0)
        self.temperature = temperature
        last_bn = pred_last_bn if pred_last_bn is not None else vit
        self.predictor = mlp([proj_output_dim, pred_hidden_dim, proj_output_dim],
                             last_norm="batch_noaffine" if last_bn else None)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # one view at a time, as in facebookresearch/moco-v3 moco/builder.py
        q1, q2 = encode_each(batch.views, lambda x: self.predictor(self.projector(self.encoder(x))))  # [B, D] each
        k1, k2 = self.targets(batch.views)  # [B, D] each, no gradient; negatives: the global batch's keys
        loss = 2 * self.temperature * (info_nce(q1, k2, self.temperature) + info_nce(q2, k1, self.temperature))
        return {"loss": loss}
