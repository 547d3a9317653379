"""What an augmentation preset is: a list of view recipes, each applied to `count` views,
and the backend that makes them (per_sample.py or batched.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class AugmentationConfig:
    name: str = "none"
    views: list[ViewConfig] = field(default_factory=lambda: [ViewConfig()])
    # where the views are made: cpu (torchvision per sample in DataLoader workers), gpu
    # (whole batches on the training device; datasets decoded in memory), or auto: gpu on
    # CUDA when the dataset is decoded in memory, else cpu
    backend: str = "auto"

    def __post_init__(self) -> None:
        check_choice("augmentation.backend", self.backend, ("auto", "cpu", "gpu"))

    @property
    def num_views(self) -> int:
        return sum(view.count for view in self.views)
