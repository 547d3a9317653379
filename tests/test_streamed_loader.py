"""The streamed backend (augmentation.backend=streamed): files decoded and cropped per sample
in DataLoader workers, the colour ops batched on the device; on CPU, and on CUDA when present."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import read_file
from torchvision.transforms.v2 import functional as TF

from conftest import smoke
from ssltrain.augment.views import AugmentationConfig, ViewConfig
from ssltrain.compose import compose_settings
from ssltrain.data.decode import scan_folder
from ssltrain.data.encoded_views import EncodedViews, decode_rgb
from ssltrain.data.images import ImageSet
from ssltrain.data.loader import sample_seed
from ssltrain.data.pipeline import pretrain_loader
from ssltrain.data.streamed_loader import StreamedLoader
from ssltrain.errors import UserError
from ssltrain.run import run

CPU = torch.device("cpu")
SEED = 5
STATS = ((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
SIMCLR = ViewConfig(count=2, crop_scale=(0.08, 1.0), crop_ratio=(3 / 4, 4 / 3), flip_p=0.5, jitter_p=0.8, brightness=0.8,
                    contrast=0.8, saturation=0.8, hue=0.2, grayscale_p=0.2, blur_p=0.5, solarize_p=0.2)
LOCAL = ViewConfig(count=1, size=16, crop_scale=(0.05, 0.4), flip_p=0.5)


def _jpeg_folder(root: Path, per_class: int = 6, classes: tuple[str, ...] = ("a", "b")) -> Path:
    """root/train/<class>/<i>.jpg: seeded noise over a class colour, 96-128 px a side."""
    rng = np.random.default_rng(0)
    for index, name in enumerate(classes):
        (root / "train" / name).mkdir(parents=True)
        for i in range(per_class):
            height, width = rng.integers(96, 129, size=2)
            pixels = np.clip(rng.normal(60 + 120 * index, 40, (height, width, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / "train" / name / f"{i}.jpg", quality=90)
    return root


def _images(root: Path) -> ImageSet:
    paths, labels, _ = scan_folder(root / "train")
    return ImageSet(labels=labels, paths=paths)


def _loader(images: ImageSet, views=(SIMCLR, LOCAL), workers: int = 0, device: torch.device = CPU,
            batch_size: int = 4) -> StreamedLoader:
    return StreamedLoader(images, list(views), 32, *STATS, batch_size=batch_size, seed=SEED, device=device,
                          num_workers=workers)


def _pixels(view: torch.Tensor) -> torch.Tensor:
    mean, std = (torch.tensor(stat, device=view.device).view(1, 3, 1, 1) for stat in STATS)
    return view * std + mean


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return _jpeg_folder(tmp_path_factory.mktemp("jpegs"))


def test_a_batch_holds_each_recipes_views_normalised(folder):
    batch = next(_loader(_images(folder)).epoch(0))
    assert [tuple(view.shape) for view in batch.views] == [(4, 3, 32, 32)] * 2 + [(4, 3, 16, 16)]
    assert all(view.dtype == torch.float32 for view in batch.views)
    pixels = torch.cat([_pixels(view).flatten() for view in batch.views])
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5 and pixels.std() > 0.05
    assert batch.labels.shape == batch.indices.shape == (4,)


def test_the_views_do_not_depend_on_the_worker_count(folder):
    images = _images(folder)
    alone, helped = list(_loader(images, workers=0).epoch(1)), list(_loader(images, workers=2).epoch(1))
    assert len(alone) == len(helped) == 3
    for one, two in zip(alone, helped):
        assert torch.equal(one.indices, two.indices)
        assert all(torch.equal(a, b) for a, b in zip(one.views, two.views))


def test_a_resumed_epoch_yields_exactly_the_rest_of_the_uninterrupted_one(folder):
    images = _images(folder)
    full, resumed = list(_loader(images).epoch(2)), list(_loader(images).epoch(2, start_step=1))
    assert len(resumed) == 2
    for expected, got in zip(full[1:], resumed):
        assert torch.equal(expected.indices, got.indices) and torch.equal(expected.labels, got.labels)
        assert all(torch.equal(a, b) for a, b in zip(expected.views, got.views))


def test_a_corrupt_jpeg_is_left_out_and_reported(tmp_path, caplog):
    root = _jpeg_folder(tmp_path, per_class=4)
    whole = (root / "train" / "a" / "0.jpg").read_bytes()
    (root / "train" / "b" / "broken.jpg").write_bytes(whole[: len(whole) // 3])  # a JPEG cut short
    batches = list(_loader(_images(root), batch_size=3).epoch(0))  # all 9 files, in 3 batches
    assert sorted(batch.size for batch in batches) == [2, 3, 3]
    assert "left out 1 unreadable image of 9 (pretraining)" in caplog.text and "broken.jpg" in caplog.text


def test_the_batched_colour_ops_follow_the_recipe(folder):
    gray = ViewConfig(count=2, crop_scale=(0.2, 1.0), jitter_p=0.0, brightness=0.8, grayscale_p=1.0)
    batch = next(_loader(_images(folder), views=[gray]).epoch(0))
    for view in batch.views:
        pixels = _pixels(view)
        torch.testing.assert_close(pixels[:, 0], pixels[:, 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(pixels[:, 1], pixels[:, 2], atol=1e-5, rtol=0)


def test_without_colour_ops_a_view_is_the_normalised_crop_of_its_file(folder):
    images = _images(folder)
    loader = _loader(images, views=[LOCAL])
    batch = next(loader.epoch(3))
    for row, index in enumerate(batch.indices.tolist()):
        crop = loader.crops(read_file(images.paths[index]), sample_seed(SEED, 3, index))[0]  # uint8 [3, 16, 16]
        expected = (crop.float() / 255 - torch.tensor(STATS[0]).view(3, 1, 1)) / torch.tensor(STATS[1]).view(3, 1, 1)
        torch.testing.assert_close(batch.views[0][row], expected, atol=1e-6, rtol=0)


def test_one_encoded_image_gives_its_crops_of_the_decoded_pixels(folder):
    path = next((folder / "train" / "a").glob("*.jpg"))
    views = pickle.loads(pickle.dumps(EncodedViews([SIMCLR, LOCAL], 32)))  # as a worker gets it
    data = read_file(str(path))
    crops = views(data, seed=11)
    assert [tuple(crop.shape) for crop in crops] == [(3, 32, 32)] * 2 + [(3, 16, 16)]
    assert all(crop.dtype == torch.uint8 for crop in crops)
    assert all(torch.equal(a, b) for a, b in zip(crops, views(data, seed=11)))
    image = decode_rgb(data)
    geometry = views.geometry(image.shape[1], image.shape[2], seed=11)[0]
    expected = TF.resized_crop(image, *geometry.boxes[0].int().tolist(), [32, 32], antialias=True)
    assert torch.equal(crops[0], expected.flip(-1) if geometry.flip[0] else expected)


@pytest.mark.parametrize("kind", ["PNG", "BMP"])
def test_other_formats_decode_to_the_pixels_pil_reads(kind):
    pixels = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    encoded = io.BytesIO()
    Image.fromarray(pixels).save(encoded, format=kind)
    data = torch.frombuffer(bytearray(encoded.getvalue()), dtype=torch.uint8)
    assert torch.equal(decode_rgb(data), torch.from_numpy(pixels).permute(2, 0, 1))
    assert decode_rgb(data[:20].clone()) is None


def test_pretrain_loader_builds_the_streamed_backend_and_it_refuses_decoded_images(folder):
    augmentation = AugmentationConfig(name="x", views=[SIMCLR], backend="streamed")
    loader = pretrain_loader(_images(folder), augmentation, 32, *STATS, batch_size=4, seed=0, device=CPU, num_workers=0)
    assert isinstance(loader, StreamedLoader)
    decoded = ImageSet(labels=torch.zeros(4, dtype=torch.long), pixels=torch.zeros(4, 8, 8, 3, dtype=torch.uint8))
    with pytest.raises(UserError, match="augmentation.backend=batched"):
        _loader(decoded)


def test_a_run_pretrains_with_the_streamed_backend(tmp_path):
    root = _jpeg_folder(tmp_path / "data", per_class=8)
    results = run(compose_settings(smoke("dataset=imagefolder", f"dataset.root={root}", "dataset.image_size=96",
                                         "dataset.holdout_fraction=0.25", "augmentation=imagenet_simclr",
                                         "augmentation.backend=streamed", "trainer.batch_size=4", "trainer.epochs=1",
                                         "encoder.channels=[4,8]", "eval.k=3")), tmp_path / "run", search_roots=[])
    assert results["images_per_second"] > 0 and "knn_top1" in results


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_gpu_decodes_and_crops_and_a_corrupt_file_is_left_out(tmp_path, caplog):
    root = _jpeg_folder(tmp_path, per_class=4)
    (root / "train" / "b" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a JPEG after all")
    batches = list(_loader(_images(root), workers=2, device=torch.device("cuda"), batch_size=3).epoch(0))
    assert sorted(batch.size for batch in batches) == [2, 3, 3] and "broken.jpg" in caplog.text
    view = batches[0].views[0]
    assert view.is_cuda and view.shape[1:] == (3, 32, 32)
    pixels = _pixels(view)
    assert pixels.min() > -1e-5 and pixels.max() < 1 + 1e-5
