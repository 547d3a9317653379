"""What a run folder holds, by name, and which run folder a checkpoint path belongs to.

Imports nothing heavy: the command line reads these before torch loads (run_names.py names
an evaluation's folder after its checkpoint's run; compare.py reads results files).
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"  # in CHECKPOINT_DIR
RESULTS_FILE = "results.json"
BACKBONE_FILE = "backbone.pt"
CONFIG_FILE = "config.yaml"


def run_folder(path: Path) -> Path:
    """The run folder of a checkpoint path: a folder itself, a checkpoints/last.pt's run
    folder, or the folder a backbone.pt (or any other file) lies in."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
