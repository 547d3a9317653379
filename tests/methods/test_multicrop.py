"""Multi-crop: the augmentation's views, which views are global, ViTs on local crops."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli, smoke
from ssltrain.cli import compose_settings
from ssltrain.augment.batched import BatchAugment
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.encoders.vit import vit_tiny
from ssltrain.methods.families.multicrop import check_crops, crop_encoder, resized_position_embedding, vit_class_token


def multicrop_views(backend: str, images: torch.Tensor) -> list[torch.Tensor]:
    """The multicrop preset's views of uint8 images [B, H, W, 3], made by one backend."""
    views = compose_settings(["augmentation=multicrop"]).augmentation.views
    stats = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
    if backend == "gpu":
        return BatchAugment(views, image_size=32, **stats)(images, torch.Generator().manual_seed(0))
    transform = MultiViewTransform(views, image_size=32, **stats)
    per_image = [transform(image.permute(2, 0, 1)) for image in images]  # B x V x [3, h, w]
    return [torch.stack(crops) for crops in zip(*per_image)]


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
def test_multicrop_augmentation_yields_two_global_then_six_local_views_with_either_backend(backend):
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    crops = multicrop_views(backend, images)
    assert [tuple(crop.shape) for crop in crops] == [(3, 3, 32, 32)] * 2 + [(3, 3, 16, 16)] * 6
    check_crops(crops)


@pytest.mark.parametrize("backend", ["cpu", "gpu"])
@pytest.mark.parametrize("method", ["swav", "dino"])
def test_multicrop_methods_train_end_to_end_with_either_augmentation_backend(method, backend, tmp_path):
    small_heads = {"swav": ["method.proj_hidden_dim=64", "method.num_prototypes=20", "method.queue_size=0"],
                   "dino": ["method.hidden_dim=64", "method.bottleneck_dim=16", "method.out_dim=32"]}[method]
    result = run_cli(smoke(f"method={method}", f"augmentation.backend={backend}", "trainer.epochs=1",
                           "hydra.run.dir=run", *small_heads), tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"augmentation backend: {backend}" in result.stdout + result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["method"] == method and 0.0 <= results["knn_top1"] <= 1.0


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
