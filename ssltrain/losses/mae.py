"""MAE's reconstruction loss: mean squared error on the hidden patches only.

He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022,
https://arxiv.org/abs/2111.06377, sec. 3 ("Reconstruction target") and table 1(c).
"""

from __future__ import annotations

import torch


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each patch to zero mean and unit variance over its pixels (all channels together).

    patches: [B, N, P]. Returns (normalised [B, N, P], mean [B, N, 1], scale [B, N, 1]) with
    normalised = (patches - mean) / scale, scale = sqrt(unbiased variance + eps) as in
    MAE's reference code.
    """
    mean = patches.mean(dim=-1, keepdim=True)  # [B, N, 1]
    scale = (patches.var(dim=-1, keepdim=True) + eps).sqrt()  # [B, N, 1]
    return (patches - mean) / scale, mean, scale


def mae_loss(prediction: torch.Tensor, target: torch.Tensor, masked: torch.Tensor, norm_pix: bool = True) -> torch.Tensor:
    """Mean over hidden patches of the per-patch mean squared error.

    prediction, target: [B, N, P] pixel values per patch (P = patch * patch * 3);
    masked: [B, N], 1.0 where the patch was hidden from the encoder, 0.0 where visible.
    norm_pix: compare against each target patch normalised by its own mean and variance
    (the paper's "normalized pixels" target, better representations in table 1(c)).
    """
    if norm_pix:
        target = normalize_patches(target)[0]
    per_patch = (prediction.float() - target.float()).pow(2).mean(dim=-1)  # [B, N]
    return (per_patch * masked).sum() / masked.sum()
