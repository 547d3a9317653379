"""An encoder's features for every image under a folder, with file paths and labels, as
features.npy + index.csv + meta.json (the work of `ssltrain-extract`, extract.py).

The checkpoint says how to feed its encoder: a run's last.pt (or a run's backbone.pt, with
the run's config.yaml beside it) names the encoder, the image size and the dataset, whose
normalisation the encoder was trained with (data/sources.NORMALISATION). A bare
backbone.pt says none of it, so it needs the encoder's name and image size and gets the
normalisation ssltrain gives any folder of images (ImageNet's). Images are resized and
centre-cropped as evaluation does.

It streams: the folder is listed as paths, decoded in DataLoader workers, and each batch's
features are appended to the files as they come (runtime/feature_folder.py), so a folder
larger than memory works.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf
from torch import nn

from ssltrain import __version__
from ssltrain.augment.per_sample import eval_transform
from ssltrain.build import load_encoder, load_run_encoder, select_device, select_precision
from ssltrain.config import EncoderConfig
from ssltrain.data.decode import scan_folder
from ssltrain.data.images import UNLABELLED, ImageSet
from ssltrain.data.loader import default_workers
from ssltrain.data.sources import NORMALISATION
from ssltrain.errors import UserError, check_positive
from ssltrain.eval.data import file_batches
from ssltrain.runtime.checkpoint import checkpoint_file, load_checkpoint, split_checkpoint
from ssltrain.runtime.run_files import CONFIG_FILE, run_folder
from ssltrain.runtime.feature_folder import FeatureFolder
from ssltrain.runtime.precision import Precision
from ssltrain.runtime.progress import bar as progress_bar

log = logging.getLogger("ssltrain")

INDEX_COLUMNS = ("path", "label", "class")  # after `row`; path relative to the folder, label -1 and class "" if none


@dataclass
class FeatureEncoder:
    """An encoder in evaluation mode and how its input images are prepared."""

    module: nn.Module
    name: str
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def load_feature_encoder(file: Path, encoder_name: Optional[str], image_size: Optional[int]) -> FeatureEncoder:
    """The encoder in checkpoint `file`, as its run's config (in the checkpoint, or a run
    folder's config.yaml beside a backbone.pt) built it and fed it; for a bare backbone.pt,
    as --encoder and --image-size say, fed ImageNet-normalised images."""
    config, weights = split_checkpoint(load_checkpoint(file))
    beside = file.parent / CONFIG_FILE
    if config is None and beside.is_file():  # a run folder's backbone.pt
        config = OmegaConf.to_container(OmegaConf.load(beside))
    if config is not None:
        if encoder_name is not None or image_size is not None:
            raise UserError(f"{file} comes with its run's config (encoder {config['encoder']['name']}, image size "
                            f"{config['dataset']['image_size']}); drop --encoder and --image-size")
        module, encoder, dataset = load_run_encoder(config, weights, str(file))
        image_size, (mean, std) = dataset.options["image_size"], NORMALISATION[dataset.name]
    elif encoder_name is None or image_size is None:
        raise UserError(f"{file} is a bare backbone.pt (no run config beside it): give the encoder it holds and its "
                        f"image size, e.g. --encoder resnet18 --image-size 224")
    else:
        encoder, (mean, std) = EncoderConfig(name=encoder_name), NORMALISATION["imagefolder"]
        module = load_encoder(encoder, image_size, weights, str(file))
    return FeatureEncoder(module.eval(), encoder.name, image_size, mean, std)


def default_output(file: Path, folder: Path) -> Path:
    """`<the checkpoint's run folder>/features/<FOLDER's name>`: features stay beside the
    encoder that made them (a bare backbone.pt's folder counts as its run folder)."""
    return run_folder(file) / "features" / folder.resolve().name


@torch.no_grad()
def write_features(encoder: FeatureEncoder, images: ImageSet, folder: Path, classes: list[str], out: FeatureFolder,
                   batch_size: int, workers: int, device: torch.device, precision: Precision) -> list[str]:
    """Encode every readable image in order, appending its features and index entry to
    `out`; returns the unreadable files' paths (left out)."""
    encoder.module.to(device)
    transform = eval_transform(encoder.image_size, encoder.mean, encoder.std, resize=True)
    unreadable: list[str] = []
    with progress_bar(total=len(images), desc="features", unit="img") as bar, precision.autocast(device.type):
        for readable, skipped in file_batches(images, transform, batch_size, workers, device.type == "cuda"):
            unreadable += skipped
            if readable is not None:
                pixels, labels, indices = readable
                features = encoder.module(pixels.to(device, non_blocking=True)).float()  # [B, D]
                entries = [(os.path.relpath(images.paths[index], folder), label,
                            classes[label] if label != UNLABELLED else "")
                           for index, label in zip(indices.tolist(), labels.tolist())]
                out.append(features.cpu().numpy(), entries)
            bar.update(len(skipped) + (0 if readable is None else len(readable[0])))
    return unreadable


def extract(checkpoint: str | Path, folder: str | Path, output: Optional[str | Path], batch_size: int, device_name: str,
            workers: Optional[int], encoder_name: Optional[str], image_size: Optional[int], command: str) -> Path:
    """Check every input (one line each, before any work), then write the features folder;
    returns where it is. `workers` None: data/loader.default_workers."""
    file = checkpoint_file(checkpoint, "checkpoint")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{folder} is not a folder; give a folder of images (FOLDER/<class>/*.jpg for labels)")
    check_positive("--batch-size", batch_size)
    if workers is not None:
        check_positive("--workers", workers, allow_zero=True)
    device = select_device(device_name, "--device")
    encoder = load_feature_encoder(file, encoder_name, image_size)
    paths, labels, classes = scan_folder(folder)
    output = Path(output).expanduser() if output else default_output(file, folder)
    precision = select_precision("auto", device)
    try:
        out = FeatureFolder(output, len(paths), encoder.module.out_dim, INDEX_COLUMNS)
    except OSError as error:
        raise UserError(f"cannot write the output folder {output} ({error.strerror or error}); choose another with "
                        f"--output DIR") from None
    log.info("features of %d images under %s from %s (%s, %d px) to %s", len(paths), folder, file, encoder.name,
             encoder.image_size, output)
    with out:
        unreadable = write_features(encoder, ImageSet(labels=labels, paths=paths), folder, classes, out, batch_size,
                                    default_workers(device) if workers is None else workers, device, precision)
        if out.rows == 0:
            raise UserError(f"none of the {len(paths)} images under {folder} could be read")
        out.publish(_meta(file, folder, encoder, classes, out.rows, [os.path.relpath(p, folder) for p in unreadable],
                          device, precision, command))
    log.info("wrote %d rows of %d features to %s", out.rows, encoder.module.out_dim, output)
    if unreadable:
        log.warning("left out %d unreadable image%s of %d, e.g. %s; meta.json lists them", len(unreadable),
                    "s" if len(unreadable) > 1 else "", len(paths), unreadable[0])
    return output


def _meta(file: Path, folder: Path, encoder: FeatureEncoder, classes: list[str], rows: int, skipped: list[str],
          device: torch.device, precision: Precision, command: str) -> dict[str, Any]:
    return {
        "count": rows,  # rows of features.npy and index.csv
        "feature_dim": encoder.module.out_dim,
        "folder": str(folder.resolve()),  # index.csv's paths are relative to it
        "classes": classes,  # label i is classes[i]
        "skipped": skipped,  # unreadable images, left out
        "checkpoint": str(file.resolve()),
        "encoder": encoder.name,
        "image_size": encoder.image_size,
        "mean": list(encoder.mean),
        "std": list(encoder.std),
        "device": str(device),
        "precision": "fp32" if precision.dtype is None else str(precision.dtype).removeprefix("torch."),
        "command": command,
        "torch": torch.__version__,
        "ssltrain": __version__,
    }
