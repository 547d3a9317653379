"""A first-in first-out queue of feature vectors kept across steps.

MoCo's negatives, NNCLR's support set and SwAV's stored features. The contents are
buffers, so they are saved in checkpoints and a resumed run continues with the same queue.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.runtime import dist


class FeatureQueue(nn.Module):
    def __init__(self, size: int, dim: int, normalize: bool = True):
        super().__init__()
        initial = torch.randn(size, dim)
        self.register_buffer("features", F.normalize(initial, dim=1) if normalize else initial)  # [size, dim]
        self.register_buffer("labels", torch.full((size,), -1, dtype=torch.long))  # [size]
        self.register_buffer("pointer", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def push(self, features: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Add this step's [B, dim] features of every rank, overwriting the oldest.

        The write position stays on the device, so pushing never waits for the GPU.
        """
        features = dist.gather(features.detach())
        count = min(features.shape[0], len(self))
        index = (self.pointer + torch.arange(count, device=self.pointer.device)) % len(self)
        self.features.index_copy_(0, index, features[-count:].to(self.features.dtype))
        if labels is not None:
            self.labels.index_copy_(0, index, dist.gather(labels)[-count:])
        self.pointer.copy_((self.pointer + count) % len(self))
