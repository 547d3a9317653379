"""Class-rebalanced multinomial cross-entropy over quantised ab colours (colorization).

Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016,
https://arxiv.org/abs/1603.08511, eq. 2: L = -sum_{h,w} v(Z_hw) sum_q Z_hwq log Zhat_hwq,
here averaged over the pixels instead of summed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rebalanced_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """logits: [B, Q, H, W] bin scores; targets: [B, Q, H, W] target distributions over the
    Q bins (each pixel sums to 1); weights: [B, H, W] the rebalancing weight of each pixel.
    Returns the weighted cross-entropy, averaged over the B * H * W pixels."""
    log_probs = F.log_softmax(logits.float(), dim=1)  # [B, Q, H, W]
    per_pixel = -(targets * log_probs).sum(dim=1)  # [B, H, W]
    return (weights * per_pixel).mean()
