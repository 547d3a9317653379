"""scripts/reproduce.py: one recipe run per method, recorded as JSON and a Markdown table."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "reproduce.py"


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def test_a_tiny_simclr_reproduction_records_accuracy_and_time(tmp_path, cifar10_root):
    out = tmp_path / "repro"
    done = _run(["--data", str(cifar10_root), "--epochs", "1", "--methods", "simclr", "--encoder", "small_cnn",
                 "--out", str(out), "dataset.limit=256", "trainer.batch_size=64", "trainer.num_workers=0"], tmp_path)
    assert done.returncode == 0, done.stderr
    [record] = json.loads((tmp_path / "repro.json").read_text())
    assert record["method"] == "simclr" and record["epochs"] == 1 and record["train_images"] == 256
    assert 0.0 <= record["knn_top1"] <= 1.0 and record["wall_seconds"] >= record["pretrain_seconds"] > 0
    assert record["val_split"].startswith("holdout") and record["command"].startswith("ssltrain method=simclr")
    assert "| simclr | small_cnn | 1 |" in (tmp_path / "repro.md").read_text()


def test_an_unregistered_method_stops_the_reproduction_before_any_run(tmp_path):
    done = _run(["--data", str(tmp_path), "--epochs", "1", "--methods", "simclr,no_such_method",
                 "--out", str(tmp_path / "repro")], tmp_path)
    assert done.returncode != 0 and "method 'no_such_method' is not registered" in done.stderr
    assert not (tmp_path / "repro-runs").exists()
