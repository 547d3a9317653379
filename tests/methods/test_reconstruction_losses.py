"""The losses of the reconstruction methods against hand computations on tiny tensors."""

from __future__ import annotations

import math

import torch

from ssltrain.losses.gan import discriminator_loss, generator_loss
from ssltrain.losses.gaussian_kl import gaussian_kl
from ssltrain.losses.rebalanced_cross_entropy import rebalanced_cross_entropy
from ssltrain.losses.reconstruction import reconstruction_mse


def test_reconstruction_mse_without_a_region_is_the_mean_over_every_value():
    outputs, targets = torch.randn(2, 3, 2, 2), torch.randn(2, 3, 2, 2)
    total = sum((outputs[b, c, i, j] - targets[b, c, i, j]) ** 2
                for b in range(2) for c in range(3) for i in range(2) for j in range(2))
    assert torch.allclose(reconstruction_mse(outputs, targets), total / 24)


def test_reconstruction_mse_on_a_region_averages_over_its_pixels_only():
    outputs, targets = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    region = torch.tensor([[[[True, False], [False, True]]]])
    inside = sum((outputs[0, c, i, i] - targets[0, c, i, i]) ** 2 for c in range(3) for i in range(2)) / 6
    outside = sum((outputs[0, c, i, 1 - i] - targets[0, c, i, 1 - i]) ** 2 for c in range(3) for i in range(2)) / 6
    assert torch.allclose(reconstruction_mse(outputs, targets, region), inside)
    assert torch.allclose(reconstruction_mse(outputs, targets, region, outside_weight=0.1), inside + 0.1 * outside)


def test_gaussian_kl_is_the_closed_form_summed_over_dimensions_and_averaged_over_the_batch():
    mean = torch.tensor([[0.5, -1.0], [0.0, 2.0]])
    log_var = torch.tensor([[0.0, math.log(4.0)], [math.log(0.25), 0.0]])
    # KL(N(m, s^2) || N(0, 1)) = log(1 / s) + (s^2 + m^2) / 2 - 1 / 2 per dimension
    per_dim = [[math.log(1 / math.exp(0.5 * lv)) + (math.exp(lv) + m**2) / 2 - 0.5 for m, lv in zip(mr, lr)]
               for mr, lr in zip(mean.tolist(), log_var.tolist())]
    expected = sum(sum(row) for row in per_dim) / 2
    assert math.isclose(gaussian_kl(mean, log_var).item(), expected, rel_tol=1e-6)


def test_gaussian_kl_is_zero_at_the_prior():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_rebalanced_cross_entropy_weights_each_pixels_soft_cross_entropy():
    logits = torch.randn(1, 3, 1, 2)  # 3 bins, 2 pixels
    targets = torch.tensor([[0.7, 0.0], [0.3, 0.0], [0.0, 1.0]]).view(1, 3, 1, 2)
    weights = torch.tensor([2.0, 0.5]).view(1, 1, 2)
    expected = 0.0
    for x in range(2):
        scores = logits[0, :, 0, x]
        log_probs = [scores[q] - torch.log(torch.exp(scores).sum()) for q in range(3)]
        expected += weights[0, 0, x] * -sum(targets[0, q, 0, x] * log_probs[q] for q in range(3))
    assert torch.allclose(rebalanced_cross_entropy(logits, targets, weights), expected / 2)


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_discriminator_loss_is_the_binary_cross_entropy_of_real_and_fake():
    real, fake = torch.tensor([1.5, -0.5]), torch.tensor([0.2, -2.0])
    expected = (-sum(math.log(sigmoid(r)) for r in real.tolist()) / 2
                - sum(math.log(1 - sigmoid(f)) for f in fake.tolist()) / 2)
    assert math.isclose(discriminator_loss(real, fake).item(), expected, rel_tol=1e-6)


def test_generator_loss_is_the_non_saturating_minus_log_d_of_fakes():
    fake = torch.tensor([0.2, -2.0])
    expected = -sum(math.log(sigmoid(f)) for f in fake.tolist()) / 2
    assert math.isclose(generator_loss(fake).item(), expected, rel_tol=1e-6)
