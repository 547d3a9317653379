"""The default pretraining order: a seeded permutation per epoch, sharded across ranks.

Samplers yield `(epoch, index)` keys (data/loader.py seeds each sample's augmentation from
its key), and an epoch's order depends only on (seed, epoch), so a run resumed mid-epoch
continues with the very batches it had not trained on.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler

from ssltrain.errors import UserError


class EpochSampler(Sampler):
    """A seeded permutation per epoch, cut to whole batches and sharded across ranks.
    `batch_key` names the setting the batch size comes from, for the error message."""

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 batch_key: str = "trainer.batch_size"):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = size // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise UserError(
                f"{size} training images make no full batch of {batch_key}={batch_size * world_size}; "
                f"lower {batch_key} or raise dataset.limit"
            )
        self.epoch, self.start_step = 0, 0

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        self.epoch, self.start_step = epoch, start_step

    def indices(self, epoch: int) -> torch.Tensor:
        """This rank's image indices for the whole epoch, [steps_per_epoch * batch_size]."""
        generator = torch.Generator().manual_seed(self.seed * 10_007 + epoch)
        order = torch.randperm(self.size, generator=generator)
        used = self.steps_per_epoch * self.batch_size * self.world_size
        return order[:used][self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for index in self.indices(self.epoch)[self.start_step * self.batch_size :].tolist():
            yield self.epoch, index

    def __len__(self) -> int:
        return (self.steps_per_epoch - self.start_step) * self.batch_size
