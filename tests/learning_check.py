"""Does a short pretraining run learn? Held-out accuracy after a few epochs against the same
encoder at random initialisation (trainer.epochs=0, BatchNorm statistics estimated on the
training images), same seed and data.

Both probes run on the same frozen features: kNN (weighted, k=200) and a linear classifier
trained on precomputed features (seconds on CPU). Each check's settings, the probe it
asserts on and the margin are in learning_checks.yaml; tests/test_learning.py runs them
and scripts/learning_report.py records their numbers.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ssltrain.data.decode import class_folders
from ssltrain.compose import compose_settings
from ssltrain.run import run

TABLE = Path(__file__).with_name("learning_checks.yaml")
# Every check: the small CNN on 3,000 images (2 CPU cores), probes scored on 5,000 held-out images.
DEFAULTS = ("encoder=small_cnn", "eval=linear", "dataset.limit=3000", "trainer.resume=never", "trainer.log_every=10",
            "trainer.image_every=0")
METRICS = ("knn_top1", "linear_top1")


@dataclass
class Check:
    method: str
    epochs: int
    metric: str
    overrides: list[str] = field(default_factory=list)  # changes to the method's recipe; empty: the recipe as is
    why: str = ""  # the reason for each override, and what other settings measured
    default_suite: bool = False  # runs in the default `pytest` (the rest: `pytest -m slow`)
    teacher: str = ""  # another check's method, pretrained first as that check does; its run is method.teacher

    @property
    def command(self) -> list[str]:
        return [f"method={self.method}", *self.overrides]


def learning_seed() -> int:
    """trainer.seed of the checks: SSLTRAIN_LEARNING_SEED (default 0; learning_report.py --seeds)."""
    return int(os.environ.get("SSLTRAIN_LEARNING_SEED", "0"))


def record(result: dict) -> None:
    """Append a check's result to SSLTRAIN_LEARNING_REPORT when that names a file (learning_report.py)."""
    report = os.environ.get("SSLTRAIN_LEARNING_REPORT")
    if report:
        with open(report, "a") as file:
            file.write(json.dumps(result) + "\n")


def load_table() -> tuple[float, dict[str, Check]]:
    """(margin, {method: its check}) from learning_checks.yaml."""
    table = yaml.safe_load(TABLE.read_text())
    checks = {name: Check(method=name, **entry) for name, entry in table["checks"].items()}
    for check in checks.values():
        if check.metric not in METRICS:
            raise ValueError(f"{TABLE}: {check.method}'s metric {check.metric!r} is not one of {METRICS}")
    return table["margin"], checks


def probe(overrides: list[str]) -> dict:
    """Run pretraining + evaluation in this process; returns results.json's content."""
    settings = compose_settings([*DEFAULTS, *overrides])
    with tempfile.TemporaryDirectory(prefix="ssltrain-learning-") as run_dir:
        return run(settings, Path(run_dir), search_roots=[])


def baseline_key(overrides: list[str]) -> tuple[str, ...]:
    """The overrides that change what the random encoder scores: its encoder, the data, the seed."""
    return tuple(sorted(o for o in overrides if o.lstrip("+").startswith(("encoder", "dataset", "trainer.seed"))))


def random_baseline(data_root: str, overrides: list[str] = ()) -> dict[str, float]:
    """{metric: accuracy} of the untrained encoder (its BatchNorm statistics estimated)."""
    results = probe([f"dataset.root={data_root}", *overrides, "trainer.epochs=0"])
    return {metric: results[metric] for metric in METRICS}


def pretrain_teacher(name: str, data_root: str, seed: int, run_dir: Path) -> None:
    """Pretrain as the check of method `name` does (no evaluation), writing its run to run_dir."""
    teacher = load_table()[1][name]
    defaults = [option for option in DEFAULTS if not option.startswith("eval=")]
    run(compose_settings([*defaults, "eval=none", f"dataset.root={data_root}", *teacher.command, f"trainer.seed={seed}",
                          f"trainer.epochs={teacher.epochs}"]), run_dir, search_roots=[])


def learning_check(check: Check, data_root: str, baseline: dict[str, float], seed: int = 0) -> dict:
    """Both metrics after `check.epochs` of pretraining next to the baseline's; 'gain' is
    the checked metric's difference. A check with a teacher pretrains that first."""
    common = [f"dataset.root={data_root}", *check.command, f"trainer.seed={seed}"]
    with tempfile.TemporaryDirectory(prefix="ssltrain-teacher-") as teacher_dir:
        if check.teacher:
            pretrain_teacher(check.teacher, data_root, seed, Path(teacher_dir))
            common.append(f"method.teacher={teacher_dir}")
        trained = probe([*common, f"trainer.epochs={check.epochs}"])
    scores = {f"{state}_{name}": source[name] for name in METRICS
              for state, source in (("random", baseline), ("trained", trained))}
    return {"method": trained["method"], "encoder": trained["encoder"], "overrides": [*DEFAULTS, *common],
            "epochs": check.epochs, "seed": seed, "metric": check.metric, **scores,
            "gain": trained[check.metric] - baseline[check.metric], "val_split": trained["val_split"],
            "train_images": trained["train_images"], "pretrain_seconds": trained["pretrain_seconds"]}


# The protocols beyond the full-label probes, scored in one run each: k-means, retrieval, and
# with 10% of the labelled training images (the semi-supervised protocol) the linear probe,
# kNN, the layer-wise probes and fine-tuning (its default recipe).
PROTOCOLS = ("eval=[linear,kmeans,retrieval,layers,finetune]",
             *(f"+eval.settings.{probe}.label_fraction=0.1" for probe in ("linear", "layers", "finetune")))
PROTOCOL_METRICS = ("linear_top1", "knn_top1", "kmeans_nmi", "kmeans_ari", "kmeans_accuracy", "recall_at_1", "map_at_r",
                    "stage0_top1", "stage1_top1", "stage2_top1", "stage3_top1", "finetune_top1")


def _against_random(check: Check, common: list[str], metrics: tuple[str, ...], seed: int) -> dict:
    """`metrics` after `check.epochs` of pretraining next to the random encoder's (same settings)."""
    random, trained = probe([*common, "trainer.epochs=0"]), probe([*common, f"trainer.epochs={check.epochs}"])
    scores = {f"{state}_{name}": source[name] for name in metrics
              for state, source in (("random", random), ("trained", trained))}
    return {"method": trained["method"], "encoder": trained["encoder"], "overrides": [*DEFAULTS, *common],
            "epochs": check.epochs, "seed": seed, "protocols": trained["eval"], **scores,
            "eval_dataset": trained["eval_dataset"], "val_split": trained["val_split"],
            "train_images": trained["train_images"]}


def protocol_check(check: Check, data_root: str, seed: int = 0) -> dict:
    """Every PROTOCOL_METRICS figure after `check.epochs` of pretraining next to the random encoder's."""
    return _against_random(check, [f"dataset.root={data_root}", *check.command, f"trainer.seed={seed}", *PROTOCOLS],
                           PROTOCOL_METRICS, seed)


TRANSFER_METRICS = ("linear_top1", "knn_top1")


def class_split(data_root: str, cache: Path) -> tuple[Path, Path]:
    """Two ImageFolder roots of symlinked class folders: the copy's first half of the classes
    (sorted by name) and the other half, made once under `cache`."""
    classes = class_folders(Path(data_root) / "train")
    halves = (cache / "first-half", cache / "second-half")
    for half, names in zip(halves, (classes[: len(classes) // 2], classes[len(classes) // 2:])):
        for name in names:
            link = half / "train" / name
            if not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(Path(data_root) / "train" / name)
    return halves


def transfer_check(check: Check, data_root: str, cache: Path, seed: int = 0) -> dict:
    """Pretrain on the first half of the classes; the linear probe and kNN on the other half
    (classes never seen in pretraining: 3,000 training and 5,000 held-out images of them),
    against the random encoder scored the same way."""
    first, second = class_split(data_root, cache)
    common = ["dataset=imagefolder", f"dataset.root={first}", "dataset.image_size=32", *check.command,
              f"trainer.seed={seed}", "eval=linear", "eval_dataset=imagefolder", f"eval_dataset.root={second}",
              "eval_dataset.limit=3000", "eval_dataset.holdout_fraction=0.2"]
    return _against_random(check, common, TRANSFER_METRICS, seed)
