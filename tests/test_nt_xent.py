"""NT-Xent against SimCLR's eq. (1), computed one anchor at a time."""

import math

import torch

from ssltrain.losses.nt_xent import nt_xent


def naive_nt_xent(z1, z2, temperature):
    z = torch.cat([z1, z2])
    z = z / z.norm(dim=1, keepdim=True)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        denominator = sum(math.exp(float(z[i] @ z[k]) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(float(z[i] @ z[positive]) / temperature) / denominator)
    return total / (2 * n)


def test_nt_xent_matches_the_formula_anchor_by_anchor():
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    assert math.isclose(nt_xent(z1, z2, 0.5).item(), naive_nt_xent(z1, z2, 0.5), rel_tol=1e-5)


def test_nt_xent_of_two_images_with_identical_views_and_orthogonal_images():
    # each anchor: positive similarity 1, negatives 0 and 0 -> -log(e^{1/t} / (e^{1/t} + 2))
    z = torch.eye(2)
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert math.isclose(nt_xent(z, z.clone(), t).item(), expected, rel_tol=1e-6)


def test_nt_xent_is_scale_invariant_in_its_inputs():
    z1, z2 = torch.randn(4, 8), torch.randn(4, 8)
    assert torch.allclose(nt_xent(z1, z2, 0.2), nt_xent(3 * z1, 0.5 * z2, 0.2))
