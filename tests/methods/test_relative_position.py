"""Context prediction: labels name where the second tile sits relative to the centre."""

import pytest
import torch

from ssltrain.data.batch import Batch
from ssltrain.methods.relative_position import OFFSETS, RelativePosition, context_pairs

from pretext_testing import RecordingEncoder, cell_coded_images


def test_labels_match_the_offset_of_the_neighbour_from_the_centre():
    pairs, labels = context_pairs(cell_coded_images(64), tile=8, generator=torch.Generator().manual_seed(0))
    assert pairs.shape == (64, 2, 3, 8, 8)
    assert set(labels.tolist()) == set(range(8)), "all eight positions are drawn"
    assert (pairs[:, 0] == 4).all(), "the first tile is the centre cell"
    for b in range(64):
        cell = int(pairs[b, 1, 0, 0, 0])
        assert (pairs[b, 1] == cell).all(), "the neighbour is cut from one cell"
        assert (cell // 3 - 1, cell % 3 - 1) == OFFSETS[labels[b]], b


def test_the_encoder_is_fed_the_centre_and_neighbour_of_every_image():
    recording_encoder = RecordingEncoder()
    method = RelativePosition(recording_encoder, image_size=32, standardize=False, head_hidden_dims=())
    images = cell_coded_images(6)
    torch.manual_seed(3)
    method.training_step(Batch(views=[images], labels=torch.full((6,), -1)))
    torch.manual_seed(3)
    expected, _ = context_pairs(images, tile=8)
    assert torch.equal(recording_encoder.seen[-1], expected.flatten(0, 1))


def test_color_dropping_reaches_the_encoder():
    recording_encoder = RecordingEncoder()
    method = RelativePosition(recording_encoder, image_size=32, standardize=False, color_dropping=True)
    images = torch.full((4, 3, 32, 32), 5.0)
    method.training_step(Batch(views=[images], labels=torch.full((4,), -1)))
    seen = recording_encoder.seen[-1]  # [8, 3, 8, 8]
    kept = (seen == 5.0).flatten(2).all(dim=2)  # [8, 3]: channels left intact
    assert (kept.sum(dim=1) == 1).all()


@pytest.mark.slow
@pytest.mark.learning
def test_relative_position_pretraining_beats_a_random_encoder_on_heldout_knn(learn):
    # NOT PASSING YET (27.6% at random init): 5 epochs -> 26.2% (the 8-way loss stays near
    # ln 8); 12 epochs -> 25.3%; 40 epochs -> 28.8%.
    result = learn(["method=relative_position"], epochs=5)
    assert result["gain"] >= 0.03, result
