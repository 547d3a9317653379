"""Convolutional decoders that mirror an encoder's feature map back to image size.

For the reconstruction methods (autoencoders, VAE, inpainting, colorization,
super-resolution): the decoder takes the CNN encoder's map [B, C, h, w] and doubles the
resolution per block until it reaches the image side.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ssltrain.errors import UserError


@torch.no_grad()
def feature_map_shape(encoder: nn.Module, image_size: int, in_channels: int = 3) -> tuple[int, int, int]:
    """(C, h, w) of encoder.forward_features on one image of `image_size` (a dry run)."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    shape = encoder.forward_features(torch.zeros(1, in_channels, image_size, image_size, device=device)).shape
    encoder.train(was_training)
    return tuple(shape[1:])


def upsampling_decoder(in_channels: int, in_size: int, image_size: int, out_channels: int = 3,
                       min_width: int = 32) -> nn.Sequential:
    """[B, in_channels, in_size, in_size] -> [B, out_channels, image_size, image_size].

    Each block: 2x nearest upsampling, 3x3 conv, BatchNorm, ReLU, halving the width (not
    below `min_width`); a last 3x3 conv maps to `out_channels` with no activation, since
    targets are normalised pixels (or other unbounded values).
    """
    if image_size % in_size or (image_size // in_size) & (image_size // in_size - 1):
        doubled = in_size * 2 ** max(0, math.ceil(math.log2(image_size / in_size)))
        raise UserError(f"the decoder doubles the encoder's {in_size} px feature map up to the image size, and "
                        f"{image_size} px is not {in_size} px times a power of two; use dataset.image_size={doubled}")
    layers: list[nn.Module] = []
    width, size = in_channels, in_size
    while size < image_size:
        out = max(min_width, width // 2)
        layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(out), nn.ReLU(inplace=True)]
        width, size = out, size * 2
    layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
               nn.Conv2d(width, out_channels, 3, padding=1)]
    return nn.Sequential(*layers)


def mirror_decoder(encoder: nn.Module, image_size: int, out_channels: int = 3) -> nn.Sequential:
    """A decoder for `encoder`'s feature map at `image_size` (CNN encoders)."""
    channels, height, _ = feature_map_shape(encoder, image_size)
    return upsampling_decoder(channels, height, image_size, out_channels)
