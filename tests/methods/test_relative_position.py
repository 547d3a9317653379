"""Context prediction: labels name where the second tile sits relative to the centre."""

import pytest
import torch

from ssltrain.data.batch import Batch
from ssltrain.encoders.small import small_cnn
from ssltrain.errors import UserError
from ssltrain.methods.relative_position import OFFSETS, RelativePosition, neighbour_pairs

from pretext_testing import RecordingEncoder, cell_coded_images


def test_each_pair_labels_the_offset_of_its_neighbour_from_the_centre():
    cell_features = torch.arange(9.0).reshape(1, 9, 1).expand(2, -1, -1)  # feature = cell index
    pairs, labels = neighbour_pairs(cell_features)
    assert pairs.shape == (2, 8, 2) and labels.shape == (2, 8)
    assert (pairs[..., 0] == 4).all(), "the first half is the centre cell's features"
    for b in range(2):
        for k in range(8):
            cell = int(pairs[b, k, 1])
            assert (cell // 3 - 1, cell % 3 - 1) == OFFSETS[labels[b, k]], (b, k)


def test_the_encoder_is_fed_the_nine_tiles_of_every_image():
    recording_encoder = RecordingEncoder()
    method = RelativePosition(recording_encoder, image_size=32, standardize=False, head_hidden_dims=())
    method.training_step(Batch(views=[cell_coded_images(6)], labels=torch.full((6,), -1)))
    seen = recording_encoder.seen[-1]  # [6 * 9, 3, 8, 8]
    assert seen.shape == (54, 3, 8, 8)
    cells = seen[:, 0, 0, 0].reshape(6, 9)
    assert (cells == torch.arange(9.0)).all(), "each image's tiles come in row-major cell order"
    assert (seen == seen[:, :1, :1, :1]).all(), "each tile is cut from inside one cell"


def test_tiles_larger_than_their_cells_are_a_one_line_error_naming_valid_sides():
    with pytest.raises(UserError) as error:
        RelativePosition(small_cnn(channels=(8, 16)), image_size=32, tile=11)
    assert str(error.value) == "method.tile=11 does not fit the 10 px cells of a 3x3 grid on 32 px images; use 1 <= method.tile <= 10"


def test_color_dropping_reaches_the_encoder():
    recording_encoder = RecordingEncoder()
    method = RelativePosition(recording_encoder, image_size=32, standardize=False, color_dropping=True)
    images = torch.full((4, 3, 32, 32), 5.0)
    method.training_step(Batch(views=[images], labels=torch.full((4,), -1)))
    seen = recording_encoder.seen[-1]  # [36, 3, 8, 8]
    kept = (seen == 5.0).flatten(2).all(dim=2)  # [36, 3]: channels left intact
    assert (kept.sum(dim=1) == 1).all()
