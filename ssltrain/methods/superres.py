"""Super-resolution as a pretext task: reconstruct the image (MSE on normalised pixels)
from a copy `factor` times smaller, upsampled back to full size so that the encoder sees
images of the size it is evaluated on.

The task as in SRCNN (Dong et al., ECCV 2014, https://arxiv.org/abs/1501.00092: the
network maps a bicubic-upsampled low-resolution image to the high-resolution one), here
used to pretrain the encoder.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ssltrain.pretext.corruptions import UPSAMPLING, down_up_sample
from ssltrain.errors import UserError
from ssltrain.methods.families.reconstruction import RGB, PixelReconstruction
from ssltrain.registry import METHODS


@METHODS.register("superres")
class SuperResolution(PixelReconstruction):
    """factor: downsampling factor (box filter; 4 by default, 2 for an easier task);
    upsample: bicubic or bilinear."""

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), factor: int = 4, upsample: str = "bicubic"):
        if upsample not in UPSAMPLING:
            raise UserError(f"method.upsample={upsample!r} is not valid; choose one of: {', '.join(UPSAMPLING)}")
        if factor < 2 or image_size % factor:
            raise UserError(f"method.factor={factor} must be at least 2 and divide the image size {image_size}")
        super().__init__(encoder, image_size, mean, std)
        self.factor, self.upsample = factor, upsample

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        return down_up_sample(images, self.factor, self.upsample), None
