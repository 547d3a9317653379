"""Context prediction: where does a tile sit relative to the centre tile (8 choices)?

Doersch et al., "Unsupervised Visual Representation Learning by Context Prediction",
ICCV 2015, https://arxiv.org/abs/1505.05192.

Per image, the nine tiles of a jittered 3x3 grid (patches.grid_tiles: a gap between
tiles and a random offset in each cell, against matching edges or lines that continue
across tiles) go through the same encoder; for each of the eight neighbours, the centre's
and the neighbour's concatenated features go to an MLP that names the neighbour's
position. Optional countermeasures against low-level shortcuts: per-tile
standardisation and the paper's colour dropping (tiles.drop_colors, against chromatic
aberration).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.methods.base import SSLMethod
from ssltrain.pretext.patches import grid_tiles
from ssltrain.registry import METHODS
from ssltrain.pretext.tiles import check_tile_fits, drop_colors, encode_tiles, encoder_input_size, standardize_tiles

GRID = 3
CENTRE = 4  # row-major index of the middle cell of the 3x3 grid
# label -> (row, column) offset of the neighbour from the centre, in row-major order: the
# label of a neighbour is its cell index with the centre left out
OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def neighbour_pairs(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (centre, neighbour) pair of a 3x3 grid, each labelled with the neighbour's position.

    features [B, 9, D] (cells in row-major order) -> (pairs [B, 8, 2D]: the centre's features
    then the neighbour's, labels [B, 8]); the neighbour of pair k sits at OFFSETS[labels[:, k]]
    from the centre. Each pair is classified on its own, so using all eight per image gives
    eight examples for the encoder cost of nine tiles (the paper draws one pair per image).
    """
    batch = features.shape[0]
    centre = features[:, CENTRE : CENTRE + 1].expand(-1, len(OFFSETS), -1)  # [B, 8, D]
    neighbours = torch.cat([features[:, :CENTRE], features[:, CENTRE + 1 :]], dim=1)  # [B, 8, D]
    labels = torch.arange(len(OFFSETS), device=features.device).expand(batch, -1)  # [B, 8]
    return torch.cat([centre, neighbours], dim=2), labels


@METHODS.register("relative_position")
class RelativePosition(SSLMethod):
    views = (1, 1)
    encodes_views = False  # tiles cut from the view go through the encoder (tile_input_size)

    def __init__(self, encoder: nn.Module, image_size: int, tile: int = 8, standardize: bool = True,
                 color_dropping: bool = False, tile_input_size: Optional[int] = None,
                 head_hidden_dims: tuple[int, ...] = (1024,)):
        """tile: side of a tile in pixels, at most the cell side (image_size // 3);
        color_dropping: keep one random channel per tile, noise in the others;
        tile_input_size: see tiles.encoder_input_size (None: as cut for CNNs)."""
        super().__init__(encoder)
        check_tile_fits(tile, GRID, image_size)
        self.tile, self.standardize, self.color_dropping = tile, standardize, color_dropping
        self.input_size = encoder_input_size(encoder, tile, tile_input_size)
        self.head = mlp([2 * encoder.out_dim, *head_hidden_dims, len(OFFSETS)])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        tiles = grid_tiles(batch.views[0], GRID, self.tile)  # [B, 9, 3, t, t]
        if self.standardize:
            tiles = standardize_tiles(tiles)
        if self.color_dropping:
            tiles = drop_colors(tiles)
        pairs, labels = neighbour_pairs(encode_tiles(self.encoder, tiles, self.input_size))  # [B, 8, 2D], [B, 8]
        logits = self.head(pairs.flatten(0, 1))  # [B * 8, 8]
        labels = labels.flatten()  # [B * 8]
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "position_accuracy": accuracy}
