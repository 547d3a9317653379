"""Image sets and the seeded train / evaluation split.

An `ImageSet` is one split of a dataset, held either decoded in memory (uint8
[N, H, W, 3], for CIFAR-sized data) or as files decoded per sample (large images): files
of their own (paths) or members of tar shards (paths name them; `members` says where
their bytes lie). Labels are -1 where unknown: pretraining needs none, evaluation needs them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import BinaryIO, Optional

import torch

from ssltrain.errors import UserError

UNLABELLED = -1


@dataclass
class ShardMembers:
    """Where each image of a set of tar shards lies (WebDataset's format, data/shards.py)."""

    shards: list[str]  # the tar files
    table: torch.Tensor  # [N, 3] int64: index into shards, byte offset of the image member's data, its size
    streams: int = 1  # read streams per process the shards are dealt to in pretraining (data/samplers/shards.py)

    def read(self, index: int) -> bytes:
        shard, offset, size = self.table[index].tolist()
        with open(self.shards[shard], "rb") as file:
            file.seek(offset)
            return file.read(size)


@dataclass
class ImageSet:
    labels: torch.Tensor  # [N] int64, UNLABELLED where unknown
    pixels: torch.Tensor | None = None  # [N, H, W, 3] uint8, when decoded in memory
    paths: list[str] | None = None  # when streamed from disk: the files, or names of shard members
    members: Optional[ShardMembers] = None  # when the paths name members of tar shards

    def __post_init__(self) -> None:
        if (self.pixels is None) == (self.paths is None):
            raise ValueError("an ImageSet holds either pixels or paths")
        if self.members is not None and self.paths is None:
            raise ValueError("shard members are named by paths")

    def file(self, index: int) -> BinaryIO:
        """The i-th streamed image's bytes (see encoded) as a file PIL opens; OSError if unreadable."""
        return io.BytesIO(self.encoded(index))

    def encoded(self, index: int) -> bytes:
        """The i-th streamed image's encoded bytes (its file's, or its shard member's); OSError if unreadable."""
        if self.members is None:
            with open(self.paths[index], "rb") as file:
                return file.read()
        return self.members.read(index)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def has_labels(self) -> bool:
        return len(self.labels) > 0 and bool((self.labels != UNLABELLED).all())

    def subset(self, indices: torch.Tensor) -> "ImageSet":
        return replace(
            self,
            labels=self.labels[indices],
            pixels=None if self.pixels is None else self.pixels[indices],
            paths=None if self.paths is None else [self.paths[i] for i in indices.tolist()],
            members=None if self.members is None else replace(self.members, table=self.members.table[indices]),
        )


@dataclass
class DatasetSource:
    """What a registered dataset provides, before the run's split and limit."""

    train: ImageSet
    test: ImageSet | None  # the official test split, when the dataset has one here
    num_classes: int
    image_size: int  # side of the (square) images the encoder sees
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: list[str] | None = None  # in label order, where the dataset names them


@dataclass
class DatasetSplits:
    """The images a run pretrains on and the labelled split it evaluates on."""

    train: ImageSet  # pretraining images; with labels they are also the eval-train set
    val: ImageSet | None  # official test split or a seeded holdout; None when unlabelled
    val_split: str  # says which, for results.json
    num_classes: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: list[str] | None  # in label order, where the dataset names them


def balanced_subset(labels: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """Indices of `size` items, drawn per class in proportion to class size (seeded).

    Unlabelled items count as one class, so the same call serves unlabelled data.
    """
    if size >= len(labels):
        return torch.arange(len(labels))
    classes, counts = labels.unique(return_counts=True)
    quotas = torch.floor(counts.double() * size / len(labels)).long()
    # hand out what flooring left over to the largest classes, in a seeded order
    leftover = size - int(quotas.sum())
    order = torch.randperm(len(classes), generator=generator)
    order = order[torch.argsort(counts[order], descending=True, stable=True)]
    quotas[order[:leftover]] += 1
    chosen = []
    for cls, quota in zip(classes.tolist(), quotas.tolist()):
        members = (labels == cls).nonzero().flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:quota]])
    return torch.cat(chosen).sort().values


def make_splits(
    source: DatasetSource, limit: int | None, holdout_fraction: float, seed: int
) -> DatasetSplits:
    """Hold out a class-balanced part of train when there is no test split, then apply `limit`.

    The holdout is drawn before the limit and never pretrained on, so a number measured on
    it is a held-out number whatever the limit.
    """
    generator = torch.Generator().manual_seed(seed)
    train, val = source.train, source.test
    if len(train) == 0:
        raise UserError("the dataset has no training images; check dataset.root")
    if val is not None:
        val_split = "test"
    elif train.has_labels:
        holdout = balanced_subset(train.labels, round(holdout_fraction * len(train)), generator)
        keep = torch.ones(len(train), dtype=torch.bool)
        keep[holdout] = False
        val = train.subset(holdout)
        train = train.subset(keep.nonzero().flatten())
        val_split = (
            f"holdout: {len(val)} images ({holdout_fraction:g} of train, class-balanced, "
            f"seed {seed}), never pretrained on"
        )
    else:
        val_split = "none (unlabelled dataset)"
    if limit is not None and limit < len(train):
        train = train.subset(balanced_subset(train.labels, limit, generator))
    return DatasetSplits(
        train=train,
        val=val,
        val_split=val_split,
        num_classes=source.num_classes,
        image_size=source.image_size,
        mean=source.mean,
        std=source.std,
        class_names=source.class_names,
    )
