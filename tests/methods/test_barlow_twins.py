"""Barlow Twins: the loss against a loop over the cross-correlation matrix, its values at
known points (its learning check: tests/learning_checks.yaml)."""

from __future__ import annotations

import math

import pytest
import torch

from ssltrain.losses.barlow_twins import barlow_twins_loss


def naive_barlow_twins(z1: torch.Tensor, z2: torch.Tensor, lambd: float, scale: float, eps: float) -> float:
    """The paper's eq. (1)-(2) term by term, with Python loops."""
    n, d = z1.shape

    def standardized_columns(z):
        columns = []
        for j in range(d):
            column = [float(z[b, j]) for b in range(n)]
            mean = sum(column) / n
            variance = sum((x - mean) ** 2 for x in column) / n
            columns.append([(x - mean) / math.sqrt(variance + eps) for x in column])
        return columns

    a, b = standardized_columns(z1), standardized_columns(z2)
    total = 0.0
    for i in range(d):
        for j in range(d):
            c_ij = sum(a[i][k] * b[j][k] for k in range(n)) / n
            total += (1 - c_ij) ** 2 if i == j else lambd * c_ij ** 2
    return scale * total


def test_loss_matches_a_hand_computation_of_the_cross_correlation():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)
    loss = barlow_twins_loss(z1, z2, lambd=0.3, scale=0.5, eps=1e-5)["loss"]
    assert loss.item() == pytest.approx(naive_barlow_twins(z1, z2, 0.3, 0.5, 1e-5), rel=1e-10)


def test_identical_views_zero_the_diagonal_and_cost_lambda_times_their_squared_feature_correlations():
    z = torch.randn(32, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    terms = barlow_twins_loss(z, z, lambd=0.01, scale=1.0)
    correlation = torch.corrcoef(z.T)  # [5, 5], numpy-style Pearson correlation
    off_diagonal = (correlation.pow(2).sum() - correlation.diagonal().pow(2).sum()).item()
    assert terms["on_diagonal"].item() == pytest.approx(0.0, abs=1e-8)
    assert terms["off_diagonal"].item() == pytest.approx(off_diagonal, rel=1e-4)
    assert terms["loss"].item() == pytest.approx(0.01 * off_diagonal, rel=1e-4)


def test_identical_decorrelated_views_cost_nothing():
    # three columns of a 4x4 Hadamard matrix: zero mean, unit variance, orthogonal
    z = torch.tensor([[1, 1, 1], [-1, 1, -1], [1, -1, -1], [-1, -1, 1]], dtype=torch.float64)
    assert barlow_twins_loss(z, z, lambd=0.005)["loss"].item() == pytest.approx(0.0, abs=1e-8)


def test_each_dimension_is_standardized_so_its_scale_and_offset_do_not_matter():
    generator = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(2, 10, 3, generator=generator, dtype=torch.float64)
    scale, shift = torch.tensor([0.1, 5.0, 30.0], dtype=torch.float64), torch.tensor([3.0, -2.0, 0.5], dtype=torch.float64)
    plain = barlow_twins_loss(z1, z2, lambd=0.005, eps=0.0)["loss"]
    moved = barlow_twins_loss(z1 * scale + shift, z2, lambd=0.005, eps=0.0)["loss"]
    assert moved.item() == pytest.approx(plain.item(), rel=1e-10)
