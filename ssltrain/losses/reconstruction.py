"""Squared reconstruction error, over the whole image or a hidden region of it.

The pixel loss of autoencoders (Vincent et al. 2008), super-resolution and the Context
Encoder (Pathak et al., CVPR 2016, https://arxiv.org/abs/1604.07379, eq. 1: an L2 loss
on the dropped-out region).
"""

from __future__ import annotations

from typing import Optional

import torch


def reconstruction_mse(outputs: torch.Tensor, targets: torch.Tensor, region: Optional[torch.Tensor] = None,
                       outside_weight: float = 0.0) -> torch.Tensor:
    """Mean squared error between outputs and targets ([B, C, H, W] each).

    region: None scores every pixel. Otherwise [B, 1, H, W] bool, True where the loss
    counts: the mean squared error over the region's pixels (all C channels), plus
    `outside_weight` times the mean squared error over the other pixels.
    """
    errors = (outputs.float() - targets.float()).pow(2).mean(dim=1, keepdim=True)  # [B, 1, H, W]
    if region is None:
        return errors.mean()
    inside = region.to(errors.dtype)  # [B, 1, H, W]
    loss = (errors * inside).sum() / inside.sum().clamp(min=1)
    if outside_weight:
        loss = loss + outside_weight * (errors * (1 - inside)).sum() / (1 - inside).sum().clamp(min=1)
    return loss
