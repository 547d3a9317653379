"""A PatchGAN discriminator: a real/fake score for each overlapping patch of an image.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
https://arxiv.org/abs/1611.07004 (sec. 3.2.2, appendix 6.1.2), as CycleGAN uses it (Zhu et
al., ICCV 2017, sec. 7.2): C64-C128-C256-C512 of 4x4 convolutions (stride 2, then stride 1
for the last) with InstanceNorm (none on the first) and LeakyReLU 0.2, then a 4x4
convolution to one channel: a 70 x 70 receptive field on 256 px images.
"""

from __future__ import annotations

from typing import Sequence

from torch import nn


def patch_discriminator(widths: Sequence[int] = (64, 128, 256), strided: int = 2) -> nn.Sequential:
    """[B, 3, H, W] -> scores [B, 1, h, w]. `widths`: the C-k layers' channels, the first
    `strided` of them at stride 2, the rest at stride 1. The paper's (64, 128, 256, 512) with
    3 strided layers sees 70 x 70 px; our default (64, 128, 256) with 2 strided sees 34 x 34,
    about a 32 px image, on a 6 x 6 map of scores."""
    layers: list[nn.Module] = []
    channels = 3
    for index, width in enumerate(widths):
        layers.append(nn.Conv2d(channels, width, 4, 2 if index < strided else 1, 1))
        if index > 0:
            layers.append(nn.InstanceNorm2d(width))
        layers.append(nn.LeakyReLU(0.2, inplace=True))
        channels = width
    layers.append(nn.Conv2d(channels, 1, 4, 1, 1))
    return nn.Sequential(*layers)

