"""scripts/benchmark.py: its CPU smoke mode writes complete records; bad choices fail early."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from PIL import Image

from conftest import REPO

SCRIPT = REPO / "scripts" / "benchmark.py"
REQUIRED_KEYS = ("device", "torch", "command", "method", "encoder", "batch_size", "precision", "compile", "backend",
                 "images_per_second", "peak_memory_gb")


def _run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_the_smoke_run_writes_one_complete_record_per_backend(tmp_path):
    out = tmp_path / "bench.json"
    done = _run(["--smoke", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    assert sorted(r["backend"] for r in records) == ["batched", "dataloader", "per_sample"]
    for record in records:
        assert all(key in record for key in REQUIRED_KEYS), record
        assert record["images_per_second"] > 0 and record["precision"] == "fp32" and record["compile"] is False
        assert "--smoke" in record["command"] and record["device"].startswith("cpu")
    assert "| simclr | small_cnn | off | batched |" in done.stdout


def test_an_unregistered_method_fails_before_any_measurement(tmp_path):
    done = _run(["--smoke", "--methods", "simclr,no_such_method", "--out", str(tmp_path / "x.json")], tmp_path)
    assert done.returncode != 0 and "method 'no_such_method' is not registered" in done.stderr
    assert not (tmp_path / "x.json").exists()


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_speedup_is_the_batched_rate_over_the_dataloader_rate_of_the_same_setting():
    records = [{"method": "simclr", "encoder": "resnet18", "compile": c, "backend": b, "images_per_second": v}
               for c, b, v in ((False, "batched", 3000.0), (False, "dataloader", 1000.0), (True, "batched", 5000.0),
                               (True, "dataloader", None))]
    assert _benchmark_module().speedups(records) == {("simclr", "resnet18", False, "batched"): 3.0}


def test_the_large_image_smoke_run_measures_the_streamed_backends_and_the_peers_on_files(tmp_path):
    for name in ("a", "b"):
        (tmp_path / "large" / "train" / name).mkdir(parents=True)
        for i in range(10):
            Image.new("RGB", (100 + i, 90), (20 * i, 80, 40 if name == "a" else 200)).save(
                tmp_path / "large" / "train" / name / f"{i}.jpg", quality=90)
    out = tmp_path / "bench.json"
    done = _run(["--smoke", "--large-images", str(tmp_path / "large"), "--image-size", "72", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr
    records = json.loads(out.read_text())
    assert [r["backend"] for r in records] == ["streamed", "per_sample", "dataloader"]
    assert all(r["images_per_second"] > 0 and r["image_size"] == 72 and len(r["load_average_before"]) == 3
               for r in records)
