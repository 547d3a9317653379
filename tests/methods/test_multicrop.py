"""Multi-crop: the augmentation's views, which views are global, ViTs on local crops."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import run_cli, smoke
from kit import MULTI_CROP, views_batch
from ssltrain.compose import compose_settings
from ssltrain.augment.batched import BatchAugment
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.encoders.small import small_cnn
from ssltrain.encoders.vit import vit_tiny
from ssltrain.errors import UserError
from ssltrain.methods.dino import DINO
from ssltrain.methods.swav import SwAV

SMALL_HEADS = {"swav": ["method.proj_hidden_dim=64", "method.num_prototypes=20", "method.queue_size=0"],
               "dino": ["method.hidden_dim=64", "method.bottleneck_dim=16", "method.out_dim=32"]}


def multicrop_method(name: str, encoder):
    """DINO or SwAV with small heads around `encoder`, and the module the encoder's features go to."""
    torch.manual_seed(0)
    if name == "dino":
        method = DINO(encoder, out_dim=32, hidden_dim=64, bottleneck_dim=16)
        return method, method.head
    method = SwAV(encoder, proj_hidden_dim=64, num_prototypes=20, queue_size=0)
    return method, method.projector


def multicrop_views(backend: str, images: torch.Tensor) -> list[torch.Tensor]:
    """The multicrop preset's views of uint8 images [B, H, W, 3], made by one backend."""
    views = compose_settings(["method=swav", "augmentation=multicrop"]).augmentation.views
    stats = dict(mean=(0.5,) * 3, std=(0.25,) * 3)
    if backend == "batched":
        return BatchAugment(views, image_size=32, **stats)(images, torch.Generator().manual_seed(0))
    transform = MultiViewTransform(views, image_size=32, **stats)
    per_image = [transform(image.permute(2, 0, 1)) for image in images]  # B x V x [3, h, w]
    return [torch.stack(crops) for crops in zip(*per_image)]


@pytest.mark.parametrize("backend", ["per_sample", "batched"])
def test_multicrop_augmentation_yields_two_global_then_six_local_views_with_either_backend(backend):
    images = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    crops = multicrop_views(backend, images)
    assert [tuple(crop.shape) for crop in crops] == [(3, 3, 32, 32)] * 2 + [(3, 3, 16, 16)] * 6


# the per-sample backend's views are tested above; its two end-to-end runs (20 s each) are slow
@pytest.mark.parametrize("backend", [pytest.param("per_sample", marks=pytest.mark.slow), "batched"])
@pytest.mark.parametrize("method", ["swav", "dino"])
def test_multicrop_methods_train_end_to_end_with_either_augmentation_backend(method, backend, tmp_path):
    result = run_cli(smoke(f"method={method}", f"augmentation.backend={backend}", "trainer.epochs=1",
                           "hydra.run.dir=run", *SMALL_HEADS[method]), tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"augmentation backend: {backend}" in result.stdout + result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["method"] == method and 0.0 <= results["knn_top1"] <= 1.0


@pytest.mark.parametrize("name", ["dino", "swav"])
@pytest.mark.parametrize("sizes", [[32, 16, 32], [16, 32, 32], [32, 32, 48], [32, 24, 16]])
def test_views_that_do_not_start_with_two_largest_crops_are_a_one_line_error(name, sizes):
    method, _ = multicrop_method(name, small_cnn(channels=(8, 16)))
    with pytest.raises(UserError) as error:
        method.check_views(sizes)
    assert "\n" not in str(error.value)
    assert "list the two global crops first in the augmentation's views" in str(error.value)


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_fewer_than_two_views_are_refused_by_the_base_check(name):
    method, _ = multicrop_method(name, small_cnn(channels=(8, 16)))
    with pytest.raises(UserError, match="trains on 2 or more views"):
        method.check_views([32])


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_two_global_crops_and_smaller_local_crops_of_whole_patches_are_accepted(name):
    method, _ = multicrop_method(name, vit_tiny(image_size=32, depth=1))
    method.check_views([32, 32, 16, 16, 8])


def test_a_crop_that_is_not_a_whole_number_of_vit_patches_fails_before_training_in_one_line(tmp_path):
    result = run_cli(smoke("method=dino", "encoder=vit_tiny", "encoder.depth=1", "augmentation.views.2.size=18",
                           *SMALL_HEADS["dino"]), tmp_path)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("ssltrain: error: method dino cannot encode view 2 (18 px): 18 px inputs do not fit "
                           "the ViT's 4 px patches; use a side that is a multiple of 4 (e.g. 16 or 20)"), line


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_a_mean_pooling_vit_gives_local_crops_the_mean_patch_token_too(name):
    method, features = multicrop_method(name, vit_tiny(image_size=32, depth=1, pool="mean"))
    seen = []
    features.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach()))
    batch = views_batch(MULTI_CROP, batch=4)
    method.eval()
    with torch.no_grad():
        method(batch)
        local = method.encoder.tokens(torch.cat(batch.views[2:]))[:, 1:].mean(dim=1)  # [8, 192]
    assert [tuple(x.shape) for x in seen[:2]] == [(8, 192), (8, 192)], "global crops together, then local crops"
    torch.testing.assert_close(seen[1], local, atol=1e-5, rtol=1e-5)
