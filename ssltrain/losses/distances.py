"""Pairwise Euclidean distances with a gradient everywhere (the metric-learning losses)."""

from __future__ import annotations

import torch


def pairwise_distances(z: torch.Tensor) -> torch.Tensor:
    """z: [N, D] -> [N, N] Euclidean distances ||z_i - z_j||. The squared distance is clamped
    at 1e-12 before the root, so identical rows (the diagonal) give 1e-6 and a zero gradient
    instead of torch.cdist's NaN gradient at zero distance."""
    squared = (z[:, None, :] - z[None, :, :]).pow(2).sum(-1)  # [N, N]
    return squared.clamp_min(1e-12).sqrt()
