"""Colorization: ab quantisation, soft targets, class rebalancing and the grey input."""

from __future__ import annotations


import pytest
import torch

from ssltrain.pretext.ab_bins import annealed_mean, gamut_bins, nearest_bin, rebalancing_weights, soft_encode
from ssltrain.pretext.color import rgb_to_lab
from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn
from ssltrain.methods.colorization import AB_SCALE, Colorization

from pretext_testing import assert_picture_grids

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


@pytest.fixture(scope="module")
def centres() -> torch.Tensor:
    return gamut_bins(10.0)


def method(**options) -> Colorization:
    torch.manual_seed(0)
    return Colorization(small_cnn(channels=(8, 16)), image_size=16, mean=MEAN, std=STD, **options)


def normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_gamut_bins_are_grid_points_covering_every_srgb_colour(centres):
    assert 250 <= len(centres) <= 313  # the paper counts 313 for a slightly larger gamut
    assert torch.equal(centres % 10, torch.zeros_like(centres))
    ab = rgb_to_lab(torch.rand(1, 3, 64, 64))[:, 1:]  # [1, 2, 64, 64]
    nearest = centres[nearest_bin(ab, centres)]  # [1, 64, 64, 2]
    assert (nearest.permute(0, 3, 1, 2) - ab).abs().max() <= 5 + 1e-3


def test_soft_encoding_spreads_each_pixel_over_its_nearest_bins_by_a_gaussian(centres):
    ab = torch.tensor([3.0, -4.0]).view(1, 2, 1, 1)
    targets = soft_encode(ab, centres, neighbours=5, sigma=5.0)[0, :, 0, 0]  # [Q]
    distances = (centres - ab.view(1, 2)).norm(dim=1)
    nearest = distances.argsort()[:5]
    kernel = torch.exp(-distances[nearest] ** 2 / (2 * 5.0**2))
    assert torch.allclose(targets[nearest], kernel / kernel.sum(), atol=1e-6)
    assert targets.sum().item() == pytest.approx(1.0) and (targets > 0).sum() == 5


def test_rebalancing_weights_average_to_one_under_the_smoothed_distribution_and_favour_rare_bins():
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0], [0.0, 50.0]])  # far apart: smoothing barely mixes them
    distribution = torch.tensor([0.8, 0.15, 0.05])
    weights = rebalancing_weights(distribution, centres, mix=0.5, sigma=5.0)
    assert torch.dot(weights, distribution).item() == pytest.approx(1.0, abs=1e-4)
    assert weights[2] > weights[1] > weights[0]
    # eq. 4 by hand: w ∝ 1 / (0.5 p + 0.5 / 3)
    raw = [1 / (0.5 * p + 0.5 / 3) for p in distribution.tolist()]
    scale = sum(p * w for p, w in zip(distribution.tolist(), raw))
    assert torch.allclose(weights, torch.tensor(raw) / scale, atol=1e-4)


def test_rebalancing_with_a_mix_of_one_weighs_every_bin_equally():
    centres = torch.tensor([[0.0, 0.0], [50.0, 0.0]])
    assert torch.allclose(rebalancing_weights(torch.tensor([0.9, 0.1]), centres, 1.0, 5.0), torch.ones(2))


def test_annealed_mean_is_the_mean_at_temperature_one_and_nears_the_mode_when_cold():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 20.0]])
    probs = torch.tensor([0.2, 0.5, 0.3])
    logits = probs.log().view(1, 3, 1, 1)
    mean = (probs.view(3, 1) * centres).sum(0)
    assert torch.allclose(annealed_mean(logits, centres, 1.0).flatten(), mean, atol=1e-5)
    assert torch.allclose(annealed_mean(logits, centres, 0.01).flatten(), centres[1], atol=1e-3)


def test_the_encoder_sees_a_grey_image_with_the_views_lightness():
    colour = method()
    pixels = torch.rand(2, 3, 16, 16) * 0.9 + 0.05
    inputs, lightness, ab = colour.split(normalised(pixels))
    grey = colour.to_pixels(inputs)
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-5) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-5)
    lab = rgb_to_lab(grey)
    assert torch.allclose(lab[:, :1], rgb_to_lab(pixels)[:, :1], atol=1e-2)
    assert lab[:, 1:].abs().max() < 1e-2
    assert torch.allclose(ab, rgb_to_lab(pixels)[:, 1:], atol=1e-3)


def test_the_bin_distribution_estimate_is_the_first_histogram_then_a_moving_average():
    colour = method(prior_momentum=0.9)
    objective = colour.objective
    first = torch.zeros(1, 2, 2, dtype=torch.long)  # every pixel in bin 0
    second = torch.ones(1, 2, 2, dtype=torch.long)  # every pixel in bin 1
    assert objective.update_prior(first)[0].item() == pytest.approx(1.0)
    estimate = objective.update_prior(second)
    # bias-corrected EMA: (0.9 * 0.1 * [1, 0] + 0.1 * [0, 1]) / (1 - 0.9^2)
    assert estimate[0].item() == pytest.approx(0.09 / 0.19) and estimate[1].item() == pytest.approx(0.1 / 0.19)


def test_classification_loss_is_the_rebalanced_cross_entropy_of_the_soft_targets():
    colour = method(grid=10.0, sigma=5.0)  # the paper's bins
    images = normalised(torch.rand(2, 3, 16, 16))
    torch.manual_seed(1)
    loss = colour.training_step(Batch(views=[images], labels=torch.zeros(2, dtype=torch.long)))["loss"]
    inputs, _, ab = colour.split(images)
    centres = colour.objective.centres
    logits = colour.reconstruct(inputs)  # [B, Q, H, W]
    targets = soft_encode(ab, centres, 5, 5.0)
    bins = nearest_bin(ab, centres)
    histogram = torch.bincount(bins.flatten(), minlength=len(centres)).float() / bins.numel()
    weights = rebalancing_weights(histogram, centres, 0.5, 5.0)[bins]  # the first batch is the whole estimate
    per_pixel = -(targets * logits.log_softmax(dim=1)).sum(dim=1)
    assert loss.item() == pytest.approx((weights * per_pixel).mean().item(), rel=1e-4)


def test_regression_loss_is_the_squared_error_on_scaled_ab():
    colour = method(loss="regression")
    images = normalised(torch.rand(2, 3, 16, 16))
    loss = colour.training_step(Batch(views=[images], labels=torch.zeros(2, dtype=torch.long)))["loss"]
    inputs, _, ab = colour.split(images)
    expected = ((colour.reconstruct(inputs) - ab / AB_SCALE) ** 2).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("loss", ["classification", "regression"])
def test_images_show_grey_inputs_coloured_outputs_and_targets_in_the_unit_range(loss):
    colour = method(loss=loss).eval()
    with torch.no_grad():
        grids = colour.images(Batch(views=[normalised(torch.rand(4, 3, 16, 16))], labels=torch.zeros(4)))
    assert set(grids) == {"inputs", "outputs", "targets"}
    assert_picture_grids(grids, (4, 3, 16, 16))
