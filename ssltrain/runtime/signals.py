"""SIGINT / SIGTERM during pretraining: a request the loop honours between steps, so that
an interrupted run saves a checkpoint and loses nothing."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Pretraining stopped on request after saving a checkpoint it can resume from."""


class StopRequest:
    """Turns SIGINT / SIGTERM into a request the loop honours between steps.

    A second Ctrl-C while a stop is pending raises KeyboardInterrupt at once. Only the
    announcing process (rank 0) says so.
    """

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self._previous: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        if self.announce:
            log.warning("stop requested (%s): finishing this step and saving a checkpoint", signal.Signals(signum).name)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
