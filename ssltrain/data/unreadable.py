"""Images that could not be read: left out, counted, and reported once each.

A streamed dataset reads its files every epoch and every evaluation; each unreadable file
is reported the first time only: one warning on the terminal (how many, the first path),
and the full list in the run's log file.
"""

from __future__ import annotations

import logging
from typing import Iterable

from ssltrain.runtime.log_file import to_file_only

log = logging.getLogger(__name__)


class UnreadableImages:
    def __init__(self) -> None:
        self.paths: set[str] = set()

    def report(self, paths: Iterable[str], total: int, where: str) -> None:
        """`paths` could not be read out of `total` images `where` (e.g. 'pretraining')."""
        new = sorted(set(paths) - self.paths)
        if not new:
            return
        self.paths.update(new)
        log.warning("left out %d unreadable image%s of %d (%s), e.g. %s; the list is in the run's log", len(new),
                    "s" if len(new) > 1 else "", total, where, new[0])
        to_file_only(log, logging.WARNING, "unreadable images left out:\n" + "\n".join(new))


UNREADABLE = UnreadableImages()  # one per process: a file is reported once, whichever loader met it
