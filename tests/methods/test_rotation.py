"""Rotation prediction: targets name the rotation applied; the method learns."""

import torch

from ssltrain.methods.rotation import all_rotations


def test_rotating_back_by_the_label_recovers_the_original_image():
    images = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    rotated, labels = all_rotations(images)  # [20, 3, 8, 8], [20]
    assert rotated.shape == (20, 3, 8, 8)
    assert sorted(labels.tolist()) == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for n in range(len(rotated)):
        back = torch.rot90(rotated[n], -int(labels[n]), dims=(1, 2))
        assert torch.equal(back, images[n % 5]), n


def test_every_image_appears_in_all_four_rotations_and_they_differ():
    images = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    rotated, labels = all_rotations(images)
    for n in range(2):
        copies = [rotated[k] for k in range(n, len(rotated), 2)]  # the four copies of image n
        assert [int(labels[k]) for k in range(n, len(rotated), 2)] == [0, 1, 2, 3]
        assert all(not torch.equal(a, b) for i, a in enumerate(copies) for b in copies[i + 1:])


def test_label_one_is_a_counter_clockwise_quarter_turn():
    image = torch.zeros(1, 1, 3, 3)
    image[0, 0, 0, 0] = 1  # top-left
    rotated, labels = all_rotations(image)
    assert labels[1] == 1 and rotated[1, 0, 2, 0] == 1  # now bottom-left
