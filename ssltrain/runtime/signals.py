"""SIGINT / SIGTERM / SIGUSR2 during pretraining: a request the loop honours between steps,
so that an interrupted run saves a checkpoint and loses nothing.

SIGUSR2 is SLURM's warning before a job's time limit (sbatch --signal=USR2@120; the
submitit launcher's signal_delay_s). Under hydra/launcher=submitit_slurm, submitit has its
own SIGUSR2 handler, which requeues the job and exits at once; this one stands in front of
it during pretraining and hands the signal on to it once the checkpoint is written, so the
requeued job loses no step (the job resumes in its own folder: trainer.resume=auto).
Submitit bypasses SIGTERM; during pretraining it is a stop request here as everywhere."""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger(__name__)


class Interrupted(Exception):
    """Pretraining stopped on request after saving a checkpoint it can resume from."""


class StopRequest:
    """Turns SIGINT / SIGTERM / SIGUSR2 into a request the loop honours between steps.

    A second Ctrl-C while a stop is pending raises KeyboardInterrupt at once. Only the
    announcing process (rank 0) says so.
    """

    def __init__(self, announce: bool = True) -> None:
        self.requested = False
        self.announce = announce
        self._previous: dict[int, object] = {}
        self._signals: set[int] = set()

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self._signals.add(signum)
        if self.announce:
            log.warning("stop requested (%s): finishing this step and saving a checkpoint", signal.Signals(signum).name)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        launcher = self._previous.get(signal.SIGUSR2)
        if exc_type is Interrupted and signal.SIGUSR2 in self._signals and callable(launcher):
            launcher(signal.SIGUSR2, None)  # the launcher's handler (submitit: requeue), the checkpoint written
