"""Barlow Twins: the cross-correlation of two views' embeddings is pushed to the identity.

Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction",
ICML 2021, https://arxiv.org/abs/2103.03230, eq. (1)-(2).
"""

from __future__ import annotations

import torch

from ssltrain.runtime import dist
from ssltrain.losses.off_diagonal import off_diagonal_square_sum


def standardize(z: torch.Tensor, eps: float) -> torch.Tensor:
    """Each column of z ([N, D]) to zero mean and unit (biased) variance over the batch,
    as BatchNorm1d(affine=False) does in training mode; eps keeps a constant column finite."""
    centered = z - z.mean(dim=0)  # [N, D]
    return centered / torch.sqrt(centered.pow(2).mean(dim=0) + eps)


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambd: float, scale: float = 1.0,
                      eps: float = 1e-5) -> dict[str, torch.Tensor]:
    """scale * [sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2] on the global batch.

    z1, z2: [B, D] projections of two views of the same B images (this rank's share),
    gathered across DDP ranks with gradients into [N, D] and standardised per dimension
    over those N images, so C = z1^T z2 / N ([D, D]) is the cross-correlation matrix of
    the global batch (the reference code standardises with a SyncBatchNorm).
    lambd: weight of the off-diagonal (redundancy) term, the paper's lambda.
    scale: factor on the whole loss (solo-learn's `scale_loss`; 1 in the paper).
    eps: added to the variance, as BatchNorm1d's default.

    Returns {"loss", "on_diagonal": sum_i (1 - C_ii)^2, "off_diagonal": sum_{i != j} C_ij^2}.
    """
    n1 = standardize(dist.gather_with_grad(z1), eps)  # [N, D]
    n2 = standardize(dist.gather_with_grad(z2), eps)  # [N, D]
    correlation = n1.T @ n2 / n1.shape[0]  # [D, D]
    on_diagonal = (1 - correlation.diagonal()).pow(2).sum()
    off_diagonal = off_diagonal_square_sum(correlation)
    return {"loss": scale * (on_diagonal + lambd * off_diagonal), "on_diagonal": on_diagonal,
            "off_diagonal": off_diagonal}
