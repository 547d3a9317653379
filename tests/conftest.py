"""Shared fixtures: the real CIFAR-10 copy, config composition, and a CLI runner."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CIFAR_TARBALL = Path(os.environ.get("SSLTRAIN_CIFAR10_TARBALL", REPO.parent / "shared" / "datasets" / "cifar10-jpeg-train.tar.gz"))
# Unpacked once per machine; the decode cache beside it makes later sessions start at once.
CIFAR_DIR = Path(os.environ.get("SSLTRAIN_TEST_DATA", Path.home() / ".cache" / "ssltrain-tests")) / "cifar10-jpeg"

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def cifar10_root() -> Path:
    """The offline CIFAR-10 training copy as an ImageFolder tree (root/train/<class>/*.jpg),
    unpacked by one test process while the others (pytest -n) wait."""
    CIFAR_DIR.parent.mkdir(parents=True, exist_ok=True)
    with open(CIFAR_DIR.parent / ".unpack.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (CIFAR_DIR / "train").is_dir():
            if not CIFAR_TARBALL.is_file():
                pytest.skip(f"the CIFAR-10 copy {CIFAR_TARBALL} is not here (set SSLTRAIN_CIFAR10_TARBALL)")
            partial = CIFAR_DIR.with_name(CIFAR_DIR.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            with tarfile.open(CIFAR_TARBALL) as archive:
                archive.extractall(partial, filter="data")
            partial.rename(CIFAR_DIR)
    return CIFAR_DIR


def run_cli(args: list[str], cwd: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m ssltrain ARGS` in `cwd`, with this checkout first on the path."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "ssltrain", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment)


# Fast CLI runs: synthetic data, the small CNN, short evaluation.
SMOKE = ["dataset=synthetic", "dataset.num_images=256", "encoder=small_cnn", "encoder.channels=[8,16]",
         "trainer.batch_size=32", "trainer.num_workers=0", "trainer.log_every=2", "eval=knn", "trainer.resume=never"]


@pytest.fixture(scope="session")
def learn(cifar10_root):
    """learn(check) -> learning_check's result for a learning_checks.yaml entry, printed and,
    when SSLTRAIN_LEARNING_REPORT names a file, appended to it (scripts/learning_report.py).
    SSLTRAIN_LEARNING_SEED (default 0) sets trainer.seed; each random-encoder baseline
    (per encoder, data and seed) is measured once per session."""
    from learning_check import METRICS, baseline_key, learning_check, learning_seed, random_baseline, record

    seed = learning_seed()
    baselines: dict[tuple[str, ...], dict[str, float]] = {}

    def check(entry) -> dict:
        key = baseline_key([*entry.overrides, f"trainer.seed={seed}"])
        if key not in baselines:
            baselines[key] = random_baseline(str(cifar10_root), list(key))
        result = learning_check(entry, str(cifar10_root), baselines[key], seed)
        scores = ", ".join(f"{name} {result['random_' + name]:.4f} -> {result['trained_' + name]:.4f}" for name in METRICS)
        print(f"\nlearning check {entry.command}, {entry.epochs} epochs, seed {seed}: {scores} (random init -> "
              f"trained; asserted on {entry.metric}; {result['val_split']})")
        record(result)
        return result

    return check


# A method that trains on each augmentation preset's views (a method checks the views it gets).
PRESET_METHOD = {"simclr": "simclr", "byol": "byol", "multicrop": "swav", "weak": "rotation", "none": "rotation",
                 "mae": "rotation", "imagenet_simclr": "simclr", "imagenet_byol": "byol", "multicrop_imagenet": "swav"}


def smoke(*overrides: str) -> list[str]:
    """SMOKE with `overrides` replacing entries for the same key; choosing a group
    (e.g. encoder=resnet18) also drops SMOKE's settings inside that group."""
    keys = {override.split("=")[0].lstrip("+") for override in overrides}
    kept = [entry for entry in SMOKE if entry.split("=")[0] not in keys and entry.split(".")[0] not in keys]
    return [*kept, *overrides]
