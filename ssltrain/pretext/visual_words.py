"""Visual words: a vocabulary from k-means over feature-map vectors, and the bag-of-words
histogram of a feature map over it (soft assignment).

Gidaris et al., "Learning Representations by Predicting Bags of Visual Words", CVPR 2020,
https://arxiv.org/abs/2002.12247, sec. 3.1.
"""

from __future__ import annotations

import torch


@torch.no_grad()
def kmeans(vectors: torch.Tensor, count: int, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """[N, C] vectors -> [count, C] centres: Lloyd's algorithm from `count` distinct vectors
    drawn with `generator` (on the CPU); a centre left without vectors keeps its place."""
    start = torch.randperm(len(vectors), generator=generator)[:count].to(vectors.device)
    centres = vectors[start].clone()  # [K, C]
    for _ in range(iterations):
        nearest = torch.cdist(vectors, centres).argmin(dim=1)  # [N]
        sums = torch.zeros_like(centres).index_add_(0, nearest, vectors)  # [K, C]
        counts = torch.bincount(nearest, minlength=count).to(vectors.dtype)[:, None]  # [K, 1]
        centres = torch.where(counts > 0, sums / counts.clamp(min=1), centres)
    return centres


def bow_histogram(feature_map: torch.Tensor, vocabulary: torch.Tensor, inverse_delta: float) -> torch.Tensor:
    """[B, C, h, w] feature map, [K, C] words -> [B, K] histogram (each row sums to 1).

    Each position u is soft-assigned to the words by softmax_k(-||f_u - w_k||^2 / delta),
    delta = mean over the batch's positions of the squared distance to the nearest word,
    divided by `inverse_delta` (the larger, the harder the assignment); the histogram is
    the mean of the positions' assignments.
    """
    batch, channels, height, width = feature_map.shape
    vectors = feature_map.float().permute(0, 2, 3, 1).reshape(-1, channels)  # [B h w, C]
    squared = torch.cdist(vectors, vocabulary.float()).pow(2)  # [B h w, K]
    delta = squared.min(dim=1).values.mean().clamp(min=1e-12) / inverse_delta
    assignments = torch.softmax(-squared / delta, dim=1)  # [B h w, K]
    return assignments.view(batch, height * width, -1).mean(dim=1)  # [B, K]
