"""SimSiam's negative cosine and BYOL's normalised MSE against their formulas, and the
stop-gradient both put on the target side."""

from __future__ import annotations

import math

import torch

from ssltrain.losses.cosine import negative_cosine, normalized_mse


def test_negative_cosine_averages_minus_the_cosine_of_each_pair():
    generator = torch.Generator().manual_seed(0)
    p, z = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    expected = -sum(float(p[i] @ z[i]) / (p[i].norm().item() * z[i].norm().item()) for i in range(3)) / 3
    assert math.isclose(negative_cosine(p, z).item(), expected, rel_tol=1e-5)


def test_normalized_mse_is_the_squared_distance_of_the_unit_vectors():
    generator = torch.Generator().manual_seed(1)
    p, z = torch.randn(3, 4, generator=generator), torch.randn(3, 4, generator=generator)
    expected = sum(float(((p[i] / p[i].norm() - z[i] / z[i].norm()) ** 2).sum()) for i in range(3)) / 3
    assert math.isclose(normalized_mse(p, z).item(), expected, rel_tol=1e-5)


def test_opposite_and_equal_directions_give_the_extremes():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert math.isclose(negative_cosine(p, torch.tensor([[3.0, 0.0], [0.0, -1.0]])).item(), 0.0, abs_tol=1e-7)
    assert math.isclose(negative_cosine(p, 5 * p).item(), -1.0, rel_tol=1e-6)
    assert math.isclose(normalized_mse(p, -p).item(), 4.0, rel_tol=1e-6)


def test_no_gradient_reaches_the_target_side():
    for loss_fn in (negative_cosine, normalized_mse):
        p, z = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
        grad_p, grad_z = torch.autograd.grad(loss_fn(p, z), [p, z], allow_unused=True)
        assert grad_z is None, loss_fn.__name__
        assert grad_p.abs().sum() > 0, loss_fn.__name__
