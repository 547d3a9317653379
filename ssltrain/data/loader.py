"""The pretraining data path on CPU workers: seeded, sharded, resumable mid-epoch.

The sampler yields `(epoch, index)` keys and each sample seeds its augmentation from its
key, so the views a run sees depend only on the seed: not on the worker count, not on
whether the run was interrupted and resumed.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

from ssltrain.data.batch import Batch
from ssltrain.data.decode import try_load_rgb
from ssltrain.data.unreadable import UNREADABLE
from ssltrain.data.images import ImageSet
from ssltrain.data.samplers import make_sampler
from ssltrain.data.samplers.epoch import EpochSampler
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.errors import UserError


def sample_seed(seed: int, epoch: int, index: int) -> int:
    return ((seed * 1_000_003 + epoch) * 1_000_000_007 + index) % (2**63)


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


def collate_readable(samples: list, key: str, gather: Callable[[list], Any]) -> dict:
    """(content, label, index) items, or the paths of unreadable files -> {key: gather(the
    readable items' contents), "labels", "indices", "skipped": those paths}."""
    kept = [sample for sample in samples if not isinstance(sample, str)]
    return {key: gather([sample[0] for sample in kept]),
            "labels": torch.tensor([sample[1] for sample in kept], dtype=torch.long),
            "indices": torch.tensor([sample[2] for sample in kept], dtype=torch.long),
            "skipped": [sample for sample in samples if isinstance(sample, str)]}


def collate_views(samples: list) -> dict:
    """Items whose content is a list of views [3, s, s] -> "views": one [B, 3, s, s] per view."""
    return collate_readable(samples, "views", lambda contents: [torch.stack(view) for view in zip(*contents)])


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
