"""P classes x K images per batch (trainer.sampler=pk)."""

from __future__ import annotations

import torch

from ssltrain.data.samplers.epoch import EpochSampler
from ssltrain.errors import UserError


class ClassBalancedSampler(EpochSampler):
    """P classes x K images per batch (trainer.sampler=pk), for the metric-learning losses that
    need positives and negatives in every batch (Hermans et al. 2017, "In Defense of the
    Triplet Loss", https://arxiv.org/abs/1703.07737: their "PK" batches, drawn here without
    replacement over an epoch).

    An epoch: each class's images in a seeded order, cut into chunks of K (a class's last
    chunk of fewer than K waits for a later epoch's order); the chunks are dealt into global
    batches of P chunks of P distinct classes, each batch taking the P classes with the most
    chunks left (ties broken at random), which deals as many batches as any dealing can.
    Every image appears at most once per epoch. Under DDP the global batches go round the
    ranks (step s of rank r is batch s * world_size + r), so each rank trains on whole,
    disjoint P x K batches; a loss mines within its rank's batch. Same keys, seeding and
    mid-epoch resume as EpochSampler: an epoch's order depends only on (seed, epoch)."""

    def __init__(self, labels: torch.Tensor, batch_size: int, images_per_class: int, seed: int, rank: int = 0,
                 world_size: int = 1, batch_key: str = "trainer.batch_size"):
        if images_per_class < 2 or batch_size % images_per_class:
            raise UserError(f"trainer.sampler=pk needs {batch_key} (per process: {batch_size}) to be a multiple of "
                            f"trainer.images_per_class={images_per_class}, which must be 2 or more")
        self.classes = labels.unique()  # [C]
        self.members = [(labels == cls).nonzero().flatten() for cls in self.classes]
        self.per_class, self.classes_per_batch = images_per_class, batch_size // images_per_class
        if self.classes_per_batch > len(self.classes):
            raise UserError(f"trainer.sampler=pk: {batch_key}={batch_size} / trainer.images_per_class="
                            f"{images_per_class} = {self.classes_per_batch} classes per batch, but the data has "
                            f"{len(self.classes)}; raise trainer.images_per_class")
        self.size, self.batch_size, self.seed = len(labels), batch_size, seed
        self.rank, self.world_size = rank, world_size
        self.steps_per_epoch = len(self._deal(torch.Generator().manual_seed(0))) // world_size  # the count is seed-free
        if self.steps_per_epoch == 0:
            raise UserError(f"{len(labels)} training images make no {self.classes_per_batch} x {images_per_class} "
                            f"batch of distinct classes for each of {world_size} process(es); lower {batch_key} "
                            f"or raise dataset.limit")
        self.epoch, self.start_step = 0, 0

    def _deal(self, generator: torch.Generator) -> list[torch.Tensor]:
        """The epoch's global batches: each [P] indices into self.classes."""
        left = torch.tensor([len(members) // self.per_class for members in self.members])  # [C] chunks
        batches = []
        while int((left > 0).sum()) >= self.classes_per_batch:
            priority = left + torch.rand(len(left), generator=generator)  # whole counts first, random ties
            chosen = priority.topk(self.classes_per_batch).indices  # [P]
            left[chosen] -= 1
            batches.append(chosen)
        return batches

    def indices(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 10_007 + epoch)
        chunks = [members[torch.randperm(len(members), generator=generator)].split(self.per_class)
                  for members in self.members]  # per class: its chunks of K (the last may be short)
        dealt = [0] * len(chunks)
        batches = []
        for chosen in self._deal(generator)[: self.steps_per_epoch * self.world_size]:
            batch = []
            for cls in chosen.tolist():
                batch.append(chunks[cls][dealt[cls]])
                dealt[cls] += 1
            batches.append(torch.cat(batch))  # [P * K], class after class
        return torch.cat(batches[self.rank :: self.world_size])
