"""Fixed 2D sine-cosine position embeddings for a square grid of tokens.

The form of Vaswani et al. (2017, sec. 3.5) applied to each axis separately, half the
channels per axis, as MAE uses it in its encoder and decoder (He et al., 2022,
https://arxiv.org/abs/2111.06377, sec. 3 "Decoder"; appendix A.1: "sine-cosine" position
embeddings; its models_mae.py freezes both).
"""

from __future__ import annotations

import torch


def sincos_1d(dim: int, positions: torch.Tensor) -> torch.Tensor:
    """positions [N] -> [N, dim]: sin in the first dim / 2 channels, cos in the rest, with
    frequencies 1 / 10000^(k / (dim / 2)) for k = 0 .. dim / 2 - 1."""
    if dim % 2:
        raise ValueError(f"a sine-cosine embedding needs an even width, got {dim}")
    frequencies = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim // 2))  # [dim / 2]
    angles = positions.to(torch.float64)[:, None] * frequencies[None]  # [N, dim / 2]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()


def sincos_2d(dim: int, side: int) -> torch.Tensor:
    """[side * side, dim] for a side x side grid in row-major order (patchify's order):
    the first dim / 2 channels encode the row, the rest the column."""
    if dim % 4:
        raise ValueError(f"a 2D sine-cosine embedding needs a width divisible by 4, got {dim}")
    coords = torch.arange(side)
    rows = coords.repeat_interleave(side)  # [N]: 0 0 .. 0 1 1 ..
    cols = coords.repeat(side)  # [N]: 0 1 .. side-1 0 1 ..
    return torch.cat([sincos_1d(dim // 2, rows), sincos_1d(dim // 2, cols)], dim=1)  # [N, dim]


def sincos_2d_with_class(dim: int, side: int) -> torch.Tensor:
    """[1 + side * side, dim]: zeros for a class token, then `sincos_2d` (MAE's
    get_2d_sincos_pos_embed with cls_token=True, for its encoder and decoder)."""
    return torch.cat([torch.zeros(1, dim), sincos_2d(dim, side)])
