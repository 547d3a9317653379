"""sRGB <-> Lab conversion and the input corruptions of the reconstruction methods."""

from __future__ import annotations

import pytest
import torch

from ssltrain.pretext.color import lab_to_rgb, rgb_to_lab
from ssltrain.pretext.corruptions import down_up_sample, gaussian_noise, masking_noise, salt_and_pepper_noise


def pixel(r: float, g: float, b: float) -> torch.Tensor:
    return torch.tensor([r, g, b]).view(1, 3, 1, 1)


def test_rgb_to_lab_and_back_is_exact_to_1e_4_on_random_colours():
    rgb = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert (lab_to_rgb(rgb_to_lab(rgb)) - rgb).abs().max() < 1e-4


@pytest.mark.parametrize("rgb,lab", [
    ((1.0, 1.0, 1.0), (100.0, 0.0, 0.0)),  # the D65 white
    ((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)),
    ((1.0, 0.0, 0.0), (53.24, 80.09, 67.20)),  # the sRGB primaries' published Lab values
    ((0.0, 1.0, 0.0), (87.73, -86.18, 83.18)),
    ((0.0, 0.0, 1.0), (32.30, 79.19, -107.86)),
])
def test_known_colours_map_to_their_lab_values(rgb, lab):
    assert torch.allclose(rgb_to_lab(pixel(*rgb)).flatten(), torch.tensor(lab), atol=0.01)


def test_greys_have_no_chroma():
    greys = torch.linspace(0, 1, 11).view(1, 1, 11, 1).expand(1, 3, 11, 1)
    assert rgb_to_lab(greys)[:, 1:].abs().max() < 1e-3


def test_gaussian_noise_adds_zero_mean_noise_of_the_asked_deviation():
    clean = torch.rand(64, 3, 32, 32)
    noise = gaussian_noise(clean, 0.2) - clean
    assert abs(noise.mean().item()) < 0.005
    assert abs(noise.std().item() - 0.2) < 0.005


def test_masking_noise_blacks_out_exactly_the_fraction_of_pixels_in_each_image():
    clean = torch.rand(8, 3, 32, 32) * 0.9 + 0.1  # no black pixel to begin with
    noisy = masking_noise(clean, 0.25)
    black = (noisy == 0).all(dim=1)  # [B, H, W]
    assert (black.flatten(1).sum(1) == 256).all()
    assert torch.equal(noisy[~black.unsqueeze(1).expand_as(noisy)], clean[~black.unsqueeze(1).expand_as(clean)])


def test_salt_and_pepper_sets_the_fraction_of_pixels_to_black_or_white_evenly():
    clean = torch.rand(64, 3, 32, 32) * 0.8 + 0.1  # no black or white pixel to begin with
    noisy = salt_and_pepper_noise(clean, 0.1)
    white, black = (noisy == 1).all(dim=1), (noisy == 0).all(dim=1)  # [B, H, W]
    assert ((white | black).flatten(1).sum(1) == round(0.1 * 1024)).all()
    assert abs(white.float().sum() / (white | black).float().sum() - 0.5) < 0.05
    untouched = ~(white | black).unsqueeze(1).expand_as(noisy)
    assert torch.equal(noisy[untouched], clean[untouched])


def test_down_up_sampling_is_the_upsampled_block_average():
    images = torch.rand(2, 3, 8, 8)
    low = torch.zeros(2, 3, 4, 4)
    for i in range(4):
        for j in range(4):
            low[:, :, i, j] = images[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean(dim=(2, 3))
    expected = torch.nn.functional.interpolate(low, size=(8, 8), mode="bilinear", align_corners=False)
    assert torch.allclose(down_up_sample(images, 2, "bilinear"), expected, atol=1e-6)


def test_down_up_sampling_removes_detail_finer_than_the_factor():
    checkerboard = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2  # period 2 pixels
    images = checkerboard.float().expand(1, 3, 8, 8)
    assert torch.allclose(down_up_sample(images, 2, "bicubic"), torch.full((1, 3, 8, 8), 0.5), atol=1e-6)
