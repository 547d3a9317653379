"""What the tile-based pretext tasks (jigsaw, relative position, CPC) do to tiles before
and while encoding them: low-level shortcut countermeasures and the siamese encoder pass.

Tiles arrive as [B, K, C, t, t] (K tiles per image, e.g. from patches.grid_tiles).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.errors import UserError


def standardize_tiles(tiles: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Zero mean and unit variance per tile (over its pixels and channels), so that tiles
    cannot be matched by brightness or contrast alone (Noroozi & Favaro, 2016, sec. 3.2).
    [B, K, C, t, t] -> same shape."""
    mean = tiles.mean(dim=(2, 3, 4), keepdim=True)  # [B, K, 1, 1, 1]
    std = tiles.std(dim=(2, 3, 4), keepdim=True)  # [B, K, 1, 1, 1]
    return (tiles - mean) / (std + eps)


def drop_colors(tiles: torch.Tensor, noise_std: float = 0.01, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Doersch et al.'s "colour dropping" against chromatic aberration (2015, sec. 3.1):
    each tile keeps one random colour channel; the other two become Gaussian noise of
    `noise_std` (the paper: about 1/100 of a channel's spread; views are normalised to
    unit spread). [B, K, C, t, t] -> same shape."""
    batch, count, channels = tiles.shape[:3]
    kept = torch.randint(0, channels, (batch, count), generator=generator, device=tiles.device)  # [B, K]
    keep = F.one_hot(kept, channels).to(tiles.dtype)[..., None, None]  # [B, K, C, 1, 1]
    noise = torch.randn(tiles.shape, generator=generator, device=tiles.device, dtype=tiles.dtype) * noise_std
    return tiles * keep + noise * (1 - keep)


def check_tile_fits(tile: int, grid: int, image_size: int) -> None:
    """Raise UserError unless `tile` px tiles fit the cells of a grid x grid split of the image."""
    cell = image_size // grid
    if not 1 <= tile <= cell:
        raise UserError(f"method.tile={tile} does not fit the {cell} px cells of a {grid}x{grid} grid on "
                        f"{image_size} px images; use 1 <= method.tile <= {cell}")


def encoder_input_size(encoder: nn.Module, tile: int, requested: Optional[int]) -> int:
    """The side tiles are fed to the encoder at: `requested` when given (method.tile_input_size,
    checked against the encoder); else as cut for CNN encoders (small_cnn and CIFAR-stem
    ResNets pool any size down), and for ViTs the smallest multiple of the patch size that is
    at least the tile (as cut when it is one: an 8 px tile is two 4 px patches a side; a
    10 px tile is upsampled to 12 px)."""
    if requested is not None:
        try:
            encoder.check_input_size(requested)
        except UserError as error:
            raise UserError(f"method.tile_input_size={requested}: {error}") from None
        return requested
    if encoder.kind == "vit":
        return math.ceil(tile / encoder.patch_size) * encoder.patch_size
    return tile


def encode_tiles(encoder: nn.Module, tiles: torch.Tensor, size: int) -> torch.Tensor:
    """The same encoder on every tile, as one batch (the siamese network of jigsaw and
    context prediction), after a bilinear resize to `size` when tiles differ from it.
    [B, K, C, t, t] -> [B, K, D]."""
    batch, count = tiles.shape[:2]
    flat = tiles.flatten(0, 1)  # [B * K, C, t, t]
    if flat.shape[-1] != size:
        flat = F.interpolate(flat, size=(size, size), mode="bilinear", align_corners=False)
    return encoder(flat).reshape(batch, count, -1)  # [B, K, D]
