"""Autoencoders: reconstruct the clean image (MSE on normalised pixels) from itself, or,
denoising, from a corrupted copy.

Denoising autoencoder: Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing
Robust Features with Denoising Autoencoders", ICML 2008,
https://dl.acm.org/doi/10.1145/1390156.1390294. The denoising autoencoder is the
autoencoder with a corruption: one class each, two registered names.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.pretext.corruptions import NOISES
from ssltrain.errors import UserError
from ssltrain.methods.families.reconstruction import RGB, PixelReconstruction
from ssltrain.registry import METHODS


@METHODS.register("autoencoder")
class Autoencoder(PixelReconstruction):
    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0)):
        super().__init__(encoder, image_size, mean, std)

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return images, None


@METHODS.register("denoising_autoencoder")
class DenoisingAutoencoder(Autoencoder):
    """noise: gaussian (level = standard deviation in [0, 1] pixel units), masking (level =
    fraction of pixels set to black) or salt_pepper (level = fraction set to black or white).
    Default: a quarter of the pixels masked (the paper destroys 10-40% of the input)."""

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), noise: str = "masking", level: float = 0.25):
        if noise not in NOISES:
            raise UserError(f"method.noise={noise!r} is not valid; choose one of: {', '.join(NOISES)}")
        if noise != "gaussian" and not 0.0 <= level <= 1.0:
            raise UserError(f"method.level={level} is a fraction of pixels for {noise} noise: it must be in [0, 1]")
        super().__init__(encoder, image_size, mean, std)
        self.noise, self.level = NOISES[noise], level

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return self.from_pixels(self.noise(self.to_pixels(images), self.level)), None
