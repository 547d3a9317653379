"""Prototype vectors that score embeddings, and that can be frozen for the first steps.

SwAV's prototypes and DINO's last layer are both a bias-free linear map whose rows are
kept at unit norm: SwAV renormalises the weights in place after each step
(`renormalize_`), DINO's weight-normalised layer (with its norm g fixed to 1) normalises
them in the forward (`normalize_weight=True`). Both papers freeze this layer during the
first epoch, which helps training start (SwAV sec. 4 / appendix A.1, DINO appendix).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Prototypes(nn.Module):
    def __init__(self, dim: int, count: int, normalize_weight: bool):
        super().__init__()
        self.weight = nn.Parameter(F.normalize(torch.randn(count, dim), dim=1))  # [K, D]
        self.normalize_weight = normalize_weight
        # Set by the method from the step (`on_step_start`): while True, the weight gets a
        # zero gradient. It stays in the graph, since DDP expects every parameter to take part.
        self.frozen = False

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B, K] scores embeddings @ weight.T."""
        weight = self.weight
        if self.frozen:
            weight = weight.detach() + 0.0 * weight  # the same values, a zero gradient
        if self.normalize_weight:
            weight = F.normalize(weight, dim=1)
        return embeddings @ weight.T  # [B, K]

    @torch.no_grad()
    def renormalize_(self) -> None:
        self.weight.copy_(F.normalize(self.weight, dim=1))
