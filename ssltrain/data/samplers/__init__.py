"""The pretraining orders: which images each step of each rank trains on (epoch.py: a
seeded permutation; class_balanced.py: P x K class-balanced batches; shards.py: whole tar
shards per read stream). make_sampler picks one for a run's images and settings."""

from __future__ import annotations

from typing import Optional

import torch

from ssltrain.data.images import UNLABELLED, ShardMembers
from ssltrain.data.samplers.class_balanced import ClassBalancedSampler
from ssltrain.data.samplers.epoch import EpochSampler
from ssltrain.data.samplers.shards import ShardSampler
from ssltrain.errors import UserError


def make_sampler(labels: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 images_per_class: Optional[int] = None, batch_key: str = "trainer.batch_size",
                 shards: Optional[ShardMembers] = None) -> EpochSampler:
    """A ClassBalancedSampler when `images_per_class` is given (labels needed), a ShardSampler
    for images in tar `shards`, else an EpochSampler."""
    if shards is not None:
        if images_per_class is not None:
            raise UserError("trainer.sampler=pk draws batches by class over the whole dataset and shards are read "
                            "stream by stream; use trainer.sampler=random with dataset=webdataset")
        return ShardSampler(shards, batch_size, seed, rank, world_size, batch_key)
    if images_per_class is None:
        return EpochSampler(len(labels), batch_size, seed, rank, world_size, batch_key)
    if len(labels) == 0 or bool((labels == UNLABELLED).any()):
        raise UserError("trainer.sampler=pk draws batches by class and the training images have no labels; "
                        "use trainer.sampler=random or a labelled dataset")
    return ClassBalancedSampler(labels, batch_size, images_per_class, seed, rank, world_size, batch_key)
