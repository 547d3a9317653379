"""Write WebDataset tar shards from an image folder: `ssltrain-make-shards SRC OUT`
(also `python scripts/make_shards.py SRC OUT`).

SRC is an ImageFolder: SRC/train/<class>/* (or SRC/<class>/*) and optionally SRC/val/ or
SRC/test/ (written as val-*.tar, labelled with the training set's classes). Each sample is
the image file's own bytes (not re-encoded) under its extension, and its class index as
`cls`; images are written in a seeded random order, so a shard holds a mix of classes, and
the class names go to OUT/classes.txt in label order. Shards are written with webdataset's
ShardWriter into a hidden folder and moved into OUT when all are written.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import Optional

import torch

from ssltrain.data.decode import scan_folder
from ssltrain.data.images import UNLABELLED
from ssltrain.data.shards import LABEL_EXTENSION, SHARDS_INSTALL
from ssltrain.errors import UserError


def _splits(source: Path) -> list[tuple[str, Path]]:
    train = source / "train" if (source / "train").is_dir() else source
    val = next((source / name for name in ("val", "test") if (source / name).is_dir()), None)
    return [("train", train)] + ([("val", val)] if val is not None else [])


def write_split(folder: Path, pattern: str, shard_size: int, seed: int,
                classes: Optional[list[str]]) -> tuple[int, list[str]]:
    """The images under `folder` into shards named by `pattern` (with a %06d); returns
    (images written, the class names)."""
    import webdataset

    paths, labels, classes = scan_folder(folder, classes)
    order = torch.randperm(len(paths), generator=torch.Generator().manual_seed(seed)).tolist()
    with webdataset.ShardWriter(pattern, maxcount=shard_size, verbose=0) as sink:
        for index in order:
            path = Path(paths[index])
            sample = {"__key__": f"{index:08d}", path.suffix.lower().lstrip("."): path.read_bytes()}
            if int(labels[index]) != UNLABELLED:
                sample[LABEL_EXTENSION] = int(labels[index])
            sink.write(sample)
    return len(paths), classes


def make_shards(source: Path, out: Path, shard_size: int = 1000, seed: int = 0) -> dict:
    """Shards of every split of `source` in `out`; returns what was written (also out/shards.json)."""
    if shard_size < 1:
        raise UserError(f"--shard-size={shard_size} must be 1 or more")
    if not source.is_dir():
        raise UserError(f"{source} is not a folder; give an image folder (SRC/train/<class>/*.jpg)")
    if out.is_dir() and any(out.glob("*.tar")):
        raise UserError(f"{out} holds .tar shards already; give an empty or new folder")
    partial = out / ".writing"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    written, classes = {}, None
    for split, folder in _splits(source):
        count, names = write_split(folder, str(partial / f"{split}-%06d.tar"), shard_size, seed,
                                   classes if split != "train" else None)
        classes = classes or names
        written[split] = {"images": count, "shards": len(list(partial.glob(f"{split}-*.tar")))}
    for shard in sorted(partial.glob("*.tar")):
        shard.rename(out / shard.name)
    partial.rmdir()
    if classes:
        (out / "classes.txt").write_text("".join(f"{name}\n" for name in classes))
    summary = {"source": str(source), "shard_size": shard_size, "seed": seed, "splits": written, "classes": len(classes or [])}
    (out / "shards.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="ssltrain-make-shards", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="image folder: SRC/train/<class>/* and optionally SRC/val/")
    parser.add_argument("out", type=Path, help="folder for the shards (new or empty)")
    parser.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the images' order across shards")
    args = parser.parse_args(argv)
    if importlib.util.find_spec("webdataset") is None:
        print(f"ssltrain-make-shards: error: needs webdataset; install it with {SHARDS_INSTALL}", file=sys.stderr)
        return 2
    try:
        summary = make_shards(args.source, args.out, args.shard_size, args.seed)
    except UserError as error:
        print(f"ssltrain-make-shards: error: {error}", file=sys.stderr)
        return 2
    for split, counts in summary["splits"].items():
        print(f"{split}: {counts['images']} images in {counts['shards']} shards -> {args.out}/{split}-*.tar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
