"""The data pipeline SSL libraries use (solo-learn, lightly): a torch DataLoader whose worker
processes turn each in-memory image into a PIL image (as torchvision.datasets.CIFAR10 does),
or open each file with PIL (as torchvision.datasets.ImageFolder does), and run
torchvision.transforms on it, once per view.

scripts/benchmark.py feeds it to the same model, step and precision as ssltrain's own
backends, so the speedup is measured side by side. The recipes are the same ViewConfigs.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from ssltrain.augment.views import ViewConfig
from ssltrain.data.batch import Batch
from ssltrain.data.images import ImageSet
from ssltrain.errors import UserError
from ssltrain.augment.per_sample import blur_kernel_size


def peer_transform(view: ViewConfig, image_size: int, mean: Sequence[float], std: Sequence[float]) -> T.Compose:
    """One view's recipe as torchvision.transforms (v1) on PIL images."""
    size = view.size or image_size
    ops: list = [T.RandomResizedCrop(size, scale=tuple(view.crop_scale), ratio=tuple(view.crop_ratio))]
    if view.flip_p > 0:
        ops.append(T.RandomHorizontalFlip(view.flip_p))
    if view.jitter_p > 0:
        ops.append(T.RandomApply([T.ColorJitter(view.brightness, view.contrast, view.saturation, view.hue)], p=view.jitter_p))
    if view.grayscale_p > 0:
        ops.append(T.RandomGrayscale(view.grayscale_p))
    if view.blur_p > 0:
        ops.append(T.RandomApply([T.GaussianBlur(blur_kernel_size(size), sigma=tuple(view.blur_sigma))], p=view.blur_p))
    if view.solarize_p > 0:
        ops.append(T.RandomSolarize(128, p=view.solarize_p))
    return T.Compose([*ops, T.ToTensor(), T.Normalize(list(mean), list(std))])


class PeerDataset(Dataset):
    """In-memory pixels made a PIL image each (as torchvision's CIFAR10), or files opened
    with PIL (as torchvision's ImageFolder)."""

    def __init__(self, images: ImageSet, pipelines: list[T.Compose]):
        self.pixels = images.pixels.numpy() if images.pixels is not None else None
        self.paths, self.labels, self.pipelines = images.paths, images.labels, pipelines

    def __len__(self) -> int:
        return len(self.labels)

    def _image(self, index: int) -> Image.Image:
        if self.pixels is not None:
            return Image.fromarray(self.pixels[index])
        with Image.open(self.paths[index]) as image:
            return image.convert("RGB")

    def __getitem__(self, index: int):
        image = self._image(index)
        return [pipeline(image) for pipeline in self.pipelines], self.labels[index]


class PeerLoader:
    """The peers' pipeline behind ssltrain's loader interface (one process, shuffled)."""

    def __init__(self, images: ImageSet, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float],
                 std: Sequence[float], batch_size: int, device: torch.device, num_workers: int,
                 channels_last: bool = False):
        pipelines = [peer_transform(view, image_size, mean, std) for view in views for _ in range(view.count)]
        self.loader = DataLoader(PeerDataset(images, pipelines), batch_size=batch_size, shuffle=True, drop_last=True,
                                 num_workers=num_workers, pin_memory=device.type == "cuda",
                                 persistent_workers=num_workers > 0)
        if len(self.loader) == 0:
            raise UserError(f"{len(images)} training images make no full batch of {batch_size}")
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.skipped_images = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        if start_step:
            raise ValueError("the peer pipeline shuffles without a seed per epoch: it cannot resume mid-epoch")
        for views, labels in self.loader:
            yield Batch(views=[view.to(self.device, non_blocking=True, memory_format=self.memory_format) for view in views],
                        labels=labels.to(self.device, non_blocking=True))
