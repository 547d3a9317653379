"""A memory bank: one feature vector per training image, updated by a moving average.

NPID's non-parametric classifier (Wu et al., CVPR 2018, https://arxiv.org/abs/1805.01978,
sec. 3.1, 3.3): row i is image i's L2-normalised feature, blended with each new feature of
the image, v_i <- normalise(m v_i + (1 - m) f_i). The rows are a buffer, so a checkpoint
holds them and a resumed run continues with the same bank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.runtime import dist


class MemoryBank(nn.Module):
    def __init__(self, size: int, dim: int, momentum: float):
        super().__init__()
        # the reference code's start (lemniscate.pytorch lib/LinearAverage.py): uniform in
        # [-s, s] with s = 1 / sqrt(dim / 3), so that every row has unit norm in expectation
        bound = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("features", torch.rand(size, dim).mul_(2 * bound).sub_(bound))  # [N, dim]
        self.momentum = momentum

    def __len__(self) -> int:
        return self.features.shape[0]

    @torch.no_grad()
    def update(self, features: torch.Tensor, indices: torch.Tensor) -> None:
        """Blend every rank's [B, dim] features into the rows of their images' [B] indices."""
        features, indices = dist.gather(features.detach()), dist.gather(indices)
        blended = self.features[indices].mul(self.momentum).add_(features.to(self.features.dtype), alpha=1 - self.momentum)
        self.features.index_copy_(0, indices, F.normalize(blended, dim=1))
