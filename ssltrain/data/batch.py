"""What a method's training step receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Batch:
    views: list[torch.Tensor]  # each [B, 3, H, W], normalised, on the training device
    labels: torch.Tensor  # [B] int64, -1 where unknown (only supervised methods read it)
    target: Optional["Batch"] = None  # the target dataset's batch of the same step (methods with needs_target)
    # [B] int64: each image's index in the training set (every loader fills it; instance
    # discrimination methods read it). None only in hand-made batches of tests and tools.
    indices: Optional[torch.Tensor] = None

    @property
    def size(self) -> int:
        return len(self.labels)

    def split(self, parts: int) -> list["Batch"]:
        """`parts` consecutive micro-batches of equal size (`parts` must divide the size), each
        with its share of the indices and of the target batch."""
        if parts == 1:
            return [self]
        views = zip(*(view.chunk(parts) for view in self.views))
        indices = self.indices.chunk(parts) if self.indices is not None else [None] * parts
        targets = self.target.split(parts) if self.target is not None else [None] * parts
        return [Batch(views=list(chunks), labels=labels, target=target, indices=index)
                for chunks, labels, target, index in zip(views, self.labels.chunk(parts), targets, indices)]
