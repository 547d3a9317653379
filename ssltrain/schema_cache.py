"""The registry entries' code defaults, kept on disk so that a command can check the keys of
its overrides before it imports torch (the registries import it: 2-5 s).

compose.store_code_defaults writes the cache whenever it imports the registries; it is
named after the package's source files (path, size, mtime), so any change to the code makes
a new one. Without a cache, the keys are checked after torch loads: only sooner, never
differently.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore

from ssltrain import __version__
from ssltrain.runtime.atomic import atomic_write_text

PACKAGE = Path(__file__).resolve().parent


def _code_fingerprint() -> str:
    digest = hashlib.sha1(__version__.encode())
    for source in sorted(PACKAGE.rglob("*.py")):
        stat = source.stat()
        digest.update(f"{source.relative_to(PACKAGE)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "ssltrain" / f"schema-{_code_fingerprint()}.json"


def store(nodes: dict[str, dict[str, Any]]) -> None:
    """Each entry's node as Hydra config `schema/<group>/<name>` (configs/config.yaml composes it)."""
    config_store = ConfigStore.instance()
    for group, entries in nodes.items():
        for name, node in entries.items():
            config_store.store(group=f"schema/{group}", name=name, node=node)


def save(nodes: dict[str, dict[str, Any]]) -> None:
    """Write the cache for this code once; a folder that cannot be written only costs speed."""
    path = cache_path()
    if path.exists():
        return
    try:
        atomic_write_text(path, json.dumps(nodes))
    except OSError:
        pass


def load() -> Optional[dict[str, dict[str, Any]]]:
    """The cached nodes for this code, or None."""
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return None
