"""Checkpoints: atomic writes, and finding the run that `trainer.resume=auto` continues.

A checkpoint holds the method (encoder, heads, momentum copies, queues), the optimizer,
the grad scaler, the progress counters and the resolved config. Random state needs no
saving: the engine reseeds from (seed, rank, step) every step, so a resumed run draws what
the uninterrupted one would have drawn. Beside `last.pt` a small `last.json` says whose
run it is and how far it got, so finding a resumable run reads no tensors.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
from omegaconf import OmegaConf

from ssltrain.runtime.atomic import atomic_save, atomic_write_text
from ssltrain.runtime.run_files import BACKBONE_FILE, CHECKPOINT_DIR, CHECKPOINT_FILE, CONFIG_FILE, RESULTS_FILE
from ssltrain.errors import UserError

log = logging.getLogger(__name__)


# Settings that may change between an interrupted run and its resumption.
_NOT_IDENTITY = {"trainer": ("resume", "num_workers", "log_every", "knn_every", "image_every", "device", "checkpoint_every",
                             "objective"),
                 "encoder": ("checkpointing",),  # the same gradients, in less memory
                 "eval": None, "checkpoint": None}


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (== epochs when pretraining is done)
    step: int = 0  # optimizer steps done in the whole run
    step_in_epoch: int = 0  # optimizer steps done in `epoch`
    finished: bool = False  # pretraining done (evaluation may still be to run)
    train_seconds: float = 0.0  # wall time inside the training loop, over all sessions
    images_seen: int = 0  # training images processed, over all ranks and sessions
    unlogged: dict[str, Any] = field(default_factory=dict)  # scalars summed since the last log line and epoch line


@dataclass(frozen=True)
class CheckpointInterval:
    """How often pretraining writes a checkpoint besides every epoch's end: `trainer.checkpoint_every`
    is a number of steps (`500`), a wall time (`30s`, `5min`, `2h`), or `epoch` (only at epochs' ends)."""

    steps: Optional[int] = None
    seconds: Optional[float] = None

    UNITS = {"s": 1, "min": 60, "h": 3_600}

    @classmethod
    def parse(cls, text: str) -> "CheckpointInterval":
        text = str(text).strip()
        if text == "epoch":
            return cls()
        if text.isdigit() and int(text) > 0:
            return cls(steps=int(text))
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|min|h)", text)
        if match and float(match[1]) > 0:
            return cls(seconds=float(match[1]) * cls.UNITS[match[2]])
        raise UserError(f"trainer.checkpoint_every={text} is not an interval; give steps (500), a time (30s, 5min, 2h) "
                        f"or epoch")

    def due(self, steps_since: int, seconds_since: float) -> bool:
        if self.steps is not None:
            return steps_since >= self.steps
        return self.seconds is not None and seconds_since >= self.seconds


def run_identity(resolved: dict[str, Any]) -> str:
    """A hash of everything that decides what pretraining computes."""
    config = copy.deepcopy(resolved)
    for section, keys in _NOT_IDENTITY.items():
        if keys is None:
            config.pop(section, None)
        else:
            for key in keys:
                config.get(section, {}).pop(key, None)
    return hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


RETRY_SECONDS = 1.0  # before the second try of a failed checkpoint write


class Checkpointer:
    """Writes `<run_dir>/checkpoints/last.pt` (+ last.json). Rank 0 only.

    A write that fails (full disk, a vanished mount) is tried once more; if that fails too,
    the checkpoint goes to a rescue folder in the system's temporary directory and the run
    goes on, so the work is kept. Only when both places fail does the run stop.
    """

    def __init__(self, run_dir: Path, resolved: dict[str, Any], train_images: Optional[int] = None):
        self.path = run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
        self.resolved = resolved
        self.identity = run_identity(resolved)
        self.train_images = train_images
        self.rescue_path = Path(tempfile.gettempdir()) / "ssltrain-rescue" / f"{run_dir.name}-{self.identity}" / CHECKPOINT_FILE
        self.written: Optional[Path] = None  # where the newest checkpoint is

    def save(self, method: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, progress: Progress) -> Path:
        """Write the checkpoint; returns where it went."""
        state = {
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "progress": asdict(progress),
            "config": self.resolved,
            "train_images": self.train_images,
        }
        try:
            self._write(state, self.path)
        except OSError as first:
            log.warning("could not write the checkpoint %s (%s); trying again", self.path, first)
            time.sleep(RETRY_SECONDS)
            try:
                self._write(state, self.path)
            except OSError as error:
                self._rescue(state, error)
                return self.written
        self.written = self.path
        return self.written

    def _rescue(self, state: dict[str, Any], error: OSError) -> None:
        try:
            self._write(state, self.rescue_path)
        except OSError:
            raise UserError(f"cannot write a checkpoint to {self.path} ({error}) nor to {self.rescue_path}; free disk "
                            f"space or fix the folder, then rerun to resume from the last checkpoint written") from None
        log.warning("could not write the checkpoint to %s (%s); wrote it to %s instead (resume from it with "
                    "trainer.resume=%s)", self.path, error, self.rescue_path, self.rescue_path)
        self.written = self.rescue_path

    def _write(self, state: dict[str, Any], path: Path) -> None:
        atomic_save(state, path)
        summary = {"identity": self.identity, **state["progress"]}
        atomic_write_text(path.with_suffix(".json"), json.dumps(summary))


def restore(state: dict[str, Any], method: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler) -> Progress:
    """Load what `Checkpointer.save` wrote into a freshly built run; returns where it stopped."""
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    return Progress(**state["progress"])


def checkpoint_file(path: str | Path, key: str) -> Path:
    """The file `key=path` names: the file itself, or in a run folder its checkpoints/last.pt
    (else its backbone.pt). Raises a one-line UserError when there is none."""
    path = Path(path).expanduser()
    if path.is_dir():
        for inside in (path / CHECKPOINT_DIR / CHECKPOINT_FILE, path / BACKBONE_FILE):
            if inside.is_file():
                return inside
        raise UserError(f"{key}={path} is a folder without {CHECKPOINT_DIR}/{CHECKPOINT_FILE} or {BACKBONE_FILE}; "
                        f"give a run's folder or the path of its checkpoints/last.pt")
    if not path.is_file():
        raise UserError(f"{key}={path} does not exist; give a run's folder or the path of its checkpoints/last.pt")
    return path


def load_checkpoint(path: str | Path, key: str = "checkpoint") -> dict[str, Any]:
    """The checkpoint `key=path` names (see checkpoint_file), read onto the CPU."""
    path = checkpoint_file(path, key)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which
        raise UserError(f"cannot read checkpoint {path} ({type(error).__name__}: {str(error).splitlines()[0]})") from None


def split_checkpoint(state: dict[str, Any]) -> tuple[Optional[dict[str, Any]], dict[str, torch.Tensor]]:
    """(the run's resolved config, the encoder's weights) of what load_checkpoint read: a run's
    last.pt holds both (the encoder's under the method's `encoder.` keys); a backbone.pt is
    the encoder's state_dict alone, with no config (None)."""
    if "method" in state and "config" in state:
        prefix = "encoder."
        return state["config"], {key[len(prefix):]: value for key, value in state["method"].items() if key.startswith(prefix)}
    return None, state


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None


def held_identity(run_dir: Path) -> Optional[str]:
    """The identity of the run `run_dir` holds: its checkpoint's, else its saved config's."""
    summary = read_summary(run_dir)
    if summary is not None:
        return summary["identity"]
    try:
        return run_identity(OmegaConf.to_container(OmegaConf.load(run_dir / CONFIG_FILE)))
    except (OSError, ValueError):
        return None


def find_resumable(run_dir: Path, search_roots: list[Path], identity: str) -> Path | None:
    """The run directory `trainer.resume=auto` continues, or None for a fresh start.

    This run's own directory when it holds a checkpoint of the same config (a rerun with
    hydra.run.dir set); else the newest run of the same config under `search_roots`, if it
    has not written its results yet. An older unfinished run with a finished one newer
    than it was abandoned, and is left alone.
    """
    own = read_summary(run_dir)
    if own is not None and own["identity"] == identity:
        return run_dir
    runs = []
    for root in search_roots:
        for summary_path in root.glob(f"**/{CHECKPOINT_DIR}/{Path(CHECKPOINT_FILE).stem}.json"):
            candidate = summary_path.parent.parent
            summary = read_summary(candidate)
            if summary and summary["identity"] == identity:
                runs.append((summary_path.stat().st_mtime, candidate))
    if not runs:
        return None
    newest = max(runs)[1]
    return None if (newest / RESULTS_FILE).exists() else newest
