"""A folder of extracted features that appears whole: features.npy, index.csv, meta.json.

Rows go to disk as they come (nothing holds all the features in memory), into a hidden
`.<name>.<random>.partial` folder beside the target; only when every row is written does
that folder take the target's name, in one rename. So a killed extraction leaves no
features.npy that looks complete, and never one whose index belongs to another run: at
most that hidden folder, to delete. (Not atomic.py's TEMPORARY_GLOB names: a resuming run
deletes those under its folder, and extraction may write into a live run's folder.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ssltrain.errors import UserError

FEATURES_FILE, INDEX_FILE, META_FILE = "features.npy", "index.csv", "meta.json"
OUTPUT_FILES = (FEATURES_FILE, INDEX_FILE, META_FILE)


def _npy_header(rows: int, width: int) -> bytes:
    """numpy's own .npy header for a float32 [rows, width] array. numpy pads it so that the
    row count can change in place: the header for fewer rows has the same length."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (rows, width)})
    return buffer.getvalue()


def _check_replaceable(path: Path) -> None:
    """`path` is new, an empty folder, or an earlier extraction's (which a new one replaces)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"the output {path} is a file; give a folder")
    others = sorted(entry.name for entry in path.iterdir() if entry.name not in OUTPUT_FILES) if path.is_dir() else []
    if others:
        raise UserError(f"the output folder {path} holds other files than an extraction's ({', '.join(others[:3])}); "
                        f"give a new or empty folder")


class FeatureFolder:
    """Writes `path`/features.npy (float32 [N, width]), index.csv (`row` and `columns`, one
    line per feature row) and meta.json. `capacity`: the most rows there can be; the .npy
    header says that many until `publish` writes the number of rows appended.

    Making one makes the partial folder (raises OSError when it cannot be written); as a
    context manager, leaving without `publish` removes what was written."""

    def __init__(self, path: Path, capacity: int, width: int, columns: Sequence[str]):
        _check_replaceable(path)
        self.path, self.capacity, self.width, self.rows = path, capacity, width, 0
        self._made = [folder for folder in (path.parent, *path.parent.parents) if not folder.exists()]
        path.parent.mkdir(parents=True, exist_ok=True)
        self.partial = self._beside("partial")
        self.partial.mkdir()
        self._features = open(self.partial / FEATURES_FILE, "wb")
        self._header = _npy_header(capacity, width)
        self._features.write(self._header)
        self._index_file = open(self.partial / INDEX_FILE, "w", newline="", encoding="utf-8")
        self._index = csv.writer(self._index_file)
        self._index.writerow(["row", *columns])
        self.published = False

    def append(self, features: np.ndarray, entries: Sequence[Sequence[Any]]) -> None:
        """Feature rows [B, width] and their index entries (one per row, in `columns` order)."""
        if features.ndim != 2 or features.shape[1] != self.width or len(features) != len(entries):
            raise ValueError(f"{features.shape} features for {len(entries)} entries, {self.width} per row expected")
        if self.rows + len(features) > self.capacity:
            raise ValueError(f"more than the {self.capacity} rows announced")
        self._features.write(np.ascontiguousarray(features, dtype="<f4").tobytes())
        self._index.writerows([self.rows + offset, *entry] for offset, entry in enumerate(entries))
        self.rows += len(features)

    def publish(self, meta: dict[str, Any]) -> None:
        """Finish the files, add meta.json, and give the folder its name in one rename (an
        earlier extraction there is moved aside first, then removed)."""
        if self.rows != self.capacity:
            header = _npy_header(self.rows, self.width)
            if len(header) != len(self._header):
                raise RuntimeError("numpy's .npy header changed length with the row count; cannot finish in place")
            self._features.seek(0)
            self._features.write(header)
        self._close(sync=True)
        (self.partial / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        earlier = None
        if self.path.is_dir() and any(self.path.iterdir()):
            earlier = self._beside("old")
            os.replace(self.path, earlier)
        os.replace(self.partial, self.path)  # onto an absent or empty folder
        self.published = True
        if earlier is not None:
            shutil.rmtree(earlier, ignore_errors=True)

    def _beside(self, kind: str) -> Path:
        """A new hidden name beside the output folder."""
        return self.path.parent / f".{self.path.name}.{uuid.uuid4().hex[:12]}.{kind}"

    def _close(self, sync: bool) -> None:
        for file in (self._features, self._index_file):
            if not file.closed:
                if sync:  # on disk before the rename that shows them
                    file.flush()
                    os.fsync(file.fileno())
                file.close()

    def __enter__(self) -> "FeatureFolder":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.published:
            return
        self._close(sync=False)
        shutil.rmtree(self.partial, ignore_errors=True)
        for folder in self._made:  # innermost first: the folders creating this one made, if still empty
            try:
                folder.rmdir()
            except OSError:
                break
