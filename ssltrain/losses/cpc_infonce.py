"""InfoNCE over a grid of patch embeddings, the loss of Contrastive Predictive Coding.

Oord et al., "Representation Learning with Contrastive Predictive Coding", 2018,
https://arxiv.org/abs/1807.03748, eq. (4) and sec. 3.3 (images); Hénaff et al., "Data-
Efficient Image Recognition with Contrastive Predictive Coding", ICML 2020,
https://arxiv.org/abs/1905.09272, sec. 2.2 (negatives from other locations and images).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def cpc_infonce(predictions: torch.Tensor, embeddings: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
    """Mean over offsets of the mean cross-entropy of picking the true embedding.

    predictions: [K, B, R, C, D]; predictions[s, b, i, j] is the guess, made from the
    context at row i, of embeddings[b, i + offsets[s], j] (rows i >= R - offsets[s] have
    no target and are ignored).
    embeddings: [B, R, C, D], one per patch of a B-image batch on an R x C grid.
    Each guess scores every embedding of the batch by dot product; the true one is the
    positive, the other B * R * C - 1 (other positions, other images) are negatives.
    """
    batch, rows, cols, dim = embeddings.shape
    candidates = embeddings.reshape(-1, dim)  # [B*R*C, D], index b*R*C + i*C + j
    index = torch.arange(batch * rows * cols, device=embeddings.device).view(batch, rows, cols)
    losses = []
    for step, offset in enumerate(offsets):
        guesses = predictions[step, :, : rows - offset].reshape(-1, dim)  # [B*(R-k)*C, D]
        targets = index[:, offset:].reshape(-1)  # [B*(R-k)*C]: the patch k rows below
        losses.append(F.cross_entropy(guesses @ candidates.T, targets))
    return torch.stack(losses).mean()
