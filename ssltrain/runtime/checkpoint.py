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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ssltrain.runtime.atomic import atomic_save, atomic_write_text
from ssltrain.errors import UserError

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"
RESULTS_FILE = "results.json"

# Settings that may change between an interrupted run and its resumption.
_NOT_IDENTITY = {"trainer": ("resume", "num_workers", "log_every", "knn_every", "image_every", "device"),
                 "eval": None, "checkpoint": None}


@dataclass
class Progress:
    epoch: int = 0  # the epoch in progress (== epochs when pretraining is done)
    step: int = 0  # optimizer steps done in the whole run
    step_in_epoch: int = 0  # optimizer steps done in `epoch`
    finished: bool = False  # pretraining done (evaluation may still be to run)
    train_seconds: float = 0.0  # wall time inside the training loop, over all sessions
    images_seen: int = 0  # training images processed, over all ranks and sessions


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


class Checkpointer:
    """Writes `<run_dir>/checkpoints/last.pt` (+ last.json). Rank 0 only."""

    def __init__(self, run_dir: Path, resolved: dict[str, Any]):
        self.path = run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE
        self.resolved = resolved
        self.identity = run_identity(resolved)

    def save(self, method: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, progress: Progress) -> None:
        state = {
            "method": method.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict(),
            "progress": asdict(progress),
            "config": self.resolved,
        }
        atomic_save(state, self.path)
        summary = {"identity": self.identity, **asdict(progress)}
        atomic_write_text(self.path.with_suffix(".json"), json.dumps(summary))


def restore(state: dict[str, Any], method: torch.nn.Module, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler) -> Progress:
    """Load what `Checkpointer.save` wrote into a freshly built run; returns where it stopped."""
    method.load_state_dict(state["method"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    return Progress(**state["progress"])


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist; give the path of a checkpoints/last.pt")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which
        raise UserError(f"cannot read checkpoint {path} ({type(error).__name__}: {str(error).splitlines()[0]})") from None


def _summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / CHECKPOINT_DIR / CHECKPOINT_FILE).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None


def find_resumable(run_dir: Path, search_roots: list[Path], identity: str) -> Path | None:
    """The run directory `trainer.resume=auto` continues, or None for a fresh start.

    This run's own directory first (a rerun with hydra.run.dir set); else the newest run
    under `search_roots` with the same identity that has not written its results yet.
    """
    own = _summary(run_dir)
    if own is not None and own["identity"] == identity:
        return run_dir
    candidates = []
    for root in search_roots:
        for summary_path in root.glob(f"**/{CHECKPOINT_DIR}/{Path(CHECKPOINT_FILE).stem}.json"):
            candidate = summary_path.parent.parent
            summary = _summary(candidate)
            if summary and summary["identity"] == identity and not (candidate / RESULTS_FILE).exists():
                candidates.append((summary_path.stat().st_mtime, candidate))
    return max(candidates)[1] if candidates else None
