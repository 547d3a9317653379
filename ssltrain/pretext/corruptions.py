"""Input corruptions for the reconstruction methods, built on the device inside a step.

Noises act on pixels in [0, 1] ([B, 3, H, W]); they draw from the global RNG, which the
engine reseeds every step. Masking and salt-and-pepper noise hit a fixed fraction of the
pixels of every image (all three channels of a pixel together), as Vincent et al. define
them ("a fixed number of components chosen at random"), with the pixel as the component.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ssltrain.pretext.masking import random_token_mask


def hit_pixels(images: torch.Tensor, fraction: float) -> torch.Tensor:
    """[B, 1, H, W] bool: round(fraction * H * W) pixels of each image, chosen uniformly."""
    batch, _, height, width = images.shape
    hidden = random_token_mask(batch, height * width, fraction, images.device).masked  # [B, H*W]
    return hidden.view(batch, 1, height, width).bool()


def gaussian_noise(pixels: torch.Tensor, level: float) -> torch.Tensor:
    """Additive isotropic Gaussian noise of standard deviation `level` (not clipped)."""
    return pixels + level * torch.randn_like(pixels)


def masking_noise(pixels: torch.Tensor, level: float) -> torch.Tensor:
    """A fraction `level` of the pixels set to 0 (Vincent et al. 2008,
    https://dl.acm.org/doi/10.1145/1390156.1390294)."""
    return pixels.masked_fill(hit_pixels(pixels, level), 0.0)


def salt_and_pepper_noise(pixels: torch.Tensor, level: float) -> torch.Tensor:
    """A fraction `level` of the pixels set to the minimum (0) or maximum (1) value by a
    fair coin flip (Vincent et al. 2010, JMLR 11:3371)."""
    batch, _, height, width = pixels.shape
    salt = (torch.rand(batch, 1, height, width, device=pixels.device) < 0.5).to(pixels.dtype)  # [B, 1, H, W]
    return torch.where(hit_pixels(pixels, level), salt, pixels)


NOISES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {
    "gaussian": gaussian_noise,
    "masking": masking_noise,
    "salt_pepper": salt_and_pepper_noise,
}

UPSAMPLING = ("bicubic", "bilinear")


def down_up_sample(images: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    """[B, C, H, W] -> the same size, with the detail of an image `factor` times smaller:
    box-filter (area) downsampling, then `mode` upsampling back to H x W.

    Both steps are linear with weights summing to one, so they commute with the per-channel
    normalisation and can run on normalised images.
    """
    low = F.avg_pool2d(images, factor)  # [B, C, H / f, W / f]
    return F.interpolate(low, size=images.shape[-2:], mode=mode, align_corners=False)
