"""The contrastive (margin) loss of siamese networks, over every pair in a batch.

Hadsell, Chopra & LeCun, "Dimensionality Reduction by Learning an Invariant Mapping",
CVPR 2006, http://yann.lecun.com/exdb/publis/pdf/hadsell-chopra-lecun-06.pdf, eq. (4).
"""

from __future__ import annotations

import torch

from ssltrain.losses.distances import pairwise_distances


def contrastive_margin_loss(z: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """z: [N, D] embeddings, labels: [N] classes. Pairs: every unordered pair i < j of the
    batch; y = 1 for a positive (same class), 0 for a negative. With d = ||z_i - z_j||,
        L_pair = y * d^2 + (1 - y) * max(0, margin - d)^2
    (the paper's 1/2 factors only rescale). Returns the mean over positive pairs plus the mean
    over negative pairs, so that the 1-in-C share of positives in a batch of C classes does
    not drown them; a batch with no pair of one kind contributes that kind's term as 0."""
    distance = pairwise_distances(z)  # [N, N]
    upper = torch.ones_like(distance, dtype=torch.bool).triu(diagonal=1)  # [N, N] each pair once
    same = labels[:, None] == labels[None, :]  # [N, N]
    positive, negative = upper & same, upper & ~same
    pull = distance.pow(2)  # [N, N]
    push = (margin - distance).clamp_min(0).pow(2)  # [N, N]
    return (pull * positive).sum() / positive.sum().clamp_min(1) + (push * negative).sum() / negative.sum().clamp_min(1)
