"""Prediction-to-target cosine losses of the non-contrastive Siamese methods.

The target side is always behind a stop-gradient: SimSiam (Chen & He, 2021,
https://arxiv.org/abs/2011.10566, eqs. (1)-(3)) detaches the other view's projection;
BYOL (Grill et al., 2020, https://arxiv.org/abs/2006.07733, eq. (2)) takes its target
from the momentum network, which has no gradient anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-cos(p, stopgrad(z)) averaged over the batch (SimSiam's D).

    prediction: [B, D] the predictor's output for one view; target: [B, D] the
    projection of the other view. Returns a scalar in [-1, 1]; no gradient reaches target.
    """
    return -F.cosine_similarity(prediction, target.detach(), dim=-1).mean()


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|| p/|p| - z/|z| ||^2 = 2 - 2 cos(p, stopgrad(z)), averaged over the batch (BYOL).

    prediction, target: [B, D]. Returns a scalar in [0, 4]; no gradient reaches target.
    """
    return 2 + 2 * negative_cosine(prediction, target)
