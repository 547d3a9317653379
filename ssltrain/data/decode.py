"""Image folders: scan, decode once into a uint8 tensor, and cache the result.

Decoding 50,000 small JPEGs takes tens of seconds; reading the cached tensor back takes
well under one, so every run after the first starts at once. Unreadable files are
skipped, counted and named in the log, never a crash mid-epoch.
"""

from __future__ import annotations

import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch
from PIL import Image

from ssltrain.runtime.atomic import atomic_save
from ssltrain.data.images import UNLABELLED, ImageSet
from ssltrain.data.unreadable import UNREADABLE
from ssltrain.errors import UserError
from ssltrain.runtime.progress import bar as progress_bar

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp", ".tif", ".tiff"})
CACHE_VERSION = 1


def class_folders(root: Path) -> list[str]:
    """The class folders' names under `root`, sorted; hidden folders (the decoding cache) are none."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir() and not entry.name.startswith("."))


def scan_folder(root: Path, classes: list[str] | None = None) -> tuple[list[str], torch.Tensor, list[str]]:
    """Image files under `root`: `root/<class>/*` are labelled by class (sorted names, or the
    given `classes` in their order, only those; a class without a folder is warned of as an
    empty one); without `classes`, images directly in `root` are unlabelled. Returns (paths,
    labels, class names)."""
    if not root.is_dir():
        raise UserError(f"image folder {root} does not exist; point dataset.root at a folder with train/<class>/*.jpg")
    paths, labels = [], []
    if classes is None:
        classes = class_folders(root)
        for path in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            paths.append(str(path))
            labels.append(UNLABELLED)
    for index, name in enumerate(classes):
        for directory, _, files in sorted(os.walk(root / name)):
            for file in sorted(files):
                if Path(file).suffix.lower() in IMAGE_EXTENSIONS:
                    paths.append(os.path.join(directory, file))
                    labels.append(index)
    if not paths:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}")
    labels = torch.tensor(labels, dtype=torch.long)
    empty = [name for index, name in enumerate(classes) if not (labels == index).any()]
    if empty:
        log.warning("%d class folder%s under %s hold%s no images (%s); %s still count%s among the %d classes",
                    len(empty), "s" if len(empty) > 1 else "", root, "" if len(empty) > 1 else "s",
                    ", ".join(empty[:5]) + (" ..." if len(empty) > 5 else ""), "they" if len(empty) > 1 else "it",
                    "" if len(empty) > 1 else "s", len(classes))
    return paths, labels, classes


def load_rgb(path: str | BinaryIO, size: int | None) -> Image.Image:
    """Open an image as RGB; with `size`, resize the short side to it and centre-crop."""
    with Image.open(path) as image:
        image = image.convert("RGB")
    if size is not None and image.size != (size, size):
        scale = size / min(image.size)
        resized = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
        image = image.resize(resized, Image.BICUBIC)
        left, top = (image.width - size) // 2, (image.height - size) // 2
        image = image.crop((left, top, left + size, top + size))
    return image


def try_load_rgb(images: ImageSet, index: int) -> Image.Image | None:
    """The streamed image `index` of `images` at its own size, or None if unreadable (the
    caller reports images.paths[index])."""
    try:
        return load_rgb(images.file(index), None)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _decode_one(path: str, size: int) -> np.ndarray | None:
    try:
        return np.asarray(load_rgb(path, size), dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _cache_key(paths: list[str], size: int) -> str:
    digest = hashlib.sha1(f"v{CACHE_VERSION} size={size}".encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(root: Path, key: str) -> Path:
    """Beside the data when that folder is writable, else in the user's cache."""
    local = root / ".ssltrain-cache"
    if os.access(root, os.W_OK):
        return local / f"{key}.pt"
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ssltrain" / f"{key}.pt"


def cached(cache: Path, use_cache: bool, compute: Callable[[], dict[str, Any]], what: str) -> dict[str, Any]:
    """The tensors saved in `cache`, or compute() saved there for the next run (a failed
    write is a warning: the next run computes again). `what` names them in the warning."""
    if use_cache and cache.exists():
        return torch.load(cache, weights_only=True)
    stored = compute()
    if use_cache:
        try:
            atomic_save(stored, cache)
        except OSError as error:
            log.warning("could not write the %s %s (%s); the next run computes it again", what, cache, error)
    return stored


def decode_folder(root: Path, size: int, use_cache: bool = True,
                  classes: list[str] | None = None) -> tuple[ImageSet, list[str]]:
    """All images under `root` (of `classes` only, when given: see scan_folder) decoded to
    uint8 [N, size, size, 3], with their labels.

    Returns the image set and its class names; unreadable files are left out and logged.
    """
    paths, labels, classes = scan_folder(root, classes)
    cache = cache_path(root, _cache_key(paths, size))

    def decode() -> dict[str, Any]:
        log.info("decoding %d images under %s (once; cached in %s)", len(paths), root, cache)
        arrays = _decode_all(paths, size)
        readable = [i for i, array in enumerate(arrays) if array is not None]
        pixels = torch.from_numpy(np.stack([arrays[i] for i in readable])) if readable else \
            torch.empty(0, size, size, 3, dtype=torch.uint8)
        return {"pixels": pixels, "labels": labels[torch.tensor(readable, dtype=torch.long)],
                "skipped": [paths[i] for i, array in enumerate(arrays) if array is None]}

    stored = cached(cache, use_cache, decode, "decode cache")
    UNREADABLE.report(stored["skipped"], len(paths), f"decoding {root}")
    return ImageSet(labels=stored["labels"], pixels=stored["pixels"]), classes


def _decode_all(paths: list[str], size: int) -> list[np.ndarray | None]:
    """Decode in threads (PIL releases the GIL), with a progress bar; Ctrl-C stops at once."""
    pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))
    try:
        futures = [pool.submit(_decode_one, path, size) for path in paths]
        return [future.result() for future in progress_bar(futures, desc="decoding", unit="img")]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
