"""SwAV: online cluster assignments by Sinkhorn-Knopp, predicted from the other crops.

Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments", NeurIPS 2020, https://arxiv.org/abs/2006.09882: sec. 3.1 (codes as an
entropy-regularised transport problem, eq. (3)-(5), solved with three Sinkhorn-Knopp
iterations, epsilon 0.05) and eq. (1)-(2) (the swapped prediction, over multi-crop).
"""

from __future__ import annotations

from typing import Sequence

import torch

from ssltrain.runtime import dist
from ssltrain.losses.cross_crop import cross_crop_entropy


def _global_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum of `tensor` over every DDP rank (the identity in one process)."""
    return dist.all_reduce_mean(tensor) * dist.world_size()


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft assignments of samples to prototypes that split the samples equally among them.

    scores: [N, K] similarities of this rank's N samples to K prototypes (cosine
    similarities in SwAV, so exp(scores / epsilon) <= e^(1 / epsilon) stays finite).
    Returns [N, K] codes: each row a distribution over prototypes (sums to 1); over the
    samples of every rank, each prototype's column receives about N_total / K of the mass,
    closer with more iterations. Sums over samples are all-reduced across DDP ranks, so the
    equal split holds for the global batch. Computed in float32.
    """
    codes = torch.exp(scores.float() / epsilon)  # [N, K]
    samples = scores.shape[0] * dist.world_size()  # N_total
    prototypes = scores.shape[1]  # K
    codes = codes / _global_sum(codes.sum())
    for _ in range(iterations):
        codes = codes / (_global_sum(codes.sum(dim=0, keepdim=True)) * prototypes)  # each prototype: mass 1 / K
        codes = codes / (codes.sum(dim=1, keepdim=True) * samples)  # each sample: mass 1 / N_total
    return codes * samples  # [N, K]: rows sum to 1


def swav_loss(scores: Sequence[torch.Tensor], codes: Sequence[torch.Tensor], temperature: float = 0.1) -> torch.Tensor:
    """Swapped prediction: the code of each global crop predicted from every other crop.

    scores: V tensors [B, K], cosine similarities of each crop's embedding to the
    prototypes, global crops first. codes: G tensors [B, K] (G <= V, usually 2), the
    Sinkhorn-Knopp codes of the global crops (no gradient). The prediction of crop v is
    softmax(scores[v] / temperature); the loss is the mean cross-entropy over the
    G * (V - 1) (code, other crop) pairs.
    """
    return cross_crop_entropy([code.detach() for code in codes], [score / temperature for score in scores])
