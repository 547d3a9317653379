"""Autoencoder and denoising autoencoder: inputs, targets, corruptions, loss, pictures."""

from __future__ import annotations

import pytest
import torch

from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.methods.autoencoder import Autoencoder, DenoisingAutoencoder

from pretext_testing import assert_picture_grids

MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.3)


def build(cls=Autoencoder, **options):
    torch.manual_seed(0)
    return cls(small_cnn(channels=(8, 16)), image_size=16, mean=MEAN, std=STD, **options)


def normalised(pixels: torch.Tensor) -> torch.Tensor:
    return (pixels - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def batch_of(images: torch.Tensor) -> Batch:
    return Batch(views=[images], labels=torch.zeros(len(images), dtype=torch.long))


def test_the_autoencoder_reconstructs_the_view_from_itself():
    images = normalised(torch.rand(2, 3, 16, 16))
    inputs, region = build().corrupt(images)
    assert inputs is images and region is None


def test_the_autoencoder_loss_is_the_mean_squared_error_to_the_view():
    method = build()
    images = normalised(torch.rand(2, 3, 16, 16))
    loss = method.training_step(batch_of(images))["loss"]
    outputs = method.decoder(method.encoder.forward_features(images))
    assert loss.item() == pytest.approx(((outputs - images) ** 2).mean().item(), rel=1e-5)


def test_masking_noise_blacks_out_the_fraction_of_pixels_in_pixel_space():
    method = build(DenoisingAutoencoder, noise="masking", level=0.25)
    pixels = torch.rand(4, 3, 16, 16) * 0.9 + 0.1
    inputs, _ = method.corrupt(normalised(pixels))
    black = (method.to_pixels(inputs).abs() < 1e-6).all(dim=1)  # [B, H, W]
    assert (black.flatten(1).sum(1) == 64).all()
    kept = ~black.unsqueeze(1).expand_as(pixels)
    assert torch.allclose(method.to_pixels(inputs)[kept], pixels[kept], atol=1e-6)


def test_gaussian_noise_has_the_level_as_its_deviation_in_pixel_units():
    method = build(DenoisingAutoencoder, noise="gaussian", level=0.1)
    images = normalised(torch.rand(32, 3, 16, 16) * 0.5 + 0.25)
    inputs, _ = method.corrupt(images)
    noise = (inputs - images) * torch.tensor(STD).view(1, 3, 1, 1)  # back to pixel units
    assert abs(noise.std().item() - 0.1) < 0.003 and abs(noise.mean().item()) < 0.003


def test_the_denoising_loss_compares_the_reconstruction_of_the_noisy_view_with_the_clean_one():
    method = build(DenoisingAutoencoder, noise="salt_pepper", level=0.2)
    images = normalised(torch.rand(2, 3, 16, 16))
    torch.manual_seed(3)
    loss = method.training_step(batch_of(images))["loss"]
    torch.manual_seed(3)
    noisy, _ = method.corrupt(images)
    assert not torch.allclose(noisy, images)
    outputs = method.decoder(method.encoder.forward_features(noisy))
    assert loss.item() == pytest.approx(((outputs - images) ** 2).mean().item(), rel=1e-5)


def test_an_unknown_noise_or_a_fraction_above_one_is_refused():
    with pytest.raises(UserError, match="method.noise='speckle' is not valid"):
        build(DenoisingAutoencoder, noise="speckle")
    with pytest.raises(UserError, match="must be in \\[0, 1\\]"):
        build(DenoisingAutoencoder, noise="masking", level=1.5)


def test_images_show_inputs_outputs_and_targets_in_the_unit_range():
    method = build(DenoisingAutoencoder).eval()
    images = normalised(torch.rand(4, 3, 16, 16))
    with torch.no_grad():
        grids = method.images(batch_of(images))
    assert set(grids) == {"inputs", "outputs", "targets"}
    assert torch.allclose(grids["targets"], method.to_pixels(images))
    assert_picture_grids(grids, (4, 3, 16, 16))
