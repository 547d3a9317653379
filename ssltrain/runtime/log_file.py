"""The run's log file (Hydra's `<run_dir>/ssltrain.log`): what goes there and not to the terminal.

Hydra's job logging gives the root logger a console handler and a file handler. A
traceback or a long list of file names belongs in the file only, so the terminal keeps
one line per event; and a resumed run moves its file handler into the run it continues,
so that run's whole log stays in its own folder.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional


def _file_handlers() -> list[logging.FileHandler]:
    return [handler for handler in logging.getLogger().handlers if isinstance(handler, logging.FileHandler)]


def log_file() -> Optional[Path]:
    """The file this process logs to, or None when it keeps no log file (ranks > 0)."""
    handlers = _file_handlers()
    return Path(handlers[0].baseFilename) if handlers else None


def stop_file_logging() -> None:
    """Close and drop the log file's handler (a failed start about to remove its folder, a rank > 0)."""
    for handler in _file_handlers():
        handler.close()
        logging.getLogger().removeHandler(handler)


def to_file_only(logger: logging.Logger, level: int, message: str, exc_info=None) -> None:
    """Write `message` (and a traceback with `exc_info=True`) to the log file, not the terminal."""
    if exc_info is True:
        exc_info = sys.exc_info()
    record = logger.makeRecord(logger.name, level, "(ssltrain)", 0, message, (), exc_info)
    for handler in _file_handlers():
        handler.handle(record)


def move_log(target_dir: Path) -> None:
    """Append what this process has logged so far to the same-named file in `target_dir`,
    remove the old file, and log there from now on."""
    for handler in _file_handlers():
        handler.acquire()
        try:
            handler.close()  # flushed and closed; FileHandler reopens on the next record
            old = Path(handler.baseFilename)
            new = target_dir.resolve() / old.name
            if old != new:
                with open(new, "a") as target:
                    target.write(old.read_text() if old.exists() else "")
                old.unlink(missing_ok=True)
                handler.baseFilename = str(new)
            handler.mode = "a"
        finally:
            handler.release()
