"""Which augmentation backend a run uses, and the pretraining loader it gets."""

from __future__ import annotations

import logging
from typing import Optional, Sequence, Union

import torch

from ssltrain.augment.views import AugmentationConfig
from ssltrain.data.device_loader import DeviceLoader
from ssltrain.data.images import ImageSet
from ssltrain.data.loader import PretrainLoader
from ssltrain.data.streamed_loader import StreamedLoader
from ssltrain.augment.per_sample import MultiViewTransform

log = logging.getLogger(__name__)

Loader = Union[PretrainLoader, DeviceLoader, StreamedLoader]  # one epoch at a time: steps_per_epoch, epoch(epoch, start_step)


def select_backend(requested: str, images: ImageSet) -> str:
    """auto: the batched backend whenever the images are decoded in memory: on a CPU too,
    where batched tensor ops beat the per-sample pipeline several times over
    (docs/benchmarks/README.md). Images streamed from disk keep the per-sample backend: on
    the 2-core CPU the streamed backend measured no faster than it (and both no faster than
    the peers' pipeline; docs/benchmarks/cpu-large-images-2026-12-01.json), and it has not
    been measured on a GPU yet; choose it with augmentation.backend=streamed."""
    if requested != "auto":
        return requested
    return "batched" if images.pixels is not None else "per_sample"


def pretrain_loader(images: ImageSet, augmentation: AugmentationConfig, image_size: int, mean: Sequence[float],
                    std: Sequence[float], batch_size: int, seed: int, device: torch.device, num_workers: int,
                    rank: int = 0, world_size: int = 1, channels_last: bool = False,
                    images_per_class: Optional[int] = None) -> Loader:
    """The loader for `augmentation.backend` (batch_size is per process); `images_per_class`:
    class-balanced P x K batches (samplers.ClassBalancedSampler) instead of a plain shuffle."""
    backend = select_backend(augmentation.backend, images)
    log.info("augmentation backend: %s%s", backend, " (auto)" if augmentation.backend == "auto" else "")
    if backend == "batched":
        return DeviceLoader(images, augmentation.views, image_size, mean, std, batch_size, seed, device,
                            rank, world_size, channels_last, images_per_class)
    if backend == "streamed":
        return StreamedLoader(images, augmentation.views, image_size, mean, std, batch_size, seed, device, num_workers,
                              rank, world_size, channels_last, images_per_class)
    transform = MultiViewTransform(augmentation.views, image_size, mean, std)
    return PretrainLoader(images, transform, batch_size, seed, device, num_workers, rank, world_size, channels_last,
                          images_per_class=images_per_class)
