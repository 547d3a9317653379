"""Registered datasets: each returns a DatasetSource (train, optional test, image stats).

Every dataset builder takes `image_size`, the side of the square images the encoder sees,
so a run's image size is known from its config before any data loads (build.check_settings).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torchvision.transforms import InterpolationMode, v2

from ssltrain.data.decode import decode_folder, scan_folder
from ssltrain.data.images import DatasetSource, ImageSet
from ssltrain.errors import UserError
from ssltrain.registry import DATASETS

# The per-channel (mean, std) each registered dataset's images are normalised with: the usual
# published values of its training set, ImageNet's for any folder of images. Kept by name,
# so that a finished run's encoder can be fed as in its run (ssltrain-extract) from the
# dataset named in its config, without loading that run's data.
NORMALISATION = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagefolder": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),  # ImageNet's
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "webdataset": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "synthetic": ((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)),
}

# Above this side, images are streamed from disk rather than decoded into memory.
DECODE_ONCE_MAX_SIZE = 64


def _folder_source(root: Path, image_size: int, decode_once: bool, use_cache: bool,
                   classes: Optional[list[str]] = None) -> tuple[ImageSet, ImageSet | None, list[str]]:
    """ImageFolder tree: `root/train/` (or `root` itself) and an optional `test/` or `val/`,
    whose labels follow the training set's classes (`classes` only, when given); returns
    (train, test, the class names)."""
    train_dir = root / "train" if (root / "train").is_dir() else root
    test_dir = next((root / name for name in ("test", "val") if (root / name).is_dir()), None)

    def load(directory: Path, classes: Optional[list[str]]) -> tuple[ImageSet, list[str]]:
        if decode_once:
            return decode_folder(directory, image_size, use_cache, classes)
        paths, labels, classes = scan_folder(directory, classes)
        return ImageSet(labels=labels, paths=paths), classes

    train, classes = load(train_dir, classes)
    return train, (load(test_dir, classes or None)[0] if test_dir is not None else None), classes


def _created_by(action, folder: Path):
    """Run `action()`; if it fails, remove the folders it created on the way to `folder`
    (when they hold no file), so a failed download leaves nothing behind."""
    first_new = None
    for candidate in [folder, *folder.parents]:
        if candidate.exists():
            break
        first_new = candidate
    try:
        return action()
    except BaseException:
        if first_new is not None and first_new.is_dir() and not any(p.is_file() for p in first_new.rglob("*")):
            shutil.rmtree(first_new, ignore_errors=True)
        raise


def _cifar(torchvision_class, title: str, root: str, download: bool, cache: bool, image_size: int, num_classes: int,
           stats) -> DatasetSource:
    folder = Path(root).expanduser()
    if (folder / "train").is_dir():
        train, test, classes = _folder_source(folder, image_size, decode_once=True, use_cache=cache)
        if len(classes) != num_classes:
            raise UserError(f"dataset.root={root} holds {len(classes)} class folders under train/ and {title} has "
                            f"{num_classes}; point it at a full copy, or use dataset=imagefolder for other classes")
    else:
        try:
            train_set, test_set = _created_by(lambda: (torchvision_class(str(folder), train=True, download=download),
                                                       torchvision_class(str(folder), train=False, download=download)),
                                              folder)
        except (RuntimeError, OSError) as error:
            raise UserError(
                f"{title} is not under {folder} and could not be downloaded ({type(error).__name__}); "
                f"unpack a local copy and set dataset.root=DIR where DIR/train/<class>/*.jpg exists "
                f"(e.g. tar -xzf cifar10-jpeg-train.tar.gz -C DIR)"
            ) from None
        train, test = (
            ImageSet(labels=torch.tensor(split.targets, dtype=torch.long), pixels=resized(torch.from_numpy(split.data), image_size))
            for split in (train_set, test_set)
        )
        classes = list(train_set.classes)
    return DatasetSource(train=train, test=test, num_classes=num_classes, image_size=image_size, mean=stats[0],
                         std=stats[1], class_names=classes)


def resized(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images [N, H, W, 3] -> [N, size, size, 3] (bicubic, antialiased), unchanged at their own size."""
    if pixels.shape[1:3] == (size, size):
        return pixels
    images = v2.functional.resize(pixels.permute(0, 3, 1, 2), [size, size], InterpolationMode.BICUBIC, antialias=True)  # [N, 3, size, size]
    return images.permute(0, 2, 3, 1).contiguous()


@DATASETS.register("cifar10")
def cifar10(root: str = "data/cifar10", download: bool = True, cache: bool = True, image_size: int = 32) -> DatasetSource:
    """CIFAR-10 from torchvision, or from an ImageFolder copy when `root/train/` exists;
    image_size: resize the 32 px images to this side (for encoders made for larger images)."""
    import torchvision

    return _cifar(torchvision.datasets.CIFAR10, "CIFAR-10", root, download, cache, image_size, 10, NORMALISATION["cifar10"])


@DATASETS.register("cifar100")
def cifar100(root: str = "data/cifar100", download: bool = True, cache: bool = True, image_size: int = 32) -> DatasetSource:
    """CIFAR-100 from torchvision, or from an ImageFolder copy when `root/train/` exists."""
    import torchvision

    return _cifar(torchvision.datasets.CIFAR100, "CIFAR-100", root, download, cache, image_size, 100, NORMALISATION["cifar100"])


@DATASETS.register("imagefolder")
def imagefolder(root: str, image_size: int = 224, decode_once: Optional[bool] = None, cache: bool = True) -> DatasetSource:
    """Any folder of images: `root/train/<class>/*` (labels) or `root/train/*` (unlabelled),
    with an optional `root/test/` or `root/val/`. Small images (<= 64 px, or decode_once=true)
    are decoded once into memory at `image_size`; larger ones are streamed from disk."""
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset.root={root} is not a folder; point it at a folder holding train/<class>/*.jpg")
    in_memory = image_size <= DECODE_ONCE_MAX_SIZE if decode_once is None else decode_once
    train, test, classes = _folder_source(folder, image_size, decode_once=in_memory, use_cache=cache)
    mean, std = NORMALISATION["imagefolder"]
    return DatasetSource(train=train, test=test, num_classes=len(classes), image_size=image_size, mean=mean, std=std,
                         class_names=classes)


def read_class_list(path: str) -> list[str]:
    """A class-list file: one class folder name per line (blank lines and # comments ignored)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"dataset.classes_file={path} does not exist; give a text file with one class folder name "
                        f"per line (e.g. the 100 WordNet IDs of ImageNet-100)")
    names = [line.split("#")[0].strip() for line in file.read_text().splitlines()]
    names = [name for name in names if name]
    if len(set(names)) != len(names) or not names:
        raise UserError(f"dataset.classes_file={path} must list distinct class names, one per line")
    return names


@DATASETS.register("imagenet")
def imagenet(root: str = "data/imagenet", image_size: int = 224, classes_file: Optional[str] = None, cache: bool = True) -> DatasetSource:
    """ImageNet (ILSVRC-2012) as an ImageFolder tree: root/train/<wnid>/*.JPEG and
    root/val/<wnid>/*.JPEG (the 50,000 validation images sorted into their class folders, as
    torchvision's ImageNet and most copies keep them); evaluation on val. classes_file: only
    the classes it lists (ImageNet-100: the 100 WordNet IDs of Tian et al., 2019, CMC).
    Streamed from disk at 224 px; decoded into memory at <= 64 px (downsampled ImageNet)."""
    folder = Path(root).expanduser()
    missing = [split for split in ("train", "val") if not (folder / split).is_dir()]
    if missing:
        raise UserError(f"dataset.root={root} has no {' and no '.join(s + '/' for s in missing)}; ImageNet needs "
                        f"train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (sort the validation images into class folders)")
    classes = read_class_list(classes_file) if classes_file else None
    train, val, names = _folder_source(folder, image_size, image_size <= DECODE_ONCE_MAX_SIZE, cache, classes)
    mean, std = NORMALISATION["imagenet"]
    return DatasetSource(train=train, test=val, num_classes=len(names), image_size=image_size, mean=mean, std=std,
                         class_names=names)


@DATASETS.register("webdataset", extra="shards", modules=("webdataset",))
def webdataset(shards: str, val_shards: Optional[str] = None, image_size: int = 224, streams: int = 8,
               classes_file: Optional[str] = None, cache: bool = True) -> DatasetSource:
    """Images in WebDataset tar shards (scripts/make_shards.py writes them from any image
    folder): `shards` and `val_shards` are each a folder, a .txt list, or a brace pattern
    (data/train-{000000..000146}.tar). A folder gives its train-*.tar (or all its .tar) and,
    unless val_shards is set, its val-*.tar for evaluation. Labels from each sample's `cls`
    member, class names from `classes_file` (default: a classes.txt beside the shards, if
    there). Always streamed, decoded per sample; in pretraining the shards are dealt whole
    to `streams` read streams per process (data/samplers/shards.py)."""
    from ssltrain.data.shards import class_count, expand_shards, folder_shards, index_shards

    if streams < 1:
        raise UserError(f"dataset.streams={streams} must be 1 or more")
    train = index_shards(expand_shards(shards, "dataset.shards"), cache, streams)
    folder = Path(shards).expanduser()
    val_files = expand_shards(val_shards, "dataset.val_shards") if val_shards else \
        folder_shards(folder, "val") if folder.is_dir() else []
    val = index_shards(val_files, cache) if val_files else None
    beside = Path(train.members.shards[0]).parent / "classes.txt"
    names = read_class_list(classes_file) if classes_file else read_class_list(str(beside)) if beside.is_file() else None
    num_classes = class_count(torch.cat([train.labels, val.labels]) if val is not None else train.labels, names,
                              "dataset.classes_file")
    mean, std = NORMALISATION["webdataset"]
    return DatasetSource(train=train, test=val, num_classes=num_classes, image_size=image_size, mean=mean, std=std,
                         class_names=names)


def _synthetic_split(templates: torch.Tensor, count: int, generator: torch.Generator) -> ImageSet:
    labels = torch.randint(len(templates), (count,), generator=generator)
    brightness = 0.6 + 0.8 * torch.rand(count, 1, 1, 1, generator=generator)
    noise = 0.15 * torch.randn(count, *templates.shape[1:], generator=generator)
    images = (templates[labels] * brightness + noise).clamp(0, 1)  # [N, H, W, 3]
    return ImageSet(labels=labels, pixels=(images * 255).round().to(torch.uint8))


@DATASETS.register("synthetic")
def synthetic(num_images: int = 2000, num_classes: int = 10, image_size: int = 32, seed: int = 0) -> DatasetSource:
    """Seeded random images for smoke tests: each class is a smooth random colour pattern
    under noise and brightness changes, so features can (weakly) separate the classes.
    A test split of num_images // 5 images comes from the same patterns."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(num_classes, 3, 4, 4, generator=generator)
    templates = F.interpolate(coarse, size=image_size, mode="bilinear", align_corners=False)
    templates = templates.permute(0, 2, 3, 1)  # [C, H, W, 3]
    mean, std = NORMALISATION["synthetic"]
    return DatasetSource(
        train=_synthetic_split(templates, num_images, generator),
        test=_synthetic_split(templates, max(num_classes, num_images // 5), generator),
        num_classes=num_classes,
        image_size=image_size,
        mean=mean,
        std=std,
    )
