"""Who owns a run directory, and what a start may clean or remove there.

A run directory is owned by one live process: rank 0 holds an exclusive `flock` on
`<run_dir>/.ssltrain.lock` (the file holds its pid) from before its first write until it
exits. The kernel drops the lock when the process ends, crash or SIGKILL included, so a
stale lock never blocks a rerun. A second process that would write there stops with one
line naming the owner.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ssltrain.errors import UserError
from ssltrain.runtime.atomic import TEMPORARY_GLOB
from ssltrain.runtime.checkpoint import find_resumable, held_identity, read_summary
from ssltrain.runtime.log_file import move_log

log = logging.getLogger(__name__)

LOCK_FILE = ".ssltrain.lock"
# What Hydra and a start write before any work: a folder holding only these has no run in it.
START_FILES = frozenset({".hydra", "ssltrain.log", LOCK_FILE})


class RunLock:
    """An exclusive lock on a run directory, held while the process writes there."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self._handle: Optional[int] = None

    def try_acquire(self) -> Optional[int]:
        """Take the lock; returns None on success, else the owner's pid (0 when unknown)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        handle = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(handle, 32).decode(errors="replace").strip()
            os.close(handle)
            return int(owner) if owner.isdigit() else 0
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        self._handle = handle
        return None

    def acquire(self, advice: str = "wait for it to end, or give this run its own folder with hydra.run.dir=PATH") -> "RunLock":
        """Take the lock or stop with one line naming the owner and `advice`."""
        owner = self.try_acquire()
        if owner is not None:
            raise UserError(f"{self.run_dir} is in use by another ssltrain process (pid {owner or 'unknown'}); {advice}")
        return self

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor drops the flock
            self._handle = None

    def __enter__(self) -> "RunLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_temporaries(run_dir: Path) -> None:
    """Delete the `.<name>.*.tmp` files an atomic write killed mid-way left behind.
    Call it only while holding the run's lock: then no write of this run is in flight."""
    for temporary in run_dir.rglob(TEMPORARY_GLOB):
        log.info("removing %s, left by an interrupted write", temporary)
        temporary.unlink(missing_ok=True)


def holds_no_run(run_dir: Path) -> bool:
    """True when `run_dir` holds only what Hydra and a start write before any work."""
    return run_dir.is_dir() and all(entry.name in START_FILES for entry in run_dir.iterdir())


def remove_if_empty(run_dir: Path) -> None:
    """Remove `run_dir` when it holds no run and no live process owns it."""
    lock = RunLock(run_dir)
    if holds_no_run(run_dir) and lock.try_acquire() is None:
        with lock:
            shutil.rmtree(run_dir, ignore_errors=True)


@dataclass
class Claim:
    """The run directory this process writes to, locked for it."""

    run_dir: Path
    lock: RunLock
    resumes: bool  # run_dir holds a checkpoint of this config to continue from


def claim(run_dir: Path, search_roots: list[Path], identity: Optional[str], resume_auto: bool) -> Claim:
    """Lock the folder this run will write to; rank 0 only.

    `run_dir` is Hydra's folder for this run; `identity` is None for a run that only
    evaluates a checkpoint. The folder must hold no run, or (with trainer.resume=auto) a
    run of the same config, which continues. With resume=auto, the newest unfinished run
    of the same config elsewhere continues in its own folder: it is locked, named in the
    log before anything else happens, this process's log moves there, and the folder
    Hydra made for this start is removed.
    """
    own = RunLock(run_dir).acquire()
    try:
        continues_own = resume_auto and identity is not None and held_identity(run_dir) == identity
        if not holds_no_run(run_dir) and not continues_own:
            raise UserError(f"{run_dir} already holds another run (a different config, or trainer.resume is not auto); "
                            f"give this run its own folder with hydra.run.dir=PATH, or delete that one")
        found = find_resumable(run_dir, search_roots, identity) if resume_auto and identity is not None else None
        if found is None or found == run_dir:
            remove_stale_temporaries(run_dir)
            return Claim(run_dir, own, found is not None)
        lock = RunLock(found).acquire("it holds the newest unfinished run of this config; wait for that process, "
                                      "or start a separate run with trainer.resume=never")
    except BaseException:
        own.release()
        raise
    summary = read_summary(found) or {}
    log.info("resuming the unfinished run in %s (epoch %s, step %s); its outputs and log continue there",
             found, summary.get("epoch"), summary.get("step"))
    move_log(found)
    own.release()
    remove_if_empty(run_dir)
    remove_stale_temporaries(found)
    return Claim(found, lock, True)
