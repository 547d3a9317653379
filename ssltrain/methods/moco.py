"""MoCo v2: queries from the online network must find their key, the momentum network's
projection of the other view, among a queue of keys from earlier steps.

He et al., "Momentum Contrast for Unsupervised Visual Representation Learning", CVPR 2020,
https://arxiv.org/abs/1911.05722; Chen et al., "Improved Baselines with Momentum
Contrastive Learning", 2020, https://arxiv.org/abs/2003.04297 (MLP head, blur, cosine lr).

Differences from the papers, both as in solo-learn's mocov2plus: the loss is symmetrised
over the two views (q1 against k2 and q2 against k1, averaged), and the momentum follows a
cosine from `base_momentum` to `final_momentum` instead of a constant 0.999 (set both to
0.999 for the paper's constant). There is no shuffle-BN: BatchNorm runs per rank or as
SyncBatchNorm (trainer.sync_batchnorm). One queue serves both views and receives both
views' keys each step.

Defaults: solo-learn's CIFAR-10 recipe (scripts/pretrain/cifar/mocov2plus.yaml): temperature
0.2, projector 2048 -> 256, queue 32768, momentum 0.99 -> 0.999 along a cosine.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.info_nce import info_nce
from ssltrain.methods.base import encode_each
from ssltrain.methods.families.momentum import MomentumMethod
from ssltrain.parts.queue import FeatureQueue
from ssltrain.registry import METHODS


@METHODS.register("moco")
class MoCo(MomentumMethod):
    couples_batch = True
    views = (2, 2)

    def __init__(self, encoder: nn.Module, temperature: float = 0.2, proj_hidden_dim: int = 2048,
                 proj_output_dim: int = 256, queue_size: int = 32768, base_momentum: float = 0.99,
                 final_momentum: float = 0.999):
        # MoCo v2's head: Linear -> ReLU -> Linear, no BatchNorm (sec. 2 of the v2 note)
        projector = mlp([encoder.out_dim, proj_hidden_dim, proj_output_dim], hidden_norm=None)
        super().__init__(encoder, projector, base_momentum, final_momentum)
        self.temperature = temperature
        self.queue = FeatureQueue(queue_size, proj_output_dim)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        # one view at a time, as in facebookresearch/moco moco/builder.py (queries and keys apart)
        q1, q2 = encode_each(batch.views, lambda x: self.projector(self.encoder(x)))  # [B, D] each
        k1, k2 = self.targets(batch.views)  # [B, D] each, no gradient
        negatives = self.queue.features  # [K, D]: keys of earlier steps only
        loss = (info_nce(q1, k2, self.temperature, negatives) + info_nce(q2, k1, self.temperature, negatives)) / 2
        # the loss keeps a normalised copy of the queue for backward, so the push may overwrite it
        self.queue.push(F.normalize(torch.cat([k1, k2]), dim=1))
        return {"loss": loss}
