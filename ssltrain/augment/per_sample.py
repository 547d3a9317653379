"""Per-sample augmentation (augmentation.backend=per_sample): one torchvision.transforms.v2
pipeline per view, built from ViewConfig, run on each image in DataLoader workers.

Op order follows SimCLR / BYOL: crop, flip, colour jitter, grayscale, blur, solarize,
then scale to [0, 1] floats and normalise with the dataset's mean and std.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torchvision.transforms import v2

from ssltrain.augment.views import ViewConfig


def blur_kernel_size(size: int) -> int:
    """About 10% of the image side, odd (SimCLR, appendix A)."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def view_transform(view: ViewConfig, image_size: int, mean: Sequence[float], std: Sequence[float]) -> v2.Compose:
    size = view.size or image_size
    ops: list[v2.Transform] = [v2.ToImage()]
    if tuple(view.crop_scale) != (1.0, 1.0) or tuple(view.crop_ratio) != (1.0, 1.0):
        ops.append(v2.RandomResizedCrop(size, scale=tuple(view.crop_scale), ratio=tuple(view.crop_ratio), antialias=True))
    elif size != image_size:
        ops.append(v2.Resize((size, size), antialias=True))
    if view.flip_p > 0:
        ops.append(v2.RandomHorizontalFlip(view.flip_p))
    if view.jitter_p > 0:
        jitter = v2.ColorJitter(view.brightness, view.contrast, view.saturation, view.hue)
        ops.append(v2.RandomApply([jitter], p=view.jitter_p))
    if view.grayscale_p > 0:
        ops.append(v2.RandomGrayscale(view.grayscale_p))
    if view.blur_p > 0:
        blur = v2.GaussianBlur(blur_kernel_size(size), sigma=tuple(view.blur_sigma))
        ops.append(v2.RandomApply([blur], p=view.blur_p))
    if view.solarize_p > 0:
        ops.append(v2.RandomSolarize(threshold=128, p=view.solarize_p))  # uint8 input
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)


class MultiViewTransform:
    """Turns one image into the list of views the augmentation config asks for."""

    def __init__(self, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float], std: Sequence[float]):
        self.pipelines = [view_transform(view, image_size, mean, std) for view in views for _ in range(view.count)]

    def __call__(self, image) -> list[torch.Tensor]:
        return [pipeline(image) for pipeline in self.pipelines]


def eval_transform(image_size: int, mean: Sequence[float], std: Sequence[float], resize: bool) -> v2.Compose:
    """Deterministic evaluation input: resize + centre crop for full-size images (ratio
    224/256, as in ImageNet evaluation), nothing but normalisation for decoded ones."""
    ops: list[v2.Transform] = [v2.ToImage()]
    if resize:
        ops += [v2.Resize(round(image_size * 256 / 224), antialias=True), v2.CenterCrop(image_size)]
    ops += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return v2.Compose(ops)
