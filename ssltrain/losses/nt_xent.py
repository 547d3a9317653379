"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR.

Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations",
ICML 2020, https://arxiv.org/abs/2002.05709, eq. (1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssltrain.runtime import dist


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean NT-Xent over both views of every image in the global batch.

    z1, z2: [B, D] projections of two views of the same B images (this rank's share).
    Each of the 2B anchors has one positive (the other view of its image) and, as
    negatives, the other 2(N-1) views of the global batch of N = world_size * B images,
    gathered across DDP ranks with gradients kept.
    """
    batch = z1.shape[0]
    local = F.normalize(torch.cat([z1, z2]), dim=1)  # [2B, D]
    n1 = dist.gather_with_grad(local[:batch])  # [N, D]
    n2 = dist.gather_with_grad(local[batch:])  # [N, D]
    candidates = torch.cat([n1, n2])  # [2N, D]: all first views, then all second views
    total = n1.shape[0]
    logits = local @ candidates.T / temperature  # [2B, 2N]
    own = dist.rank() * batch + torch.arange(batch, device=z1.device)  # this rank's rows in n1 / n2
    self_column = torch.cat([own, own + total])  # [2B]
    positive_column = torch.cat([own + total, own])  # [2B]
    rows = torch.arange(2 * batch, device=z1.device)
    logits[rows, self_column] = float("-inf")
    return F.cross_entropy(logits, positive_column)
