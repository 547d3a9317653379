"""VICReg: each term against its formula written out with loops, the variance hinge at
known points (its learning check: tests/learning_checks.yaml)."""

from __future__ import annotations

import math

import pytest
import torch

from ssltrain.losses.vicreg import vicreg_loss


def naive_vicreg(z1: torch.Tensor, z2: torch.Tensor, eps: float) -> dict[str, float]:
    """Eq. (1)-(5) term by term, with Python loops (invariance as a mean over entries)."""
    n, d = z1.shape
    invariance = sum((float(z1[b, j]) - float(z2[b, j])) ** 2 for b in range(n) for j in range(d)) / (n * d)

    def regularizers(z):
        means = [sum(float(z[b, j]) for b in range(n)) / n for j in range(d)]
        covariance = [[sum((float(z[b, i]) - means[i]) * (float(z[b, j]) - means[j]) for b in range(n)) / (n - 1)
                       for j in range(d)] for i in range(d)]
        variance = sum(max(0.0, 1 - math.sqrt(covariance[j][j] + eps)) for j in range(d)) / d
        off_diagonal = sum(covariance[i][j] ** 2 for i in range(d) for j in range(d) if i != j) / d
        return variance, off_diagonal

    (v1, c1), (v2, c2) = regularizers(z1), regularizers(z2)
    return {"invariance": invariance, "variance": v1 + v2, "covariance": c1 + c2}


def test_terms_and_weighted_total_match_a_hand_computation():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = 0.7 * torch.randn(2, 6, 4, generator=generator, dtype=torch.float64)  # std < 1: the hinge is active
    terms = vicreg_loss(z1, z2, invariance_weight=25.0, variance_weight=15.0, covariance_weight=2.0)
    expected = naive_vicreg(z1, z2, eps=1e-4)
    for name, value in expected.items():
        assert terms[name].item() == pytest.approx(value, rel=1e-10), name
    total = 25.0 * expected["invariance"] + 15.0 * expected["variance"] + 2.0 * expected["covariance"]
    assert terms["loss"].item() == pytest.approx(total, rel=1e-10)


def test_variance_term_is_zero_when_every_dimension_has_std_of_at_least_one():
    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z = (z - z.mean(0)) / z.std(0) * torch.linspace(1.0, 3.0, 8, dtype=torch.float64)  # stds 1 .. 3
    assert vicreg_loss(z, z.flip(0), 25.0, 25.0, 1.0)["variance"].item() == 0.0


def test_variance_term_is_positive_when_embeddings_collapse_to_a_constant():
    z = torch.full((16, 8), 0.3, dtype=torch.float64)
    terms = vicreg_loss(z, z, 25.0, 25.0, 1.0, eps=1e-4)
    assert terms["variance"].item() == pytest.approx(2 * (1 - math.sqrt(1e-4)))  # both branches, every dimension
    assert terms["invariance"].item() == 0.0 and terms["covariance"].item() == 0.0
