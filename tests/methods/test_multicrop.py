"""Multi-crop: the augmentation's views, which views are global, ViTs on local crops."""

from __future__ import annotations

import pytest
import torch

from ssltrain.cli import compose_settings
from ssltrain.data.transforms import MultiViewTransform
from ssltrain.encoders.vit import vit_tiny
from ssltrain.methods.multicrop import check_crops, crop_encoder, resized_position_embedding, vit_class_token


def test_multicrop_augmentation_yields_two_global_and_six_local_views_of_the_configured_sizes():
    views = compose_settings(["augmentation=multicrop"]).augmentation.views
    transform = MultiViewTransform(views, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3)
    crops = transform(torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8))
    assert [tuple(crop.shape) for crop in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)] * 6


@pytest.mark.parametrize("sizes", [[32], [16, 32, 32], [32, 32, 48]])
def test_views_that_do_not_start_with_two_largest_crops_are_rejected(sizes):
    with pytest.raises(ValueError, match="global crops"):
        check_crops([torch.zeros(1, 3, size, size) for size in sizes])


def test_two_global_crops_and_smaller_local_crops_are_accepted():
    check_crops([torch.zeros(1, 3, size, size) for size in (32, 32, 16, 16)])


def test_vit_path_for_other_sizes_reproduces_the_vit_forward_at_its_own_size():
    torch.manual_seed(0)
    vit = vit_tiny(image_size=32, depth=2).eval()
    images = torch.randn(2, 3, 32, 32)
    assert torch.allclose(vit_class_token(vit, images), vit(images), atol=1e-5)


def test_vit_encodes_local_crops_through_resized_position_embeddings():
    torch.manual_seed(0)
    vit = vit_tiny(image_size=32, depth=2)
    assert crop_encoder(vit)(torch.randn(2, 3, 16, 16)).shape == (2, 192)
    embedding = vit.encoder.pos_embedding  # [1, 1 + 8*8, 192]
    resized = resized_position_embedding(embedding, 4, 4)
    assert resized.shape == (1, 1 + 16, 192)
    assert torch.equal(resized[:, 0], embedding[:, 0]), "the class token's embedding is kept"


def test_a_crop_that_is_not_a_whole_number_of_patches_is_a_clear_error():
    vit = vit_tiny(image_size=32, depth=2)
    with pytest.raises(ValueError, match="multiple of the ViT's 4 px patches"):
        crop_encoder(vit)(torch.randn(1, 3, 18, 18))
