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
        """`parts` consecutive micro-batches of equal size (`parts` must divide the size)."""
        views = zip(*(view.chunk(parts) for view in self.views))
        return [Batch(views=list(chunks), labels=labels) for chunks, labels in zip(views, self.labels.chunk(parts))]
