"""Helpers for the pretext-task tests: images whose pixels name their grid cell, and an
encoder that records what it is fed.

A plain module, not a conftest.py: a second conftest module would shadow tests/conftest.py
for the test files that `from conftest import ...`."""

from __future__ import annotations

import torch
from torch import nn


def cell_coded_images(batch: int, grid: int = 3, cell: int = 10, size: int = 32) -> torch.Tensor:
    """[batch, 3, size, size]: every pixel of grid cell (r, c) holds r * grid + c; the
    pixels past the last cell (size - grid * cell of them) hold -1."""
    images = torch.full((batch, 3, size, size), -1.0)
    cells = torch.arange(grid * grid, dtype=torch.float32).reshape(grid, grid)
    images[:, :, : grid * cell, : grid * cell] = cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return images


class RecordingEncoder(nn.Module):
    """A CNN-kind encoder that keeps its last input and returns learnable pooled features."""

    kind = "cnn"

    def __init__(self, out_dim: int = 4):
        super().__init__()
        self.out_dim = out_dim
        self.proj = nn.Linear(3, out_dim)
        self.seen: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.seen.append(images.detach().clone())
        return self.proj(images.mean(dim=(2, 3)))  # [N, out_dim]


def assert_picture_grids(grids: dict[str, torch.Tensor], shape: tuple[int, ...]) -> None:
    """Every image grid a method logs has `shape` ([N, 3, H, W]) and values in [0, 1]."""
    for tag, grid in grids.items():
        assert grid.shape == shape and grid.min() >= 0 and grid.max() <= 1, tag
