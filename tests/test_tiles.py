"""Tile preprocessing and the siamese encoder pass shared by the pretext tasks."""

import torch
from torch import nn

from ssltrain.encoders.small import small_cnn
from ssltrain.pretext.tiles import drop_colors, encode_tiles, encoder_input_size, standardize_tiles


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


def test_vit_encoders_get_tiles_at_the_image_size_and_cnns_as_cut():
    vit, cnn = type("V", (), {"kind": "vit"})(), type("C", (), {"kind": "cnn"})()
    assert encoder_input_size(vit, image_size=32, tile=8, requested=None) == 32
    assert encoder_input_size(cnn, image_size=32, tile=8, requested=None) == 8
    assert encoder_input_size(cnn, image_size=32, tile=8, requested=16) == 16
