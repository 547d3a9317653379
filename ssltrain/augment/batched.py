"""The batched augmentation backend: the ViewConfig recipes of per_sample.py, run on whole
batches on the training device with independent random parameters per sample.

Parameters are drawn from a torch.Generator (on the images' device) with the same
distributions as torchvision's transforms: RandomResizedCrop's ten tries at a
(scale, log-ratio) draw then the centre-crop fallback, RandomHorizontalFlip, ColorJitter
(factors uniform in [max(0, 1 - s), 1 + s], hue in [-h, h], a random order of the four
ops per sample) applied with jitter_p, RandomGrayscale, GaussianBlur (sigma uniform) with
blur_p, RandomSolarize. The ops themselves are in batched_ops.py.

Two halves that run apart too: the geometry (sample_geometry, crop_and_flip) and the colour
(sample_colour, recolour; ColourAugment for whole views). BatchAugment runs both on a
decoded batch; the streamed backend (data/streamed_loader.py) crops each file's image with
the geometry's distributions in its DataLoader workers and runs ColourAugment on the batch.

Unlike the CPU pipeline, which rounds to uint8 after every op, values stay float from the
crop to the normalisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ssltrain.augment.views import ViewConfig
from ssltrain.augment import batched_ops as ops
from ssltrain.augment.per_sample import blur_kernel_size
from ssltrain.augment.pixels import normalize

CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop tries this many draws before its fallback


@dataclass
class Geometry:
    """One view's crop and flip for a batch of B samples."""

    boxes: torch.Tensor  # [B, 4] float: top, left, height, width of the crop, in pixels
    flip: torch.Tensor  # [B] bool


@dataclass
class Colour:
    """One view's colour parameters for a batch of B samples."""

    jitter: torch.Tensor  # [B] bool: colour jitter applied
    factors: torch.Tensor  # [B, 4]: brightness, contrast, saturation factors and hue shift
    order: torch.Tensor  # [B, 4] int64: each row a permutation of the four jitter ops
    gray: torch.Tensor  # [B] bool
    blur: torch.Tensor  # [B] bool
    sigma: torch.Tensor  # [B]: blur sigma
    solarize: torch.Tensor  # [B] bool


def _uniform(low: float, high: float, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=generator.device)


def _bernoulli(p: float, count: int, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(count, generator=generator, device=generator.device) < p


def fallback_crop(height: int, width: int, ratio: Sequence[float]) -> tuple[int, int]:
    """(height, width) of RandomResizedCrop's centre crop when no draw fits."""
    in_ratio = width / height
    if in_ratio < min(ratio):
        return int(round(width / min(ratio))), width
    if in_ratio > max(ratio):
        return height, int(round(height * max(ratio)))
    return height, width


def crop_boxes(count: int, height: int, width: int, scale: Sequence[float], ratio: Sequence[float],
               generator: torch.Generator) -> torch.Tensor:
    """RandomResizedCrop's boxes for `count` samples, [count, 4] (top, left, height, width).

    All ten tries are drawn at once; each sample keeps its first try that fits, or the
    centre crop when none does; the offset is uniform over the positions that fit.
    """
    shape = (count, CROP_ATTEMPTS)
    target = height * width * _uniform(scale[0], scale[1], shape, generator)  # [B, 10]
    aspect = torch.exp(_uniform(math.log(ratio[0]), math.log(ratio[1]), shape, generator))
    crop_w = torch.sqrt(target * aspect).round()
    crop_h = torch.sqrt(target / aspect).round()
    fits = (crop_w > 0) & (crop_w <= width) & (crop_h > 0) & (crop_h <= height)  # [B, 10]
    first = fits.float().argmax(dim=1, keepdim=True)  # [B, 1]: index of the first fit
    found = fits.any(dim=1)  # [B]
    fallback_h, fallback_w = fallback_crop(height, width, ratio)
    crop_h = torch.where(found, crop_h.gather(1, first).squeeze(1), float(fallback_h))  # [B]
    crop_w = torch.where(found, crop_w.gather(1, first).squeeze(1), float(fallback_w))
    offsets = torch.rand((count, 2), generator=generator, device=generator.device)
    top = torch.where(found, (offsets[:, 0] * (height - crop_h + 1)).floor(), float((height - fallback_h) // 2))
    left = torch.where(found, (offsets[:, 1] * (width - crop_w + 1)).floor(), float((width - fallback_w) // 2))
    return torch.stack([top, left, crop_h, crop_w], dim=1)


def jitter_factors(view: ViewConfig, count: int, generator: torch.Generator) -> torch.Tensor:
    """[count, 4]: brightness, contrast, saturation in [max(0, 1 - s), 1 + s] and the hue
    shift in [-h, h] (1 and 0, the identity, for a strength of 0)."""
    columns = [_uniform(max(0.0, 1.0 - strength), 1.0 + strength, (count,), generator)
               for strength in (view.brightness, view.contrast, view.saturation)]
    columns.append(_uniform(-view.hue, view.hue, (count,), generator))
    return torch.stack(columns, dim=1)


def sample_geometry(view: ViewConfig, count: int, height: int, width: int, generator: torch.Generator) -> Geometry:
    """Independent crops and flips for `count` samples of one view recipe on images of
    height x width; without a random crop the box is the whole image."""
    if uses_random_crop(view):
        boxes = crop_boxes(count, height, width, view.crop_scale, view.crop_ratio, generator)
    else:
        boxes = torch.zeros(count, 4, device=generator.device)  # [count, 4]
        boxes[:, 2], boxes[:, 3] = height, width
    return Geometry(boxes=boxes, flip=_bernoulli(view.flip_p, count, generator))


def sample_colour(view: ViewConfig, count: int, generator: torch.Generator) -> Colour:
    """Independent colour parameters for `count` samples of one view recipe."""
    order = torch.rand((count, 4), generator=generator, device=generator.device).argsort(dim=1)  # uniform permutations
    return Colour(
        jitter=_bernoulli(view.jitter_p, count, generator),
        factors=jitter_factors(view, count, generator),
        order=order,
        gray=_bernoulli(view.grayscale_p, count, generator),
        blur=_bernoulli(view.blur_p, count, generator),
        sigma=_uniform(view.blur_sigma[0], view.blur_sigma[1], (count,), generator),
        solarize=_bernoulli(view.solarize_p, count, generator),
    )


def uses_random_crop(view: ViewConfig) -> bool:
    return tuple(view.crop_scale) != (1.0, 1.0) or tuple(view.crop_ratio) != (1.0, 1.0)


def crop_and_flip(images: torch.Tensor, geometry: Geometry, view: ViewConfig, size: int) -> torch.Tensor:
    """uint8 images [B, 3, H, W] -> their cropped, resized and flipped float views
    [B, 3, size, size] in [0, 1]."""
    if uses_random_crop(view) or images.shape[-2:] != (size, size):
        views = ops.resized_crop(images, geometry.boxes, size)
    else:
        views = images.float() / 255
    return ops.hflip(views, geometry.flip) if view.flip_p > 0 else views


def recolour(views: torch.Tensor, colour: Colour, view: ViewConfig, size: int) -> torch.Tensor:
    """Float views [B, 3, size, size] in [0, 1] -> the same after the colour ops, in the CPU
    pipeline's order; ops whose probability is 0 are not computed."""
    if view.jitter_p > 0:
        views = ops.color_jitter(views, colour.factors, colour.order, colour.jitter, with_hue=view.hue > 0)
    if view.grayscale_p > 0:
        views = ops.random_grayscale(views, colour.gray)
    if view.blur_p > 0:
        views = ops.gaussian_blur(views, colour.sigma, blur_kernel_size(size), colour.blur)
    if view.solarize_p > 0:
        views = ops.solarize(views, colour.solarize)
    return views


class ColourAugment:
    """The colour half of the batched backend: per view recipe, its `count` views of a batch
    (uint8 or float in [0, 1], [B, 3, s, s], already cropped and flipped) -> the normalised
    views after the recipe's colour ops, drawn from `generator` for all of them at once."""

    def __init__(self, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float], std: Sequence[float]):
        self.views, self.image_size = list(views), image_size
        self.mean, self.std = tuple(mean), tuple(std)

    def recipe(self, view: ViewConfig, crops: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        """One recipe's crops [count * B, 3, s, s], copy after copy -> its `count` views."""
        pixels = crops.float() / 255 if crops.dtype == torch.uint8 else crops
        colour = sample_colour(view, len(pixels), generator)
        views = normalize(recolour(pixels, colour, view, view.size or self.image_size), self.mean, self.std)
        return list(views.chunk(view.count))

    def __call__(self, crops: Sequence[torch.Tensor], generator: torch.Generator) -> list[torch.Tensor]:
        """All views of a batch, in the config's order (each [B, 3, s, s]) -> normalised views."""
        outputs: list[torch.Tensor] = []
        first = 0
        for view in self.views:
            outputs += self.recipe(view, torch.cat(list(crops[first : first + view.count])), generator)
            first += view.count
        return outputs


class BatchAugment:
    """uint8 images [B, H, W, 3] -> the list of normalised views [B, 3, h, w] the
    augmentation config asks for (the batched twin of transforms.MultiViewTransform):
    per recipe, its crops and flips, then ColourAugment's colour ops."""

    def __init__(self, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float], std: Sequence[float]):
        self.colour = ColourAugment(views, image_size, mean, std)

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
        images = images.permute(0, 3, 1, 2)  # [B, 3, H, W]
        height, width = images.shape[-2:]
        outputs: list[torch.Tensor] = []
        for view in self.colour.views:
            batch = images.repeat(view.count, 1, 1, 1) if view.count > 1 else images  # [count * B, 3, H, W]
            geometry = sample_geometry(view, len(batch), height, width, generator)
            crops = crop_and_flip(batch, geometry, view, view.size or self.colour.image_size)
            outputs += self.colour.recipe(view, crops, generator)
        return outputs
