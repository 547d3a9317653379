"""What a run folder holds, by name (and which numbers of its results file describe the run), and which run folder a checkpoint path belongs to.

Imports nothing heavy: the command line reads these before torch loads (run_names.py names
an evaluation's folder after its checkpoint's run; compare.py reads results files, and
objective.py what they hold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FILE = "last.pt"  # in CHECKPOINT_DIR
RESULTS_FILE = "results.json"
BACKBONE_FILE = "backbone.pt"
CONFIG_FILE = "config.yaml"

# The numbers of RESULTS_FILE that describe a run rather than score it: those every run writes
# (run.evaluate_and_report), and what a classifier protocol trained on (eval.label_fraction).
RUN_NUMBERS = ("epochs", "train_images", "eval_train_images", "val_images", "pretrain_seconds", "images_per_second",
               "seed")
LABEL_COUNTS = ("label_fraction", "labelled_images")


def result_numbers(results: dict[str, Any]) -> dict[str, float]:
    """The entries of a results file that are numbers (not flags, names or nulls)."""
    return {key: value for key, value in results.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def run_folder(path: Path) -> Path:
    """The run folder of a checkpoint path: a folder itself, a checkpoints/last.pt's run
    folder, or the folder a backbone.pt (or any other file) lies in."""
    if path.is_dir():
        return path
    return path.parent.parent if path.parent.name == CHECKPOINT_DIR else path.parent
