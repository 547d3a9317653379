"""The off-diagonal part of a square matrix, shared by the redundancy-reduction losses
(Barlow Twins' cross-correlation, VICReg's covariance)."""

from __future__ import annotations

import torch


def off_diagonal_square_sum(matrix: torch.Tensor) -> torch.Tensor:
    """Sum of squares of the entries off the diagonal of `matrix` ([D, D]) -> scalar."""
    diagonal = torch.eye(matrix.shape[0], dtype=torch.bool, device=matrix.device)  # [D, D]
    return matrix.pow(2).masked_fill(diagonal, 0).sum()
