"""Pixels in [0, 1] <-> the dataset-normalised images every method and probe sees:
(pixels - mean) / std per channel. The one place that converts, for the augmentation
backends, the evaluation batches, the methods that work in pixel space and the logged grids.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch

RGB = tuple[float, float, float]  # a per-channel mean or std


@functools.lru_cache(maxsize=64)
def device_constant(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """A small constant tensor on `device`, copied there once (a copy to a GPU waits for it)."""
    return torch.tensor(values, dtype=torch.float32).to(device)


def _channels(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return device_constant(tuple(values), device).view(1, 3, 1, 1)


def normalize(pixels: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[B, 3, H, W] pixels in [0, 1] -> normalised images (float32)."""
    return (pixels - _channels(mean, pixels.device)) / _channels(std, pixels.device)


def denormalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """[B, 3, H, W] normalised images -> pixels in [0, 1] (float32, clamped), for image grids
    and pixel-space targets."""
    return (images * _channels(std, images.device) + _channels(mean, images.device)).clamp(0, 1)
