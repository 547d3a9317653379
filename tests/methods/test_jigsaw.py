"""Jigsaw: the network sees an image's tiles in the order of the permutation it must name."""

import pytest
import torch

from kit import views_batch
from ssltrain.data.batch import Batch
from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.methods.jigsaw import Jigsaw, shuffled_tiles
from ssltrain.pretext.permutations import max_hamming_permutations

from pretext_testing import RecordingEncoder, cell_coded_images


def test_tiles_come_in_the_order_of_the_labelled_permutation():
    perms = max_hamming_permutations(16)
    tiles, labels = shuffled_tiles(cell_coded_images(32), perms, grid=3, tile=8, generator=torch.Generator().manual_seed(0))
    assert tiles.shape == (32, 9, 3, 8, 8) and labels.shape == (32,)
    assert len(set(labels.tolist())) > 1, "labels vary between images"
    for b in range(32):
        for position in range(9):
            assert (tiles[b, position] == perms[labels[b], position]).all(), (b, position)


def test_the_encoder_is_fed_the_shuffled_tiles_of_every_image():
    recording_encoder = RecordingEncoder()
    method = Jigsaw(recording_encoder, image_size=32, num_permutations=16, standardize=False, head_hidden_dims=())
    images = cell_coded_images(6)
    torch.manual_seed(3)
    method.training_step(Batch(views=[images], labels=torch.full((6,), -1)))
    torch.manual_seed(3)
    expected, _ = shuffled_tiles(images, method.permutations, grid=3, tile=8)
    assert torch.equal(recording_encoder.seen[-1], expected.flatten(0, 1))


def test_the_permutation_set_is_saved_with_the_weights():
    from ssltrain.encoders.small import small_cnn

    method = Jigsaw(small_cnn(channels=(8, 16)), image_size=32, num_permutations=16)
    assert torch.equal(method.state_dict()["permutations"], max_hamming_permutations(16))


@pytest.mark.parametrize("options,message", [
    ({"tile": 11}, "method.tile=11 does not fit the 10 px cells of a 3x3 grid on 32 px images; use 1 <= method.tile <= 10"),
    ({"grid": 1}, "method.grid=1 makes no puzzle; use method.grid >= 2"),
    ({"grid": 2, "num_permutations": 30}, "method.num_permutations=30 exceeds the 24 orders to choose from (of 2x2 tiles, "
                                          "method.permutation_candidates=20000); use method.num_permutations <= 24"),
])
def test_settings_that_make_no_puzzle_are_a_one_line_error_naming_valid_values(options, message):
    from ssltrain.encoders.small import small_cnn

    with pytest.raises(UserError) as error:
        Jigsaw(small_cnn(channels=(8, 16)), image_size=32, **options)
    assert str(error.value) == message


def test_a_vit_takes_8_px_tiles_as_cut_when_they_are_whole_patches():
    torch.manual_seed(0)
    method = Jigsaw(vit_tiny(image_size=32, depth=1), image_size=32, num_permutations=16, head_hidden_dims=())
    seen = []
    method.encoder.conv_proj.register_forward_pre_hook(lambda module, args: seen.append(tuple(args[0].shape)))
    method.training_step(views_batch([32], batch=2))
    assert seen == [(2 * 9, 3, 8, 8)]
