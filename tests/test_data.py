"""Datasets, the seeded evaluation split, decoding, unreadable files and the sampler."""

from __future__ import annotations


import pytest
import torch
from PIL import Image

from conftest import run_cli, smoke
from kit import write_image_folder
from ssltrain.augment.views import ViewConfig
from ssltrain.data.decode import decode_folder
from ssltrain.data.images import DatasetSource, balanced_subset, make_splits
from ssltrain.data.loader import PretrainLoader
from ssltrain.data.samplers import EpochSampler
from ssltrain.data.sources import cifar10, imagefolder, synthetic
from ssltrain.data.unreadable import UnreadableImages
from ssltrain.errors import UserError
from ssltrain.augment.per_sample import MultiViewTransform


def test_balanced_subset_takes_each_class_in_proportion():
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    chosen = balanced_subset(labels, 50, torch.Generator().manual_seed(0))
    assert len(chosen) == 50 == len(set(chosen.tolist()))
    assert torch.bincount(labels[chosen]).tolist() == [30, 15, 5]


def test_the_holdout_is_class_balanced_seeded_and_never_in_the_training_images():
    source = synthetic(num_images=1000, num_classes=10)
    source = DatasetSource(source.train, None, 10, 32, source.mean, source.std)  # no test split
    splits = make_splits(source, limit=None, holdout_fraction=0.1, seed=3)
    assert len(splits.val) == 100 and len(splits.train) == 900
    assert splits.val_split.startswith("holdout: 100 images")
    train_pixels = {tuple(p.flatten().tolist()) for p in splits.train.pixels}
    assert not any(tuple(p.flatten().tolist()) in train_pixels for p in splits.val.pixels)
    again = make_splits(source, limit=None, holdout_fraction=0.1, seed=3)
    assert torch.equal(again.val.pixels, splits.val.pixels)


def test_limit_applies_after_the_holdout_so_the_holdout_does_not_change():
    source = synthetic(num_images=1000, num_classes=10)
    source = DatasetSource(source.train, None, 10, 32, source.mean, source.std)
    full = make_splits(source, limit=None, holdout_fraction=0.1, seed=0)
    limited = make_splits(source, limit=200, holdout_fraction=0.1, seed=0)
    assert len(limited.train) == 200 and torch.equal(limited.val.pixels, full.val.pixels)


def test_an_official_test_split_is_used_as_is():
    splits = make_splits(synthetic(num_images=100), limit=None, holdout_fraction=0.1, seed=0)
    assert splits.val_split == "test" and len(splits.train) == 100


def test_decoding_skips_unreadable_files_names_them_and_reuses_the_cache(tmp_path, caplog):
    write_image_folder(tmp_path)
    images, classes = decode_folder(tmp_path / "train", size=8)
    assert classes == ["a", "b"] and images.pixels.shape == (10, 8, 8, 3)
    assert torch.bincount(images.labels).tolist() == [5, 5]
    assert "left out 1 unreadable image of 11" in caplog.text and "broken.jpg" in caplog.text
    assert len(list((tmp_path / "train" / ".ssltrain-cache").glob("*.pt"))) == 1
    cached, _ = decode_folder(tmp_path / "train", size=8)
    assert torch.equal(cached.pixels, images.pixels)


def test_an_unreadable_image_is_reported_once_however_often_it_is_read(caplog):
    reporter = UnreadableImages()
    for _ in range(3):  # e.g. three epochs of a streamed dataset
        reporter.report(["/data/b.jpg", "/data/a.jpg"], 100, "pretraining")
    assert caplog.text.count("left out 2 unreadable images of 100 (pretraining), e.g. /data/a.jpg") == 1


def test_an_empty_class_folder_is_reported_as_still_counting(tmp_path, caplog):
    write_image_folder(tmp_path / "data", per_class=2)
    (tmp_path / "data" / "train" / "c").mkdir()
    source = imagefolder(str(tmp_path / "data"), image_size=8)
    assert source.num_classes == 3 and "class folder under" in caplog.text and "(c)" in caplog.text


def test_a_cifar_root_with_the_wrong_number_of_classes_is_refused(tmp_path):
    write_image_folder(tmp_path / "data", per_class=2)
    with pytest.raises(UserError, match="holds 2 class folders under train/ and CIFAR-10 has 10"):
        cifar10(root=str(tmp_path / "data"), image_size=8)


def test_a_failed_cifar_download_creates_no_folder(tmp_path):
    root = tmp_path / "missing" / "cifar"
    with pytest.raises(UserError, match="CIFAR-10 is not under"):
        cifar10(root=str(root), download=False)
    assert not (tmp_path / "missing").exists()


def test_a_fine_tune_batch_too_large_for_the_data_names_eval_batch_size():
    with pytest.raises(UserError, match="no full batch of eval.batch_size=64; lower eval.batch_size"):
        EpochSampler(10, 64, seed=0, batch_key="eval.batch_size")


def test_images_directly_in_the_folder_are_unlabelled(tmp_path):
    (tmp_path / "train").mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(tmp_path / "train" / f"{i}.png")
    source = imagefolder(str(tmp_path), image_size=8)
    assert source.train.labels.tolist() == [-1, -1, -1] and not source.train.has_labels


@pytest.mark.parametrize("image_size", [16, 96], ids=["decoded-once", "streamed"])
def test_a_run_on_a_folder_with_a_corrupt_image_skips_it_and_finishes(tmp_path, image_size):
    data = tmp_path / "data"
    write_image_folder(data, per_class=8, size=100)
    result = run_cli(smoke("dataset=imagefolder", f"dataset.root={data}", f"dataset.image_size={image_size}",
                           "dataset.holdout_fraction=0.25", "trainer.batch_size=4", "trainer.epochs=2",
                           "encoder=small_cnn", "encoder.channels=[4,8]"), tmp_path)
    assert result.returncode == 0, result.stderr
    assert (result.stdout + result.stderr).count("broken.jpg") == 1, "reported once, not per epoch"
    assert "broken.jpg" in next(tmp_path.glob("outputs/**/ssltrain.log")).read_text()
    assert list(tmp_path.glob("outputs/**/results.json"))


def test_the_sampler_shards_ranks_disjointly_and_resumes_mid_epoch():
    samplers = [EpochSampler(size=20, batch_size=3, seed=0, rank=rank, world_size=2) for rank in range(2)]
    for sampler in samplers:
        sampler.set_epoch(4)
    shards = [[index for _, index in sampler] for sampler in samplers]
    assert len(shards[0]) == len(shards[1]) == 9 and not set(shards[0]) & set(shards[1])
    samplers[0].set_epoch(4, start_step=2)
    assert [index for _, index in samplers[0]] == shards[0][6:]


def test_views_depend_on_the_seed_only_not_on_the_number_of_workers():
    source = synthetic(num_images=16)
    view = ViewConfig(count=2, crop_scale=(0.2, 1.0), crop_ratio=(0.75, 1.33), flip_p=0.5, jitter_p=0.8,
                      brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    transform = MultiViewTransform([view], 32, source.mean, source.std)

    def first_batch(workers):
        loader = PretrainLoader(source.train, transform, batch_size=8, seed=5, device=torch.device("cpu"),
                                num_workers=workers)
        return next(iter(loader.epoch(1))).views

    in_process, in_workers = first_batch(0), first_batch(2)
    assert len(in_workers) == len(in_process) == 2
    assert all(torch.equal(a, b) for a, b in zip(in_process, in_workers))
    assert not torch.equal(in_process[0], in_process[1]), "the two views differ"
