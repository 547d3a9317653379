"""NPID's losses: each image is its own class of a non-parametric softmax over a memory bank.

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination",
CVPR 2018, https://arxiv.org/abs/1805.01978.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def instance_softmax_loss(features: torch.Tensor, memory: torch.Tensor, indices: torch.Tensor,
                          temperature: float) -> torch.Tensor:
    """The full non-parametric softmax (eq. 2): P(i | f) = exp(v_i . f / t) / sum_j exp(v_j . f / t),
    and the loss -log P(index | f), averaged over the batch.

    features: [B, D] L2-normalised; memory: [N, D] (the bank's rows v_j); indices: [B] int64,
    each feature's own row. Returns a scalar.
    """
    logits = features @ memory.t() / temperature  # [B, N]
    return F.cross_entropy(logits, indices)


def instance_nce_loss(positive: torch.Tensor, negatives: torch.Tensor, temperature: float, normaliser: torch.Tensor,
                      num_images: int) -> torch.Tensor:
    """Noise-contrastive estimation of that softmax (eqs. 5-7), noise uniform over the N images.

    With P(i | f) = exp(v_i . f / t) / Z and K noise samples per feature, the posterior that
    a pair comes from the data is h = P / (P + K / N); the loss is
    -log h(positive) - sum_k log(1 - h(negative_k)), averaged over the batch (the reference
    code's NCECriterion). positive: [B] = v_i . f of each feature's own row; negatives:
    [B, K] = v_j . f of K rows drawn uniformly; normaliser: Z (the reference code fixes it
    from the first batch, Z = N * mean exp(v . f / t)). Returns a scalar.
    """
    shift = torch.log(normaliser) + math.log(negatives.shape[1] / num_images)  # log(Z K / N)
    # log h = -softplus(-(log P - log(K / N))), log(1 - h) = -softplus(log P - log(K / N))
    data = F.softplus(shift - positive / temperature)  # [B]
    noise_terms = F.softplus(negatives / temperature - shift).sum(dim=1)  # [B]
    return (data + noise_terms).mean()
