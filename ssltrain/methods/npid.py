"""NPID: every image is its own class of a non-parametric softmax over a memory bank of all
images' features (instance discrimination).

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
CVPR 2018, https://arxiv.org/abs/1805.01978; reference code zhirongw/lemniscate.pytorch.

The encoder's features go through a linear layer to `feature_dim` and are L2-normalised
(the reference code's fc to low_dim, then Normalize). The loss compares a feature with
every image's row of the bank (loss=softmax, eq. 2: what the reference code runs on
CIFAR-10) or with `num_negatives` rows drawn uniformly (loss=nce, eqs. 5-7, for large
datasets; drawn once per step for the whole batch, and Z fixed at the first step as the
reference code's NCEAverage does, kept in a buffer so a resumed run uses the same). After
the loss, the batch's rows are blended with its features (momentum `memory_momentum`),
gathered from every DDP rank first so that every rank keeps the same bank.

Several views of an image (the simclr augmentation makes two) are each a sample of the
image's class; its row is blended with their normalised mean. With one view
(`augmentation.views.0.count=1`) this is the paper's method exactly.

Defaults: the paper's ImageNet settings, also the reference code's README command
(`--nce-k 4096 --nce-t 0.07 --nce-m 0.5 --low-dim 128`): feature_dim 128, temperature 0.07
(its CIFAR-10 command uses 0.1; the README says 0.07-0.1 works), memory momentum 0.5, 4096
noise samples; but the full softmax, as in the reference CIFAR-10 command (--nce-k 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.losses.npid import instance_nce_loss, instance_softmax_loss
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.parts.memory_bank import MemoryBank
from ssltrain.registry import METHODS
from ssltrain.runtime import dist

LOSSES = ("softmax", "nce")


@METHODS.register("npid")
class NPID(SSLMethod):
    views = (1, None)
    couples_batch = True  # its memory bank rows change with every forward

    def __init__(self, encoder: nn.Module, num_images: int, feature_dim: int = 128, temperature: float = 0.07,
                 memory_momentum: float = 0.5, loss: str = "softmax", num_negatives: int = 4096):
        if loss not in LOSSES:
            raise UserError(f"method.loss={loss!r} is not valid; choose one of: {', '.join(LOSSES)}")
        super().__init__(encoder)
        self.temperature, self.loss, self.num_negatives = temperature, loss, num_negatives
        self.head = nn.Linear(encoder.out_dim, feature_dim)
        self.bank = MemoryBank(num_images, feature_dim, memory_momentum)
        self.register_buffer("normaliser", torch.zeros(()))  # nce's Z, set at the first step (0: not yet)

    def instance_loss(self, features: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """features [B, D] normalised, indices [B] -> the loss against the bank as it is now."""
        if self.loss == "softmax":
            return instance_softmax_loss(features, self.bank.features.clone(), indices, self.temperature)
        noise = torch.randint(len(self.bank), (self.num_negatives,), device=features.device)  # [K]
        positive = (features * self.bank.features[indices]).sum(dim=1)  # [B]
        negatives = features @ self.bank.features[noise].t()  # [B, K]
        with torch.no_grad():
            scores = torch.cat([positive[:, None], negatives], dim=1) / self.temperature  # [B, K + 1]
            estimate = dist.all_reduce_mean(scores.exp().mean()) * len(self.bank)
            self.normaliser.copy_(torch.where(self.normaliser > 0, self.normaliser, estimate))
        return instance_nce_loss(positive, negatives, self.temperature, self.normaliser, len(self.bank))

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        features = [F.normalize(z, dim=1) for z in encode_views(batch.views, lambda x: self.head(self.encoder(x)))]
        loss = torch.stack([self.instance_loss(f, batch.indices) for f in features]).mean()  # V x [B, D] -> scalar
        self.bank.update(F.normalize(torch.stack(features).mean(dim=0), dim=1), batch.indices)
        return {"loss": loss}
