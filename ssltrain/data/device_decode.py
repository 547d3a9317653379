"""The streamed backend on CUDA: a batch of encoded files decoded together on the GPU
(nvJPEG through torchvision's decode_jpeg on a list) and cut into their views there.

Each image keeps its own crops and flips (EncodedViews.geometry from its sample seed, the
draws the CPU path makes); the crops of the whole batch are resized in one batched op on
the images padded to a common size (batched_ops.resized_crop reads only inside each box).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from ssltrain.augment import batched_ops as ops
from ssltrain.data.encoded_views import EncodedViews, decode_rgb, is_jpeg


def _decode_jpegs(encoded: list[torch.Tensor], device: torch.device) -> list[Optional[torch.Tensor]]:
    """All at once; when one file fails the batch, one at a time so only that one is lost."""
    try:
        return list(decode_jpeg(encoded, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:
        decoded: list[Optional[torch.Tensor]] = []
        for data in encoded:
            try:
                decoded.append(decode_jpeg(data, mode=ImageReadMode.RGB, device=device))
            except RuntimeError:
                decoded.append(None)
        return decoded


def decode_on(encoded: list[torch.Tensor], device: torch.device) -> list[Optional[torch.Tensor]]:
    """Encoded files -> uint8 [3, H, W] on `device` (None where unreadable): JPEGs on the
    GPU, other formats on the CPU (decode_rgb) then copied."""
    jpegs = [i for i, data in enumerate(encoded) if is_jpeg(data)]
    decoded: list[Optional[torch.Tensor]] = [None] * len(encoded)
    for i, image in zip(jpegs, _decode_jpegs([encoded[i] for i in jpegs], device) if jpegs else []):
        decoded[i] = image
    for i in sorted(set(range(len(encoded))) - set(jpegs)):
        image = decode_rgb(encoded[i])
        decoded[i] = None if image is None else image.to(device)
    return decoded


def crop_on_device(images: list[torch.Tensor], seeds: list[int], crops: EncodedViews) -> list[torch.Tensor]:
    """Decoded images (uint8 [3, H_i, W_i] on one device) -> their views, float
    [B, 3, s, s] in [0, 1] each, in the config's order."""
    height, width = max(image.shape[1] for image in images), max(image.shape[2] for image in images)
    pixels = torch.stack([F.pad(image, (0, width - image.shape[2], 0, height - image.shape[1]))
                          for image in images]).float() / 255  # [B, 3, H, W]
    geometries = [crops.geometry(image.shape[1], image.shape[2], seed) for image, seed in zip(images, seeds)]
    views = []
    for recipe, view in enumerate(crops.views):
        for copy in range(view.count):
            boxes = torch.stack([geometry[recipe].boxes[copy] for geometry in geometries])  # [B, 4]
            flips = torch.stack([geometry[recipe].flip[copy] for geometry in geometries])  # [B]
            resized = ops.resized_crop(pixels, boxes.to(pixels.device), view.size or crops.image_size)
            views.append(ops.hflip(resized, flips.to(pixels.device)))
    return views


def decode_and_crop(raw: dict, paths: list[str], seeds: list[int], crops: EncodedViews, device: torch.device) -> dict:
    """collate_encoded's batch (its files' `paths` and sample `seeds`) -> collate_views'
    (float views on `device`); files that do not decode join "skipped"."""
    decoded = decode_on(raw["encoded"], device)
    kept = [i for i, image in enumerate(decoded) if image is not None]
    keep = torch.tensor(kept, dtype=torch.long)
    return {"views": crop_on_device([decoded[i] for i in kept], [seeds[i] for i in kept], crops) if kept else [],
            "labels": raw["labels"][keep], "indices": raw["indices"][keep],
            "skipped": raw["skipped"] + [path for path, image in zip(paths, decoded) if image is None]}
