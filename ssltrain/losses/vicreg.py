"""VICReg: variance-invariance-covariance regularisation of two views' embeddings.

Bardes et al., "VICReg: Variance-Invariance-Covariance Regularization for
Self-Supervised Learning", ICLR 2022, https://arxiv.org/abs/2105.04906, eq. (1)-(6).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssltrain.runtime import dist
from ssltrain.losses.off_diagonal import off_diagonal_square_sum

TARGET_STD = 1.0  # gamma in eq. (1), fixed to 1 in the paper


def variance_term(z: torch.Tensor, eps: float) -> torch.Tensor:
    """v(Z), eq. (1): mean over the D dimensions of max(0, gamma - sqrt(Var(z_j) + eps)),
    the variance unbiased over the N rows of z ([N, D])."""
    std = torch.sqrt(z.var(dim=0) + eps)  # [D]
    return F.relu(TARGET_STD - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """c(Z), eq. (3)-(4): squared off-diagonal entries of the covariance of z ([N, D]),
    summed and divided by D."""
    centered = z - z.mean(dim=0)  # [N, D]
    covariance = centered.T @ centered / (z.shape[0] - 1)  # [D, D]
    return off_diagonal_square_sum(covariance) / z.shape[1]


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, invariance_weight: float, variance_weight: float,
                covariance_weight: float, eps: float = 1e-4) -> dict[str, torch.Tensor]:
    """lambda * s(Z, Z') + mu * [v(Z) + v(Z')] + nu * [c(Z) + c(Z')], eq. (6).

    z1, z2: [B, D] projections of two views of the same B images (this rank's share).
    The invariance s is the mean squared error over this rank's [B, D] entries (the
    reference code's F.mse_loss, i.e. the paper's s divided by D); DDP's gradient average
    makes it the global mean. Variance and covariance need the whole batch, so they are
    computed on the [N, D] embeddings gathered across ranks with gradients.
    eps: inside the square root of v, 1e-4 as in the paper.

    Returns {"loss", "invariance": s, "variance": v(Z) + v(Z'), "covariance": c(Z) + c(Z')},
    the three terms unweighted. (The reference code halves the variance sum; the paper's
    eq. (6) and solo-learn do not, and neither does this.)
    """
    invariance = F.mse_loss(z1, z2)
    n1, n2 = dist.gather_with_grad(z1), dist.gather_with_grad(z2)  # [N, D] each
    variance = variance_term(n1, eps) + variance_term(n2, eps)
    covariance = covariance_term(n1) + covariance_term(n2)
    loss = invariance_weight * invariance + variance_weight * variance + covariance_weight * covariance
    return {"loss": loss, "invariance": invariance, "variance": variance, "covariance": covariance}
