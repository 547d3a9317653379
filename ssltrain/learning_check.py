"""Does a short pretraining run learn? kNN accuracy on held-out images after a few epochs
against the same encoder at random initialisation (trainer.epochs=0), same seed and data.

Used by the learning tests and by scripts/learning_report.py, which records the numbers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ssltrain.cli import compose_settings
from ssltrain.run import run

# Small enough for 2 CPU cores, large enough to measure: kNN on 5,000 held-out images.
DEFAULTS = ("encoder=small_cnn", "eval=knn", "trainer.resume=never", "trainer.log_every=10",
            "trainer.image_every=0", "dataset.limit=3000", "trainer.batch_size=128", "optimizer.warmup_epochs=1")


def knn_top1(overrides: list[str]) -> dict:
    """Run pretraining + kNN evaluation in this process; returns results.json's content."""
    settings = compose_settings([*DEFAULTS, *overrides])
    with tempfile.TemporaryDirectory(prefix="ssltrain-learning-") as run_dir:
        return run(settings, Path(run_dir), search_roots=[])


def random_baseline(data_root: str, overrides: list[str] = ()) -> float:
    """kNN top-1 of the untrained encoder. It depends on the encoder, seed and images only,
    so one number serves every method trained with the same DEFAULTS."""
    return knn_top1([f"dataset.root={data_root}", *overrides, "trainer.epochs=0"])["knn_top1"]


def learning_check(overrides: list[str], data_root: str, epochs: int, baseline: float | None = None) -> dict:
    """{'random': kNN top-1 at initialisation, 'trained': after `epochs`, 'gain': the difference}."""
    common = [f"dataset.root={data_root}", *overrides]
    random = random_baseline(data_root, overrides) if baseline is None else baseline
    trained = knn_top1([*common, f"trainer.epochs={epochs}"])
    return {"method": trained["method"], "encoder": trained["encoder"], "overrides": [*DEFAULTS, *common], "epochs": epochs, "random_knn_top1": random,
            "trained_knn_top1": trained["knn_top1"], "gain": trained["knn_top1"] - random,
            "val_split": trained["val_split"], "train_images": trained["train_images"],
            "pretrain_seconds": trained["pretrain_seconds"]}
