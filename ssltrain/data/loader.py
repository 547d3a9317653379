"""The pretraining data path on CPU workers: seeded, sharded, resumable mid-epoch.

The sampler yields `(epoch, index)` keys and each sample seeds its augmentation from its
key, so the views a run sees depend only on the seed: not on the worker count, not on
whether the run was interrupted and resumed.
"""

from __future__ import annotations

import os
from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, get_worker_info

from ssltrain.data.batch import Batch
from ssltrain.data.decode import try_load_rgb
from ssltrain.data.unreadable import UNREADABLE
from ssltrain.data.images import UNLABELLED, ImageSet, ShardMembers
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.errors import UserError



def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63)


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


def make_sampler(labels: torch.Tensor, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 images_per_class: Optional[int] = None, batch_key: str = "trainer.batch_size",
                 shards: Optional[ShardMembers] = None) -> EpochSampler:
    """A ClassBalancedSampler when `images_per_class` is given (labels needed), a ShardSampler
    for images in tar `shards`, else an EpochSampler."""
    if shards is not None:
        if images_per_class is not None:
            raise UserError("trainer.sampler=pk draws batches by class over the whole dataset and shards are read "
                            "stream by stream; use trainer.sampler=random with dataset=webdataset")
        from ssltrain.data.shard_sampler import ShardSampler  # it builds on EpochSampler, above

        return ShardSampler(shards, batch_size, seed, rank, world_size, batch_key)
    if images_per_class is None:
        return EpochSampler(len(labels), batch_size, seed, rank, world_size, batch_key)
    if len(labels) == 0 or bool((labels == UNLABELLED).any()):
        raise UserError("trainer.sampler=pk draws batches by class and the training images have no labels; "
                        "use trainer.sampler=random or a labelled dataset")
    return ClassBalancedSampler(labels, batch_size, images_per_class, seed, rank, world_size, batch_key)


class MultiViewDataset(Dataset):
    """Images -> (views, label, index); an unreadable file gives its path, left out by `collate_views`."""

    def __init__(self, images: ImageSet, transform: MultiViewTransform, seed: int):
        self.images, self.transform, self.seed = images, transform, seed

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, index: int):
        if self.images.pixels is not None:
            return self.images.pixels[index].permute(2, 0, 1)  # [3, H, W] uint8
        return try_load_rgb(self.images, index)

    def __getitem__(self, key: tuple[int, int]):
        epoch, index = key
        image = self._image(index)
        if image is None:
            return self.images.paths[index]
        seed = sample_seed(self.seed, epoch, index)
        if get_worker_info() is not None:  # a worker process owns its global RNG
            torch.manual_seed(seed)
            views = self.transform(image)
        else:  # in the main process, leave the model's RNG stream untouched
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                views = self.transform(image)
        return views, int(self.images.labels[index]), index


def collate_views(samples: list) -> dict:
    kept = [sample for sample in samples if not isinstance(sample, str)]
    skipped = [sample for sample in samples if isinstance(sample, str)]
    if not kept:
        empty = torch.empty(0, dtype=torch.long)
        return {"views": [], "labels": empty, "indices": empty, "skipped": skipped}
    views = [torch.stack([sample[0][v] for sample in kept]) for v in range(len(kept[0][0]))]
    labels = torch.tensor([sample[1] for sample in kept], dtype=torch.long)
    indices = torch.tensor([sample[2] for sample in kept], dtype=torch.long)
    return {"views": views, "labels": labels, "indices": indices, "skipped": skipped}


def default_workers(device: torch.device) -> int:
    """One per core (at most 8) feeding a GPU; on CPU the model needs the cores too."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, cores) if device.type == "cuda" else max(1, cores // 2)


def worker_loader(dataset: Dataset, sampler: EpochSampler, device: torch.device, num_workers: int,
                  collate_fn=collate_views) -> DataLoader:
    """The DataLoader of a per-sample dataset keyed by `sampler` (num_workers < 0: default_workers)."""
    workers = default_workers(device) if num_workers < 0 else num_workers
    return DataLoader(
        dataset,
        batch_size=sampler.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def report_unreadable(raw: dict, total_images: int, epoch: int) -> None:
    """Report a collated batch's skipped files; a batch with nothing left fails in one line."""
    UNREADABLE.report(raw["skipped"], total_images, "pretraining")
    if not len(raw["indices"]):
        raise UserError(f"every image of a batch in epoch {epoch} was unreadable (see the warnings above); check the files under dataset.root")


class PretrainLoader:
    """Yields device `Batch`es for one epoch at a time, from any step of that epoch."""

    def __init__(self, images: ImageSet, transform: MultiViewTransform, batch_size: int, seed: int,
                 device: torch.device, num_workers: int, rank: int = 0, world_size: int = 1,
                 channels_last: bool = False, batch_key: str = "trainer.batch_size",
                 images_per_class: Optional[int] = None):
        self.sampler = make_sampler(images.labels, batch_size, seed, rank, world_size, images_per_class, batch_key,
                                    images.members)
        self.device = device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.loader = worker_loader(MultiViewDataset(images, transform, seed), self.sampler, device, num_workers)
        self.total_images = len(images)

    @property
    def steps_per_epoch(self) -> int:
        return self.sampler.steps_per_epoch

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[Batch]:
        self.sampler.set_epoch(epoch, start_step)
        for raw in self.loader:
            report_unreadable(raw, self.total_images, epoch)
            yield Batch(
                views=[view.to(self.device, non_blocking=True, memory_format=self.memory_format) for view in raw["views"]],
                labels=raw["labels"].to(self.device, non_blocking=True),
                indices=raw["indices"].to(self.device, non_blocking=True),
            )
