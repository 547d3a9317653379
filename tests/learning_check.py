"""Does a short pretraining run learn? Held-out accuracy after a few epochs against the same
encoder at random initialisation (trainer.epochs=0), same seed and data.

Both probes run on the same frozen features: kNN (weighted, k=200) and a linear classifier
trained on precomputed features (seconds on CPU). Each check names the one it asserts on;
the other is recorded beside it. Used by the learning tests and by
scripts/learning_report.py, which records the numbers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ssltrain.cli import compose_settings
from ssltrain.run import run

# Small enough for 2 CPU cores, large enough to measure: probes scored on 5,000 held-out images.
DEFAULTS = ("encoder=small_cnn", "eval=linear", "trainer.resume=never", "trainer.log_every=10",
            "trainer.image_every=0", "dataset.limit=3000", "trainer.batch_size=128", "optimizer.warmup_epochs=1")
METRICS = ("knn_top1", "linear_top1")


def probe(overrides: list[str]) -> dict:
    """Run pretraining + evaluation in this process; returns results.json's content."""
    settings = compose_settings([*DEFAULTS, *overrides])
    with tempfile.TemporaryDirectory(prefix="ssltrain-learning-") as run_dir:
        return run(settings, Path(run_dir), search_roots=[])


def random_baseline(data_root: str, overrides: list[str] = ()) -> dict[str, float]:
    """{metric: accuracy} of the untrained encoder. It depends on the encoder, seed and images
    only, so one baseline serves every method trained with the same DEFAULTS."""
    results = probe([f"dataset.root={data_root}", *overrides, "trainer.epochs=0"])
    return {metric: results[metric] for metric in METRICS}


def learning_check(overrides: list[str], data_root: str, epochs: int, metric: str = "knn_top1",
                   baseline: dict[str, float] | None = None) -> dict:
    """Both metrics at random init and after `epochs`; 'gain' is `metric`'s difference."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}; choose one of: {', '.join(METRICS)}")
    common = [f"dataset.root={data_root}", *overrides]
    random = random_baseline(data_root, overrides) if baseline is None else baseline
    trained = probe([*common, f"trainer.epochs={epochs}"])
    scores = {f"{state}_{name}": source[name] for name in METRICS for state, source in (("random", random), ("trained", trained))}
    return {"method": trained["method"], "encoder": trained["encoder"], "overrides": [*DEFAULTS, *common], "epochs": epochs,
            "metric": metric, **scores, "gain": trained[metric] - random[metric], "val_split": trained["val_split"],
            "train_images": trained["train_images"], "pretrain_seconds": trained["pretrain_seconds"]}
