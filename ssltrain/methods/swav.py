"""SwAV: the cluster code of one crop is predicted from every other crop.

Caron et al., NeurIPS 2020, https://arxiv.org/abs/2006.09882. Each crop's normalised
projection is scored against unit-norm prototypes; the two global crops get codes from
Sinkhorn-Knopp (equal partition of the batch, optionally padded with a queue of past
embeddings when batches are small, sec. 4.3 / appendix A.1), and every other crop
predicts them (swapped prediction over multi-crop).

Step-based settings are fractions of the run's steps, since a method sees only
(step, total_steps): e.g. 0.002 of a 1000-epoch run is its first 2 epochs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.runtime import dist
from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.losses.swav import sinkhorn_knopp, swav_loss
from ssltrain.methods.base import encode_views
from ssltrain.methods.families.multicrop import GLOBAL_CROPS, MultiCropMethod
from ssltrain.parts.prototypes import Prototypes
from ssltrain.parts.queue import FeatureQueue
from ssltrain.registry import METHODS


@METHODS.register("swav")
class SwAV(MultiCropMethod):
    couples_batch = True

    def __init__(self, encoder: nn.Module, temperature: float = 0.1, proj_hidden_dim: int = 2048,
                 proj_output_dim: int = 128, num_prototypes: int = 3000, sinkhorn_epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, freeze_prototypes_fraction: float = 0.002, queue_size: int = 3840,
                 queue_start_fraction: float = 0.05):
        """queue_size: past global-crop embeddings kept per global crop (all ranks together;
        0: no queue). They pad the Sinkhorn-Knopp batch from step
        queue_start_fraction * total_steps on; the queue is filled from the first step, so
        start it after queue_size / batch_size steps. freeze_prototypes_fraction: the
        prototypes get no gradient before that fraction of the run."""
        super().__init__(encoder)
        self.temperature = temperature
        self.sinkhorn_epsilon, self.sinkhorn_iterations = sinkhorn_epsilon, sinkhorn_iterations
        self.freeze_prototypes_fraction = freeze_prototypes_fraction
        self.queue_start_fraction = queue_start_fraction
        self.projector = mlp([encoder.out_dim, proj_hidden_dim, proj_output_dim])
        self.prototypes = Prototypes(proj_output_dim, num_prototypes, normalize_weight=False)
        self.queues = nn.ModuleList(FeatureQueue(queue_size, proj_output_dim) for _ in range(GLOBAL_CROPS if queue_size else 0))
        self.use_queue = False
        self.on_step_start(0, 1)

    def on_step_start(self, step: int, total_steps: int) -> None:
        self.prototypes.frozen = step < self.freeze_prototypes_fraction * total_steps
        self.use_queue = len(self.queues) > 0 and step >= self.queue_start_fraction * total_steps

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        self.prototypes.renormalize_()

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projector(self.encoder(images)), dim=1)  # [n, D]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        embeddings = encode_views(batch.views, self._embed)  # V x [B, D], global crops first
        scores = [self.prototypes(z) for z in embeddings]  # V x [B, K]
        codes = [self._codes(scores[i], i) for i in range(GLOBAL_CROPS)]  # 2 x [B, K]
        for queue, z in zip(self.queues, embeddings):
            queue.push(z)
        return {"loss": swav_loss(scores, codes, self.temperature)}

    @torch.no_grad()
    def _codes(self, scores: torch.Tensor, crop: int) -> torch.Tensor:
        """Sinkhorn-Knopp codes [B, K] of one global crop, over the batch and, when the queue
        is in use, this rank's share of that crop's queue (all ranks hold the same queue)."""
        batch = scores.shape[0]
        if self.use_queue:
            stored = self.queues[crop].features.chunk(dist.world_size())[dist.rank()]  # [Q / world, D]
            scores = torch.cat([scores, self.prototypes(stored.to(scores.dtype))])  # [B + Q / world, K]
        return sinkhorn_knopp(scores, self.sinkhorn_epsilon, self.sinkhorn_iterations)[:batch]  # [B, K]
