"""One encoded image file -> its cropped, resized, flipped uint8 views: the per-sample half of
the streamed backend (data/streamed_loader.py), for any reader of image bytes (a folder's
files here; a shard reader's tar members just as well).

The crops and flips follow the batched backend's distributions (augment/batched.py:
sample_geometry), drawn from a generator seeded with the sample's own seed, so a view
depends on the file and that seed only: not on the worker, the batch or the device.
"""

from __future__ import annotations

import io
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, decode_jpeg
from torchvision.transforms.v2 import functional as TF

from ssltrain.augment.batched import Geometry, sample_geometry
from ssltrain.augment.views import ViewConfig
from ssltrain.data.images import ImageSet

JPEG_MAGIC = (0xFF, 0xD8, 0xFF)


def read_encoded(images: ImageSet, index: int) -> Optional[torch.Tensor]:
    """The encoded bytes of streamed image `index` (a file, or a tar shard's member) as a 1-D
    uint8 tensor, or None if they cannot be read."""
    try:
        return torch.frombuffer(bytearray(images.encoded(index)), dtype=torch.uint8)
    except (OSError, ValueError):  # ValueError: an empty file
        return None


def is_jpeg(data: torch.Tensor) -> bool:
    return len(data) >= 3 and tuple(data[:3].tolist()) == JPEG_MAGIC


def _decode_with_pil(data: torch.Tensor) -> Optional[torch.Tensor]:
    try:
        with Image.open(io.BytesIO(data.numpy().tobytes())) as image:
            pixels = np.asarray(image.convert("RGB"))  # [H, W, 3]
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def decode_rgb(data: torch.Tensor) -> Optional[torch.Tensor]:
    """Encoded bytes -> uint8 [3, H, W] on the CPU, or None if unreadable: JPEG through
    decode_jpeg, other formats through decode_image (PNG, GIF, WebP), and what torchvision
    cannot read (BMP, PPM, TIFF; or a JPEG libjpeg refuses) through PIL."""
    try:
        image = decode_jpeg(data, mode=ImageReadMode.RGB) if is_jpeg(data) else decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError:
        return _decode_with_pil(data)
    return image if image.dtype == torch.uint8 else TF.to_dtype(image, torch.uint8, scale=True)  # 16-bit PNG


class EncodedViews:
    """(encoded image, seed) -> its uint8 views [3, s, s], in the config's order, or None
    when the bytes do not decode. Picklable: DataLoader workers each hold a copy."""

    def __init__(self, views: Sequence[ViewConfig], image_size: int):
        self.views, self.image_size = list(views), image_size

    def geometry(self, height: int, width: int, seed: int) -> list[Geometry]:
        """Each recipe's crops and flips ([count] of each) for an image of height x width."""
        generator = torch.Generator().manual_seed(seed)
        return [sample_geometry(view, view.count, height, width, generator) for view in self.views]

    def crop(self, image: torch.Tensor, seed: int) -> list[torch.Tensor]:
        """uint8 [3, H, W] -> its views: each crop resized (bilinear, antialiased) and flipped."""
        views = []
        for view, geometry in zip(self.views, self.geometry(image.shape[-2], image.shape[-1], seed)):
            size = [view.size or self.image_size] * 2
            for box, flip in zip(geometry.boxes.int().tolist(), geometry.flip.tolist()):
                crop = TF.resized_crop(image, *box, size, antialias=True)  # [3, s, s]
                views.append(crop.flip(-1) if flip else crop)
        return views

    def __call__(self, data: torch.Tensor, seed: int) -> Optional[list[torch.Tensor]]:
        image = decode_rgb(data)
        return None if image is None else self.crop(image, seed)
