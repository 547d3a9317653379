"""WebDataset shards: which tar files a setting names, and where each image lies in them.

The format is WebDataset's (https://github.com/webdataset/webdataset): a tar file whose
members are grouped into samples by their name up to the first dot of the file name
(`n0001.jpg` and `n0001.cls` are one sample; webdataset's own `base_plus_ext` decides), an
image member (jpg, png, ...) and optionally a `cls` member holding the integer label.
Shard lists use webdataset's notation too (`expand_urls`: brace ranges, `::` between lists).

Each shard is indexed once (its members' byte offsets, read from the tar headers only) so
that an image is read by a seek, as webdataset's indexed reader `wids` does; the index is
cached beside the shards, like the decoded folders' cache.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Optional

import torch

from ssltrain.data.decode import IMAGE_EXTENSIONS, cache_path, cached
from ssltrain.data.images import UNLABELLED, ImageSet, ShardMembers
from ssltrain.errors import UserError


SHARDS_INSTALL = "pip install 'ssltrain[shards]'"
INDEX_VERSION = 1
LABEL_EXTENSION = "cls"  # webdataset's convention: the class index as decimal text


def folder_shards(folder: Path, split: str) -> list[str]:
    """A folder's shards of one split, as make_shards names them (`train-*.tar`, `val-*.tar`)."""
    return sorted(str(path) for path in folder.glob(f"{split}-*.tar"))


def expand_shards(spec: str, key: str) -> list[str]:
    """The tar files `spec` names: a folder (its train-*.tar, or every *.tar when it has none),
    a text file listing one shard per line (relative to the file's folder), or webdataset's
    notation (a path, brace ranges such as train-{000000..000146}.tar, several joined by ::).
    `key` names the setting in errors."""
    from webdataset.shardlists import expand_urls

    folder = Path(spec).expanduser()
    if folder.is_dir():
        shards = folder_shards(folder, "train") or sorted(str(path) for path in folder.glob("*.tar"))
    elif folder.is_file() and folder.suffix == ".txt":
        lines = [line.split("#")[0].strip() for line in folder.read_text().splitlines()]
        shards = [str((folder.parent / line).expanduser()) for line in lines if line]
    else:
        shards = [str(Path(name).expanduser()) for name in expand_urls(spec)]
    missing = [shard for shard in shards if not Path(shard).is_file()]
    if not shards or len(missing) == len(shards):
        raise UserError(f"{key}={spec} matches no shard file; give a folder of .tar shards, a brace pattern such as "
                        f"DIR/train-{{000000..000009}}.tar, or a .txt list (write shards with scripts/make_shards.py)")
    if missing:
        raise UserError(f"{key}={spec} names {len(missing)} shard(s) that do not exist (first: {missing[0]}); "
                        f"fix the pattern or the list")
    return shards


def _index_shard(shard: str) -> tuple[list[tuple[int, int, str]], list[int]]:
    """Per sample of one tar file, in member order: (data offset, size, member name) of its
    image and its label (UNLABELLED without a cls member). Samples without an image are left out."""
    from webdataset.tariterators import base_plus_ext

    images: dict[str, tuple[int, int, str]] = {}
    labels: dict[str, int] = {}
    order: list[str] = []
    try:
        with tarfile.open(shard, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                sample, extension = base_plus_ext(member.name)
                if sample is None:
                    continue
                if sample not in images and sample not in labels:
                    order.append(sample)
                extension = extension.lower()
                if f".{extension}" in IMAGE_EXTENSIONS and sample not in images:
                    images[sample] = (member.offset_data, member.size, member.name)
                elif extension == LABEL_EXTENSION:
                    labels[sample] = int(tar.extractfile(member).read().decode().strip())
    except (tarfile.TarError, OSError, ValueError) as error:
        raise UserError(f"shard {shard} is not a readable tar file ({error}); rewrite it or leave it out of the "
                        f"pattern") from None
    kept = [sample for sample in order if sample in images]
    return [images[sample] for sample in kept], [labels.get(sample, UNLABELLED) for sample in kept]


def _index_key(shards: list[str]) -> str:
    digest = hashlib.sha1(f"shards v{INDEX_VERSION}".encode())
    for shard in shards:
        stat = os.stat(shard)
        digest.update(f"{os.path.abspath(shard)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def index_shards(shards: list[str], use_cache: bool = True, streams: int = 1) -> ImageSet:
    """Every image in `shards`, as an ImageSet whose paths name `shard:member`; `streams`:
    the read streams per process pretraining deals them to (ShardMembers.streams)."""

    def index() -> dict:
        rows, labels, names = [], [], []
        for number, shard in enumerate(shards):
            members, shard_labels = _index_shard(shard)
            rows.extend((number, offset, size) for offset, size, _ in members)
            names.extend(f"{shard}:{name}" for _, _, name in members)
            labels.extend(shard_labels)
        return {"table": torch.tensor(rows, dtype=torch.long).reshape(-1, 3),  # [N, 3]
                "labels": torch.tensor(labels, dtype=torch.long), "names": names}

    stored = cached(cache_path(Path(shards[0]).parent, "shards-" + _index_key(shards)), use_cache, index, "shard index")
    table, labels, names = stored["table"], stored["labels"], stored["names"]
    if len(table) == 0:
        raise UserError(f"the {len(shards)} shard(s) from {shards[0]} on hold no image members "
                        f"({', '.join(sorted(IMAGE_EXTENSIONS))}); check the files")
    labelled = labels != UNLABELLED
    if bool(labelled.any()) and not bool(labelled.all()):
        raise UserError(f"{int((~labelled).sum())} of {len(labels)} samples in the shards from {shards[0]} have no "
                        f"{LABEL_EXTENSION} member; label all of them or none")
    return ImageSet(labels=labels, paths=names, members=ShardMembers(shards=list(shards), table=table, streams=streams))


def class_count(labels: torch.Tensor, names: Optional[list[str]], key: str) -> int:
    """The number of classes: the class list's length when there is one (labels must fit it), else max label + 1."""
    top = int(labels.max()) + 1 if len(labels) and int(labels.max()) >= 0 else 0
    if names is not None and top > len(names):
        raise UserError(f"the shards hold label {top - 1} and {key} lists {len(names)} classes; give the class list "
                        f"the shards were written with")
    return len(names) if names is not None else top
