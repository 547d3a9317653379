"""Patch grids, masks, decoders, the EMA helper and the queue that methods share."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ssltrain.errors import UserError
from ssltrain.parts.decoders import mirror_decoder, upsampling_decoder
from ssltrain.encoders.small import small_cnn
from ssltrain.pretext.masking import block_mask, random_token_mask
from ssltrain.parts.momentum import cosine_momentum, ema_update, frozen_copy
from ssltrain.pretext.patches import grid_tiles, patchify, sliding_patches, unpatchify
from ssltrain.parts.queue import FeatureQueue


def test_patchify_lays_patches_out_row_major_and_unpatchify_inverts_it():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    patches = patchify(images, 4)  # [2, 4, 48]
    assert patches.shape == (2, 4, 48)
    top_right = images[0, :, :4, 4:].permute(1, 2, 0).reshape(-1)  # (y, x, channel) order
    assert torch.equal(patches[0, 1], top_right)
    assert torch.equal(unpatchify(patches, 4), images)


def test_sliding_patches_overlap_by_size_minus_stride():
    images = torch.arange(16.0).reshape(1, 1, 4, 4)
    patches = sliding_patches(images, size=2, stride=1)  # [1, 3, 3, 1, 2, 2]
    assert patches.shape == (1, 3, 3, 1, 2, 2)
    assert torch.equal(patches[0, 1, 2, 0], images[0, 0, 1:3, 2:4])


def test_grid_tiles_come_from_their_own_cell():
    # each pixel holds its cell's index, so a tile's pixels all equal its cell's index
    cell, grid = 10, 3
    cells = torch.arange(grid * grid, dtype=torch.float32).reshape(grid, grid)
    images = cells.repeat_interleave(cell, 0).repeat_interleave(cell, 1).expand(4, 3, 30, 30)
    tiles = grid_tiles(images, grid=grid, tile=7, generator=torch.Generator().manual_seed(0))
    assert tiles.shape == (4, 9, 3, 7, 7)
    for k in range(9):
        assert (tiles[:, k] == k).all()


def test_grid_tiles_jitter_differs_between_samples():
    images = torch.rand(1, 3, 30, 30).expand(64, 3, 30, 30)
    tiles = grid_tiles(images, grid=3, tile=6, generator=torch.Generator().manual_seed(0))
    assert len({tiles[i, 0].sum().item() for i in range(64)}) > 1


def test_random_token_mask_hides_the_ratio_and_keep_lists_the_visible_tokens():
    mask = random_token_mask(batch=5, tokens=64, ratio=0.75, device=torch.device("cpu"),
                             generator=torch.Generator().manual_seed(0))
    assert mask.keep.shape == (5, 16)
    assert (mask.masked.sum(1) == 48).all()
    assert (mask.masked.gather(1, mask.keep) == 0).all()
    assert len({tuple(row.tolist()) for row in mask.keep.sort(1).values}) == 5, "masks differ per sample"


def test_block_mask_centre_and_random_blocks_have_the_asked_area():
    centre = block_mask(2, 32, 32, block=16, center=True)
    assert centre.shape == (2, 1, 32, 32) and centre.sum().item() == 2 * 256
    assert centre[0, 0, 8:24, 8:24].all()
    random = block_mask(100, 32, 32, block=8, count=1, generator=torch.Generator().manual_seed(0))
    assert (random.flatten(1).sum(1) == 64).all()


def test_mirror_decoder_maps_the_feature_map_back_to_image_size():
    encoder = small_cnn(channels=(8, 16, 32))
    decoder = mirror_decoder(encoder, 32)
    images = torch.randn(2, 3, 32, 32)
    assert decoder(encoder.forward_features(images)).shape == (2, 3, 32, 32)


def test_ema_update_moves_the_copy_by_one_minus_momentum():
    online = nn.Linear(3, 2)
    target = frozen_copy(online)
    assert not any(p.requires_grad for p in target.parameters())
    with torch.no_grad():
        online.weight.add_(1.0)
    before = target.weight.clone()
    ema_update(target, online, momentum=0.9)
    assert torch.allclose(target.weight, 0.9 * before + 0.1 * online.weight)


def test_cosine_momentum_goes_from_base_to_one():
    assert cosine_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert cosine_momentum(0.99, 100, 100) == pytest.approx(1.0)
    assert cosine_momentum(0.99, 50, 100) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 2) + 1) / 2)


def test_queue_overwrites_its_oldest_entries_and_wraps_around():
    queue = FeatureQueue(size=5, dim=2, normalize=False)
    queue.push(torch.ones(3, 2), labels=torch.tensor([1, 1, 1]))
    queue.push(torch.full((3, 2), 2.0), labels=torch.tensor([2, 2, 2]))
    assert queue.features[:, 0].tolist() == [2.0, 1.0, 1.0, 2.0, 2.0]
    assert queue.labels.tolist() == [2, 1, 1, 2, 2]
    assert int(queue.pointer) == 1


def test_a_decoder_that_cannot_reach_the_image_size_by_doubling_names_a_size_that_works():
    with pytest.raises(UserError) as error:
        upsampling_decoder(in_channels=8, in_size=5, image_size=36)
    assert str(error.value).endswith("use dataset.image_size=40")
    assert upsampling_decoder(in_channels=8, in_size=5, image_size=40)(torch.zeros(1, 8, 5, 5)).shape == (1, 3, 40, 40)
