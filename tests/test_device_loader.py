"""The device-resident loader (augmentation.backend=batched) and the backend choice, on CPU."""

from __future__ import annotations

import json

import pytest
import torch

from ssltrain.compose import compose_settings
from ssltrain.augment.views import AugmentationConfig, ViewConfig
from ssltrain.data.device_loader import DeviceLoader
from ssltrain.data.images import ImageSet
from ssltrain.data.loader import PretrainLoader
from ssltrain.data.pipeline import pretrain_loader, select_backend
from ssltrain.augment.per_sample import MultiViewTransform
from ssltrain.errors import UserError
from conftest import SMOKE, run_cli

CPU = torch.device("cpu")
STATS = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
SIMCLR_VIEWS = [ViewConfig(count=2, crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8,
                           brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, grayscale_p=0.2)]


def _images(count: int = 40, size: int = 8) -> ImageSet:
    """Random pixels; the label is the image's index, so a batch names its images."""
    pixels = torch.randint(0, 256, (count, size, size, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    return ImageSet(labels=torch.arange(count), pixels=pixels)


def _loader(views=SIMCLR_VIEWS, rank: int = 0, world_size: int = 1, images: ImageSet | None = None) -> DeviceLoader:
    return DeviceLoader(images or _images(), views, 8, *STATS, batch_size=4, seed=3, device=CPU, rank=rank,
                        world_size=world_size)


def _batches(loader, epoch: int = 0, start_step: int = 0) -> list:
    return list(loader.epoch(epoch, start_step))


def test_without_augmentation_the_device_loader_yields_the_cpu_loaders_batches():
    images = _images()
    cpu = PretrainLoader(images, MultiViewTransform([ViewConfig()], 8, *STATS), 4, 3, CPU, num_workers=0)
    ours, theirs = _batches(_loader([ViewConfig()], images=images)), _batches(cpu)
    assert len(ours) == len(theirs) == 10
    for mine, reference in zip(ours, theirs):
        assert torch.equal(mine.labels, reference.labels)
        torch.testing.assert_close(mine.views[0], reference.views[0], atol=1e-6, rtol=0)


def test_a_batch_holds_the_configured_views_of_its_images():
    batch = _batches(_loader())[0]
    assert len(batch.views) == 2 and all(view.shape == (4, 3, 8, 8) for view in batch.views)
    assert batch.labels.shape == (4,) and batch.size == 4


def test_ranks_share_out_each_epoch_without_overlap():
    seen = [torch.cat([b.labels for b in _batches(_loader(rank=rank, world_size=2))]) for rank in (0, 1)]
    assert len(seen[0]) == len(seen[1]) == 20
    assert len(set(seen[0].tolist()) | set(seen[1].tolist())) == 40


def test_a_resumed_epoch_yields_exactly_the_rest_of_the_uninterrupted_one():
    full, resumed = _batches(_loader(), epoch=2), _batches(_loader(), epoch=2, start_step=6)
    assert len(resumed) == 4
    for expected, got in zip(full[6:], resumed):
        assert torch.equal(expected.labels, got.labels)
        assert len(got.views) == len(expected.views) and all(torch.equal(a, b) for a, b in zip(expected.views, got.views))


def test_each_epoch_and_each_rank_draws_its_own_augmentation():
    first, second = _batches(_loader(), epoch=0)[0], _batches(_loader(), epoch=1)[0]
    assert not torch.equal(first.labels, second.labels)
    same_images = ImageSet(labels=torch.zeros(8, dtype=torch.long), pixels=_images().pixels[:1].repeat(8, 1, 1, 1))
    rank0, rank1 = (_batches(_loader(rank=r, world_size=2, images=same_images))[0] for r in (0, 1))
    assert not torch.equal(rank0.views[0], rank1.views[0])


def test_the_batched_backend_refuses_images_streamed_from_disk():
    streamed = ImageSet(labels=torch.zeros(8, dtype=torch.long), paths=[f"{i}.jpg" for i in range(8)])
    with pytest.raises(UserError, match="augmentation.backend=streamed"):
        _loader(images=streamed)


@pytest.mark.parametrize("requested,decoded,expected", [
    ("auto", True, "batched"), ("auto", False, "per_sample"), ("batched", True, "batched"),
    ("per_sample", True, "per_sample"),
])
def test_auto_picks_the_batched_backend_for_decoded_images(requested, decoded, expected):
    images = _images(4) if decoded else ImageSet(labels=torch.zeros(4, dtype=torch.long), paths=["a.jpg"] * 4)
    assert select_backend(requested, images) == expected


def test_pretrain_loader_builds_the_requested_backend():
    images = _images()
    for backend, kind in (("batched", DeviceLoader), ("per_sample", PretrainLoader)):
        augmentation = AugmentationConfig(name="x", views=SIMCLR_VIEWS, backend=backend)
        loader = pretrain_loader(images, augmentation, 8, *STATS, batch_size=4, seed=0, device=CPU, num_workers=0)
        assert isinstance(loader, kind)


def test_an_unknown_backend_fails_in_one_line():
    with pytest.raises(UserError, match="augmentation.backend='tpu' is not valid"):
        compose_settings(["augmentation.backend=tpu"])


def test_a_run_pretrains_with_the_batched_backend_on_the_cpu(tmp_path):
    done = run_cli([*SMOKE, "trainer.epochs=1", "augmentation.backend=batched", "hydra.run.dir=run"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "augmentation backend: batched" in done.stderr + done.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["images_per_second"] > 0 and "knn_top1" in results


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_step_of_the_loader_never_waits_for_the_device():
    cuda = torch.device("cuda")
    loader = DeviceLoader(_images(64, 32), SIMCLR_VIEWS, 32, *STATS, batch_size=16, seed=0, device=cuda)
    batches = loader.epoch(0)
    next(batches)  # the first batch copies the epoch's order and the normalisation constants
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(2):
            next(batches)
    finally:
        torch.cuda.set_sync_debug_mode("default")
