"""Atomic file writes: write a temporary file beside the target, then rename over it.

A reader (or a resumed run) sees the old file or the new one, never half of one. A write
killed midway leaves a temporary file matching TEMPORARY_GLOB, which the next start removes.
Importing this module does not import torch (the command line's torch-free checks use it).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

TEMPORARY_GLOB = ".*.tmp"  # what _atomic_write's temporary files look like


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual file mode
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save `obj` to `path` atomically."""
    import torch

    _atomic_write(Path(path), lambda file: torch.save(obj, file))


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    _atomic_write(Path(path), lambda file: file.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
