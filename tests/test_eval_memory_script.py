"""scripts/eval_memory.py: a tiny run writes a complete record per protocol."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "eval_memory.py"


def test_a_tiny_run_records_each_protocols_peak_memory_and_seconds_with_the_machine(tmp_path):
    out = tmp_path / "memory.json"
    args = ["--train", "2000", "--val", "500", "--dim", "32", "--protocols", "retrieval", "--output", str(out)]
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["command"].endswith("--protocols retrieval --output " + str(out))
    assert report["machine"] and report["torch"] and report["date"]
    assert report["train_features"] == [2000, 32] and report["train_features_mb"] == 2000 * 32 * 4 / 1e6
    assert report["train_by_train_float32_mb"] == 2000 ** 2 * 4 / 1e6
    [record] = report["protocols"]
    assert record["protocol"] == "retrieval" and record["seconds"] > 0 and 0 <= record["metrics"]["recall_at_1"] <= 1
    assert 0 <= record["peak_above_features_mb"] < 100 and record["peak_rss_mb"] >= record["rss_before_call_mb"]


def test_an_unknown_protocol_fails_before_any_measurement(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--protocols", "knn,linear", "--output", str(tmp_path / "x")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--protocols: linear unknown" in done.stderr and not (tmp_path / "x").exists()
