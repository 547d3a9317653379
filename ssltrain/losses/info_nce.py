"""InfoNCE: a query must pick its positive key out of a set of negatives.

van den Oord et al., "Representation Learning with Contrastive Predictive Coding", 2018,
https://arxiv.org/abs/1807.03748, eq. (4); in the form of MoCo (He et al., 2020,
https://arxiv.org/abs/1911.05722, eq. (1)) on L2-normalised vectors.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ssltrain.runtime import dist


def info_nce(query: torch.Tensor, key: torch.Tensor, temperature: float,
             negatives: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean over queries of -log exp(q.k+ / t) / (exp(q.k+ / t) + sum_n exp(q.n / t)).

    query: [B, D] this rank's queries; key: [B, D] the positive of each query (row i for
    query i). Every vector is L2-normalised here.

    negatives: [K, D] the negatives shared by every query (MoCo v2's queue); the other
    keys of the batch are then not negatives. None: the negatives of query i are the keys
    of every other image of the global batch, gathered across DDP ranks with gradients
    kept (MoCo v3, NNCLR), so each query scores against N = world_size * B keys.
    """
    query = F.normalize(query, dim=1)  # [B, D]
    key = F.normalize(key, dim=1)  # [B, D]
    batch = query.shape[0]
    if negatives is None:
        keys = dist.gather_with_grad(key)  # [N, D], rank order
        logits = query @ keys.T  # [B, N]
        target = dist.rank() * batch + torch.arange(batch, device=query.device)  # [B]: own key's column
    else:
        positive = (query * key).sum(dim=1, keepdim=True)  # [B, 1]
        negative = query @ F.normalize(negatives, dim=1).T  # [B, K]
        logits = torch.cat([positive, negative], dim=1)  # [B, 1 + K]
        target = torch.zeros(batch, dtype=torch.long, device=query.device)  # [B]: the positive is column 0
    return F.cross_entropy(logits / temperature, target)
