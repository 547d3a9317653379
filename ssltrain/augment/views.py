"""What an augmentation preset is: a list of view recipes, each applied to `count` views,
and the backend that makes them (per_sample.py or batched.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from ssltrain.errors import UserError, check_choice, check_positive


@dataclass
class ViewConfig:
    """One augmentation recipe, applied to `count` views. Defaults are the identity."""

    count: int = 1
    size: Optional[int] = None  # output side in pixels; None: the dataset's image size
    crop_scale: Tuple[float, float] = (1.0, 1.0)  # RandomResizedCrop area fraction
    crop_ratio: Tuple[float, float] = (1.0, 1.0)  # RandomResizedCrop aspect ratio
    flip_p: float = 0.0
    jitter_p: float = 0.0  # probability of applying the colour jitter below
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: Tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0

    def __post_init__(self) -> None:
        check_positive("augmentation.views[].count", self.count)
        for key in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise UserError(f"augmentation view {key}={getattr(self, key)} must be in [0, 1]")
        if not 0.0 < self.crop_scale[0] <= self.crop_scale[1] <= 1.0:
            raise UserError(f"augmentation view crop_scale={list(self.crop_scale)} must satisfy 0 < lo <= hi <= 1")


# Where views are made. `batched`: whole batches on the training device (CPU or GPU), for
# images decoded in memory (batched.py); `streamed`: for images streamed from disk, each
# file decoded and cropped per sample in DataLoader workers (on CUDA: decoded and cropped
# on the GPU), the colour ops batched on the device (data/streamed_loader.py);
# `per_sample`: torchvision per image in DataLoader workers (per_sample.py), for any
# dataset; `auto`: batched for images in memory, per_sample for the others.
BACKENDS = ("auto", "batched", "per_sample", "streamed")
BACKEND_ALIASES = {"gpu": "batched", "cpu": "per_sample"}  # the names before 2026-11-30


@dataclass
class AugmentationConfig:
    """Types and checks only: each preset's views live in configs/augmentation/, the backend
    in configs/config.yaml."""

    name: str
    views: list[ViewConfig]
    backend: str

    def __post_init__(self) -> None:
        self.backend = BACKEND_ALIASES.get(self.backend, self.backend)
        check_choice("augmentation.backend", self.backend, BACKENDS)

    @property
    def num_views(self) -> int:
        return sum(view.count for view in self.views)

    def view_sizes(self, image_size: int) -> list[int]:
        """The side of every view, in order (a view without a size is the image's)."""
        return [view.size or image_size for view in self.views for _ in range(view.count)]
