"""What a user watches: progress bars for every long phase, durations people can read.

Every phase that can take minutes (decoding, pretraining, feature extraction, each probe's
epochs) shows a bar on the main process. On a terminal it refreshes twice a second; in a
log or a pipe, every 30 s, so a batch job's output stays short.
"""

from __future__ import annotations

import sys
from typing import Iterable, Optional, TypeVar

from tqdm import tqdm

from ssltrain.runtime import dist

T = TypeVar("T")


def bar(iterable: Optional[Iterable[T]] = None, *, desc: str, total: Optional[int] = None, unit: str = "it",
        initial: int = 0, leave: bool = False, enabled: bool = True) -> tqdm:
    """A tqdm bar over `iterable` (or updated by hand), shown by rank 0 only."""
    return tqdm(iterable, desc=desc, total=total, unit=unit, initial=initial, leave=leave, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0,
                disable=not enabled or not dist.is_main_process() or total == 0)


def duration(seconds: float) -> str:
    """3725 -> '1 h 02 min'; 90 -> '1 min 30 s'; 200000 -> '2 days 7 h'."""
    seconds = max(0, int(round(seconds)))
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"
