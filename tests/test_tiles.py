"""Tile preprocessing and the siamese encoder pass shared by the pretext tasks."""

import pytest
import torch
from torch import nn

from ssltrain.encoders.small import small_cnn
from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.pretext.tiles import check_tile_fits, drop_colors, encode_tiles, encoder_input_size, standardize_tiles


def test_standardized_tiles_have_zero_mean_and_unit_std_each():
    tiles = torch.rand(2, 9, 3, 8, 8) * 5 + torch.arange(9.0).view(1, 9, 1, 1, 1)
    out = standardize_tiles(tiles)
    assert torch.allclose(out.mean(dim=(2, 3, 4)), torch.zeros(2, 9), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3, 4)), torch.ones(2, 9), atol=1e-4)


def test_color_dropping_keeps_one_channel_per_tile_and_fills_the_others_with_faint_noise():
    tiles = torch.full((4, 9, 3, 6, 6), 7.0)
    out = drop_colors(tiles, noise_std=0.01, generator=torch.Generator().manual_seed(0))
    kept = (out == 7.0).flatten(3).all(dim=3)  # [4, 9, 3]
    assert (kept.sum(dim=2) == 1).all()
    dropped = out[~kept]  # [4 * 9 * 2, 6, 6]
    assert dropped.abs().max() < 0.1 and dropped.std() > 0.005
    assert len(set(kept.float().argmax(dim=2).flatten().tolist())) == 3, "the kept channel varies"


def test_encode_tiles_runs_one_encoder_over_every_tile_and_keeps_their_order():
    encoder = small_cnn(channels=(4, 8)).eval()
    tiles = torch.randn(2, 3, 3, 8, 8)
    features = encode_tiles(encoder, tiles, size=8)  # [2, 3, 8]
    assert features.shape == (2, 3, 8)
    assert torch.allclose(features[1, 2], encoder(tiles[1, 2:3])[0], atol=1e-6)


def test_encode_tiles_resizes_tiles_to_the_asked_side():
    sizes = []

    class Recorder(nn.Module):
        def forward(self, x):
            sizes.append(tuple(x.shape))
            return x.mean(dim=(2, 3))

    encode_tiles(Recorder(), torch.randn(2, 9, 3, 8, 8), size=32)
    assert sizes == [(18, 3, 32, 32)]


def test_cnns_get_tiles_as_cut_and_vits_at_the_next_multiple_of_their_patch():
    vit, cnn = vit_tiny(image_size=32, depth=1), small_cnn(channels=(4, 8))  # the ViT: 4 px patches
    assert encoder_input_size(cnn, tile=10, requested=None) == 10
    assert encoder_input_size(vit, tile=8, requested=None) == 8
    assert encoder_input_size(vit, tile=10, requested=None) == 12


def test_a_requested_tile_input_size_wins_if_the_encoder_takes_it():
    vit, cnn = vit_tiny(image_size=32, depth=1), small_cnn(channels=(4, 8))
    assert encoder_input_size(cnn, tile=8, requested=18) == 18
    assert encoder_input_size(vit, tile=8, requested=16) == 16
    with pytest.raises(UserError) as error:
        encoder_input_size(vit, tile=8, requested=18)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith("method.tile_input_size=18: 18 px inputs do not fit the ViT's 4 px patches")


@pytest.mark.parametrize("tile", [11, 0])
def test_tiles_that_do_not_fit_their_cells_are_a_one_line_error_naming_valid_sides(tile):
    with pytest.raises(UserError) as error:
        check_tile_fits(tile, grid=3, image_size=32)
    assert str(error.value) == (f"method.tile={tile} does not fit the 10 px cells of a 3x3 grid on 32 px images; "
                                "use 1 <= method.tile <= 10")
