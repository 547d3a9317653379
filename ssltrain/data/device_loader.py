"""The pretraining data path for decoded datasets: images resident on the training device,
augmented a whole batch at a time there (augmentation.backend=batched).

Same contract as loader.PretrainLoader: the same sampler order (so both backends see
the same images at each step), sharded across ranks, and resumable mid-epoch. The random
augmentation parameters of a step come from a generator seeded from (seed, epoch, step,
rank), so a resumed run draws exactly what the uninterrupted one would have drawn. No
Python runs per sample and nothing waits for the device: a step's batch is a slice of the
epoch's index tensor, one gather and the batched ops.
"""

from __future__ import annotations

import hashlib
from typing import Iterator, Optional, Sequence

import torch

from ssltrain.augment.views import ViewConfig
from ssltrain.data.batch import Batch
from ssltrain.augment.batched import BatchAugment
from ssltrain.data.images import ImageSet
from ssltrain.data.samplers import make_sampler
from ssltrain.errors import UserError


def batch_seed(seed: int, epoch: int, step: int, rank: int) -> int:
    """The augmentation seed of one rank's batch."""
    digest = hashlib.blake2b(f"{seed}/{epoch}/{step}/{rank}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # a non-negative int64


class DeviceLoader:
    """Yields device `Batch`es for one epoch at a time, from any step of that epoch."""

    def __init__(self, images: ImageSet, views: Sequence[ViewConfig], image_size: int, mean: Sequence[float],
                 std: Sequence[float], batch_size: int, seed: int, device: torch.device, rank: int = 0,
                 world_size: int = 1, channels_last: bool = False, images_per_class: Optional[int] = None):
        if images.pixels is None:
            raise UserError("augmentation.backend=batched needs a dataset decoded in memory and this one is streamed "
                            "from disk (large images); use augmentation.backend=streamed (or auto)")
        self.sampler = make_sampler(images.labels, batch_size, seed, rank, world_size, images_per_class)
        self.device, self.seed, self.rank = device, seed, rank
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.pixels = images.pixels.to(device)  # [N, H, W, 3] uint8, resident for the whole run
        self.labels = images.labels.to(device)  # [N]
        self.augment = BatchAugment(views, image_size, mean, std)
        self.generator = torch.Generator(device=device)

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        size = self.sampler.batch_size
        order = self.sampler.indices(epoch)  # [steps * B], on the CPU
        if self.device.type == "cuda":
            order = order.pin_memory()
        order = order.to(self.device, non_blocking=True)
        for step in range(start_step, self.steps_per_epoch):
            index = order[step * size : (step + 1) * size]  # [B]
            self.generator.manual_seed(batch_seed(self.seed, epoch, step, self.rank))
            views = self.augment(self.pixels[index], self.generator)
            yield Batch(views=[view.contiguous(memory_format=self.memory_format) for view in views],
                        labels=self.labels[index], indices=index)
