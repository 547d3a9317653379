"""Context prediction: where does a tile sit relative to the centre tile (8 choices)?

Doersch et al., "Unsupervised Visual Representation Learning by Context Prediction",
ICCV 2015, https://arxiv.org/abs/1505.05192.

Per image, the centre tile of a jittered 3x3 grid (patches.grid_tiles: a gap between
tiles and a random offset in each cell, against matching edges or lines that continue
across tiles) and one random neighbour go through the same encoder; their concatenated
features go to an MLP that names the neighbour's position. Optional countermeasures
against low-level shortcuts: per-tile standardisation and the paper's colour dropping
(tiles.drop_colors, against chromatic aberration).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.heads import mlp
from ssltrain.methods.base import SSLMethod
from ssltrain.patches import grid_tiles
from ssltrain.registry import METHODS
from ssltrain.tiles import drop_colors, encode_tiles, encoder_input_size, standardize_tiles

GRID = 3
CENTRE = 4  # row-major index of the middle cell of the 3x3 grid
# label -> (row, column) offset of the neighbour from the centre, row-major around it
OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))
NEIGHBOURS = tuple((1 + dy) * GRID + (1 + dx) for dy, dx in OFFSETS)  # label -> cell index


def context_pairs(images: torch.Tensor, tile: int, generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the centre tile and a random neighbour of a jittered 3x3 grid.

    images [B, C, H, W] -> (pairs [B, 2, C, tile, tile]: centre then neighbour, labels [B]);
    the neighbour sits at OFFSETS[labels[b]] (rows, columns) from the centre.
    """
    tiles = grid_tiles(images, GRID, tile, generator)  # [B, 9, C, t, t]
    labels = torch.randint(0, len(OFFSETS), (images.shape[0],), generator=generator, device=images.device)  # [B]
    cells = torch.tensor(NEIGHBOURS, device=images.device)[labels]  # [B]
    pair = torch.stack([torch.full_like(cells, CENTRE), cells], dim=1)  # [B, 2]
    pairs = tiles.gather(1, pair[:, :, None, None, None].expand(-1, -1, *tiles.shape[2:]))  # [B, 2, C, t, t]
    return pairs, labels


@METHODS.register("relative_position")
class RelativePosition(SSLMethod):
    views = (1, 1)

    def __init__(self, encoder: nn.Module, image_size: int, tile: int = 8, standardize: bool = True,
                 color_dropping: bool = False, tile_input_size: Optional[int] = None,
                 head_hidden_dims: tuple[int, ...] = (1024,)):
        """tile: side of a tile in pixels, at most the cell side (image_size // 3);
        color_dropping: keep one random channel per tile, noise in the others;
        tile_input_size: see tiles.encoder_input_size (None: as cut for CNNs)."""
        super().__init__(encoder)
        if tile > image_size // GRID:
            raise ValueError(f"method.tile={tile} exceeds the {image_size // GRID} px cells of a 3x3 grid")
        self.tile, self.standardize, self.color_dropping = tile, standardize, color_dropping
        self.input_size = encoder_input_size(encoder, image_size, tile, tile_input_size)
        self.head = mlp([2 * encoder.out_dim, *head_hidden_dims, len(OFFSETS)])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        pairs, labels = context_pairs(batch.views[0], self.tile)  # [B, 2, 3, t, t], [B]
        if self.standardize:
            pairs = standardize_tiles(pairs)
        if self.color_dropping:
            pairs = drop_colors(pairs)
        features = encode_tiles(self.encoder, pairs, self.input_size)  # [B, 2, D]
        logits = self.head(features.flatten(1))  # [B, 8]
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "position_accuracy": accuracy}
