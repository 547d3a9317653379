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

    @property
    def size(self) -> int:
        return len(self.labels)

    def split(self, parts: int) -> list["Batch"]:
        """`parts` consecutive micro-batches of equal size (`parts` must divide the size), each
        with its share of the target batch."""
        if parts == 1:
            return [self]
        views = zip(*(view.chunk(parts) for view in self.views))
        targets = self.target.split(parts) if self.target is not None else [None] * parts
        return [Batch(views=list(chunks), labels=labels, target=target)
                for chunks, labels, target in zip(views, self.labels.chunk(parts), targets)]
