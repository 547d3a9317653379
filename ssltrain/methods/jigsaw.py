"""Jigsaw puzzles: which of N permutations shuffled an image's 3x3 tiles?

Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
Puzzles", ECCV 2016, https://arxiv.org/abs/1603.09246.

Tiles are cut with jitter inside their cells (patches.grid_tiles), standardised one by
one, shuffled by a permutation from a set spread apart in Hamming distance
(permutations.max_hamming_permutations), each encoded by the same encoder (the siamese
"context-free network"), and their features, concatenated in the shuffled order, go to
an MLP that names the permutation.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.parts.heads import mlp
from ssltrain.methods.base import SSLMethod
from ssltrain.pretext.patches import grid_tiles
from ssltrain.pretext.permutations import max_hamming_permutations
from ssltrain.registry import METHODS
from ssltrain.pretext.tiles import check_tile_fits, encode_tiles, encoder_input_size, standardize_tiles


def shuffled_tiles(images: torch.Tensor, permutations: torch.Tensor, grid: int, tile: int,
                   generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One puzzle per image: jittered grid tiles placed in the order of a random permutation.

    images [B, C, H, W], permutations [N, grid * grid] -> (tiles [B, grid * grid, C, tile,
    tile], labels [B]); tiles[b, j] is the tile of cell permutations[labels[b], j].
    """
    tiles = grid_tiles(images, grid, tile, generator)  # [B, K, C, t, t], cells row-major
    labels = torch.randint(0, len(permutations), (images.shape[0],), generator=generator, device=images.device)  # [B]
    order = permutations[labels]  # [B, K]
    shuffled = tiles.gather(1, order[:, :, None, None, None].expand_as(tiles))  # [B, K, C, t, t]
    return shuffled, labels


@METHODS.register("jigsaw")
class Jigsaw(SSLMethod):
    views = (1, 1)
    encodes_views = False  # tiles cut from the view go through the encoder (tile_input_size)

    def __init__(self, encoder: nn.Module, image_size: int, grid: int = 3, tile: int = 8, num_permutations: int = 64,
                 permutation_candidates: int = 20_000, permutation_seed: int = 0, standardize: bool = True,
                 tile_input_size: Optional[int] = None, head_hidden_dims: tuple[int, ...] = (1024,)):
        """tile: side of a tile in pixels, at most the cell side (image_size // grid);
        tile_input_size: the side tiles are fed to the encoder at (None: as cut for CNNs,
        the next multiple of the patch size for ViTs; see tiles.encoder_input_size)."""
        super().__init__(encoder)
        self.grid, self.tile, self.standardize = grid, tile, standardize
        if grid < 2:
            raise UserError(f"method.grid={grid} makes no puzzle; use method.grid >= 2")
        check_tile_fits(tile, grid, image_size)
        orders = min(math.factorial(grid * grid), permutation_candidates)
        if num_permutations > orders:
            raise UserError(f"method.num_permutations={num_permutations} exceeds the {orders} orders to choose from "
                            f"(of {grid}x{grid} tiles, method.permutation_candidates={permutation_candidates}); "
                            f"use method.num_permutations <= {orders}")
        self.input_size = encoder_input_size(encoder, tile, tile_input_size)
        permutations = max_hamming_permutations(num_permutations, grid * grid, permutation_candidates, permutation_seed)
        self.register_buffer("permutations", permutations)  # [N, K], saved with the weights it trained
        self.head = mlp([grid * grid * encoder.out_dim, *head_hidden_dims, num_permutations])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        tiles, labels = shuffled_tiles(batch.views[0], self.permutations, self.grid, self.tile)  # [B, K, 3, t, t], [B]
        if self.standardize:
            tiles = standardize_tiles(tiles)
        features = encode_tiles(self.encoder, tiles, self.input_size)  # [B, K, D]
        logits = self.head(features.flatten(1))  # [B, N]
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "jigsaw_accuracy": accuracy}

