"""What a method's training step receives."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch


@dataclass
class Batch:
    views: list[torch.Tensor]  # each [B, 3, H, W], normalised, on the training device
    labels: torch.Tensor  # [B] int64, -1 where unknown (only supervised methods read it)
    # [B] int64: each image's index in the training set (every loader fills it; instance
    # discrimination methods read it). None only in hand-made batches of tests and tools.
    indices: Optional[torch.Tensor] = None

    @property
    def size(self) -> int:
        return len(self.labels)
