"""What the reconstruction methods share: a CNN encoder, a mirror decoder from its feature
map, pixel <-> normalised conversions, and (for pixel targets) the step and the pictures.

Each method builds its input on the device from the single view (batch.views[0]); the
encoder that evaluation probes is `self.encoder`, trained through the decoder.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.augment.pixels import RGB, denormalize, normalize
from ssltrain.parts.decoders import mirror_decoder
from ssltrain.losses.reconstruction import reconstruction_mse
from ssltrain.methods.base import SSLMethod

PICTURES = 16  # images per logged grid


class Reconstruction(SSLMethod):
    """Encoder -> forward_features -> decoder (ssltrain.parts.decoders.mirror_decoder).

    mean / std: the dataset normalisation the views arrive with (context arguments; the
    defaults mean plain [0, 1] pixels).
    """

    views = (1, 1)
    encoder_kinds = ("cnn",)

    def __init__(self, encoder: nn.Module, image_size: int, mean: RGB, std: RGB, out_channels: int = 3):
        super().__init__(encoder)
        self.mean, self.std = tuple(mean), tuple(std)
        self.decoder = mirror_decoder(encoder, image_size, out_channels)

    def reconstruct(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder.forward_features(inputs))  # [B, out_channels, H, W]

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised [B, 3, H, W] -> pixels in [0, 1]."""
        return denormalize(images, self.mean, self.std)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels [B, 3, H, W] -> normalised with the dataset mean and std."""
        return normalize(pixels, self.mean, self.std)


class PixelReconstruction(Reconstruction):
    """Reconstruct the clean normalised view from an input built by `corrupt`."""

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """[B, 3, H, W] clean view -> (encoder input [B, 3, H, W], region [B, 1, H, W] bool
        where the loss counts, or None for the whole image)."""
        raise NotImplementedError

    def losses(self, images: torch.Tensor, outputs: torch.Tensor, region: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"loss": reconstruction_mse(outputs, images, region)}

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0]  # [B, 3, H, W]
        inputs, region = self.corrupt(images)
        return self.losses(images, self.reconstruct(inputs), region)

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0][:PICTURES]
        inputs, region = self.corrupt(images)
        grids = {"inputs": inputs, "outputs": self.reconstruct(inputs), "targets": images}
        grids = {tag: self.to_pixels(grid.float()) for tag, grid in grids.items()}
        if region is not None:
            grids["masks"] = region.float().expand_as(images)
        return grids
