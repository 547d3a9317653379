"""Contrastive Predictive Coding on images: from the patches above, pick out the patch below.

Oord et al., 2018, https://arxiv.org/abs/1807.03748 (sec. 3.3); Hénaff et al., "CPC v2",
ICML 2020, https://arxiv.org/abs/1905.09272 (sec. 2.2).

The image is cut into overlapping patches on an R x C grid (patches.sliding_patches);
the encoder embeds each patch (z); a causal convolutional context network runs top-down
over the grid, so the context at row i sees rows <= i only; one linear map per offset k
turns the context at (i, j) into a guess of z at (i + k, j), scored by InfoNCE against
every other patch embedding of the batch (losses.cpc_infonce).

Offsets start at `min_offset`: with 8 px patches at stride 4, the patch one row below
shares half its pixels with the patch at row i, so guessing it is copying; 2 rows below
is the first that shares none.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import UserError, check_positive
from ssltrain.losses.cpc_infonce import cpc_infonce
from ssltrain.methods.base import SSLMethod
from ssltrain.pretext.patches import sliding_patches
from ssltrain.registry import METHODS
from ssltrain.pretext.tiles import drop_colors, encode_tiles, encoder_input_size


class CausalContext(nn.Module):
    """PixelCNN-style residual stack over a grid of embeddings whose output at row i
    depends on input rows <= i only: every 2x3 convolution is padded on top, never below,
    so it reads rows i - 1 and i (and columns j - 1 .. j + 1).

    [B, R, C, D] -> [B, R, C, width]; each layer widens the view by one row up and one
    column each side.
    """

    def __init__(self, in_dim: int, width: int, layers: int):
        super().__init__()
        self.stem = nn.Conv2d(in_dim, width, kernel_size=1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.ReLU(), nn.ZeroPad2d((1, 1, 1, 0)), nn.Conv2d(width, width, kernel_size=(2, 3)),
                          nn.ReLU(), nn.Conv2d(width, width, kernel_size=1))
            for _ in range(layers)
        )

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        x = self.stem(embeddings.permute(0, 3, 1, 2))  # [B, width, R, C]
        for block in self.blocks:
            x = x + block(x)
        return x.permute(0, 2, 3, 1)  # [B, R, C, width]


@METHODS.register("cpc")
class CPC(SSLMethod):
    couples_batch = True
    views = (1, 1)
    encodes_views = False  # tiles cut from the view go through the encoder (tile_input_size)

    def __init__(self, encoder: nn.Module, image_size: int, patch: int = 8, stride: int = 4, prediction_steps: int = 3,
                 min_offset: int = 2, context_dim: int = 256, context_layers: int = 3, color_dropping: bool = False,
                 tile_input_size: Optional[int] = None):
        """prediction_steps: how many offsets are predicted, min_offset .. min_offset +
        prediction_steps - 1 rows below; color_dropping: CPC v2's patch augmentation
        (tiles.drop_colors); tile_input_size: see tiles.encoder_input_size."""
        super().__init__(encoder)
        if not 1 <= patch <= image_size:
            raise UserError(f"method.patch={patch} does not fit {image_size} px images; use 1 <= method.patch <= {image_size}")
        check_positive("method.stride", stride)
        check_positive("method.prediction_steps", prediction_steps)
        rows = (image_size - patch) // stride + 1
        self.offsets = list(range(min_offset, min_offset + prediction_steps))
        if min_offset < 1 or self.offsets[-1] >= rows:
            raise UserError(f"method.min_offset={min_offset} with method.prediction_steps={prediction_steps} predicts "
                            f"rows {self.offsets} below, but the grid has {rows} rows ({patch} px patches at stride "
                            f"{stride} on {image_size} px images); use method.min_offset >= 1 and "
                            f"method.min_offset + method.prediction_steps <= {rows}")
        self.patch, self.stride, self.color_dropping = patch, stride, color_dropping
        self.input_size = encoder_input_size(encoder, patch, tile_input_size)
        self.context = CausalContext(encoder.out_dim, context_dim, context_layers)
        self.predictor = nn.Linear(context_dim, prediction_steps * encoder.out_dim, bias=False)  # the W_k, stacked

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> patch embeddings [B, R, C, D]."""
        patches = sliding_patches(images, self.patch, self.stride)  # [B, R, C, 3, p, p]
        rows, cols = patches.shape[1:3]
        tiles = patches.flatten(1, 2)  # [B, R*C, 3, p, p]
        if self.color_dropping:
            tiles = drop_colors(tiles)
        return encode_tiles(self.encoder, tiles, self.input_size).unflatten(1, (rows, cols))  # [B, R, C, D]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        z = self.embed(batch.views[0])  # [B, R, C, D]
        context = self.context(z)  # [B, R, C, width]
        guesses = self.predictor(context).unflatten(-1, (len(self.offsets), z.shape[-1]))  # [B, R, C, K, D]
        return {"loss": cpc_infonce(guesses.permute(3, 0, 1, 2, 4), z, self.offsets)}
