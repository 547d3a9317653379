"""Patches and tile grids cut from image batches (MAE, jigsaw, relative position, CPC).

All functions are batched tensor code, so they run on the training device; randomness
comes from the given generator (on the images' device) or the global RNG.
"""

from __future__ import annotations

import torch


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, N, patch * patch * C], patches in row-major order (MAE's layout)."""
    batch, channels, height, width = images.shape
    rows, cols = height // patch, width // patch
    x = images.reshape(batch, channels, rows, patch, cols, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(batch, rows * cols, patch * patch * channels)


def unpatchify(patches: torch.Tensor, patch: int, channels: int = 3) -> torch.Tensor:
    """Inverse of `patchify` for square images: [B, N, patch * patch * C] -> [B, C, H, W]."""
    batch, count, _ = patches.shape
    side = int(round(count**0.5))
    x = patches.reshape(batch, side, side, patch, patch, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(batch, channels, side * patch, side * patch)


def sliding_patches(images: torch.Tensor, size: int, stride: int) -> torch.Tensor:
    """Overlapping patches on a regular grid: [B, C, H, W] -> [B, rows, cols, C, size, size]."""
    x = images.unfold(2, size, stride).unfold(3, size, stride)  # [B, C, rows, cols, size, size]
    return x.permute(0, 2, 3, 1, 4, 5)


def grid_tiles(images: torch.Tensor, grid: int, tile: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Split each image into grid x grid cells and cut a `tile`-sided square from each cell
    at a random offset inside it (jitter). Cells are larger than tiles, so neighbouring
    tiles never touch: the gap stops a network from matching edges instead of content.

    [B, C, H, W] -> [B, grid * grid, C, tile, tile], cells in row-major order.
    """
    batch, channels, height, width = images.shape
    cell = min(height, width) // grid
    if tile > cell:
        raise ValueError(f"tiles of {tile} px do not fit {grid}x{grid} cells of {cell} px")
    count = grid * grid
    device = images.device
    offset_y = torch.randint(0, cell - tile + 1, (batch, count), generator=generator, device=device)
    offset_x = torch.randint(0, cell - tile + 1, (batch, count), generator=generator, device=device)
    cells = torch.arange(grid, device=device) * cell
    origin_y = cells.repeat_interleave(grid) + offset_y  # [B, K]
    origin_x = cells.repeat(grid) + offset_x  # [B, K]
    steps = torch.arange(tile, device=device)
    ys = (origin_y[..., None] + steps)[:, :, :, None]  # [B, K, tile, 1]
    xs = (origin_x[..., None] + steps)[:, :, None, :]  # [B, K, 1, tile]
    samples = torch.arange(batch, device=device)[:, None, None, None]
    tiles = images.permute(0, 2, 3, 1)[samples, ys, xs]  # [B, K, tile, tile, C]
    return tiles.permute(0, 1, 4, 2, 3)
