"""Masks for masked-image methods: random token subsets (MAE) and pixel blocks (inpainting)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class TokenMask:
    keep: torch.Tensor  # [B, K] indices of the visible tokens, per sample
    masked: torch.Tensor  # [B, N] 1.0 where the token is hidden, 0.0 where visible
    restore: torch.Tensor  # [B, N] argsort that puts [visible, hidden] back in token order


def random_token_mask(batch: int, tokens: int, ratio: float, device: torch.device,
                      generator: torch.Generator | None = None) -> TokenMask:
    """Hide round(ratio * tokens) tokens of each sample, uniformly at random (MAE, He et al.
    2022, sec. 3: a per-sample shuffle by sorting uniform noise)."""
    visible = tokens - int(round(ratio * tokens))
    noise = torch.rand(batch, tokens, device=device, generator=generator)
    shuffle = noise.argsort(dim=1)  # ascending: the first `visible` are kept
    restore = shuffle.argsort(dim=1)
    masked = torch.ones(batch, tokens, device=device)
    masked[:, :visible] = 0
    masked = masked.gather(1, restore)
    return TokenMask(keep=shuffle[:, :visible], masked=masked, restore=restore)


def block_mask(batch: int, height: int, width: int, block: int, count: int = 1, center: bool = False,
               device: torch.device | str = "cpu", generator: torch.Generator | None = None) -> torch.Tensor:
    """[B, 1, H, W] bool, True inside the hidden region: one centred block (the Context
    Encoder's central region, Pathak et al. 2016) or `count` blocks at random positions."""
    if center:
        top = torch.full((batch, 1), (height - block) // 2, device=device)
        left = torch.full((batch, 1), (width - block) // 2, device=device)
    else:
        top = torch.randint(0, height - block + 1, (batch, count), device=device, generator=generator)
        left = torch.randint(0, width - block + 1, (batch, count), device=device, generator=generator)
    rows = torch.arange(height, device=device).view(1, 1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, 1, width)
    inside = ((rows >= top[..., None, None]) & (rows < top[..., None, None] + block)
              & (cols >= left[..., None, None]) & (cols < left[..., None, None] + block))  # [B, count, H, W]
    return inside.any(dim=1, keepdim=True)
