"""`ssltrain-compare`: a table and a chart of the metrics of every results.json under folders."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO, run_cli, smoke
from ssltrain.compare import main

SWEEP = Path("multirun") / "2026-12-01" / "10-00-00-000001"
# job folder -> results.json (the bookkeeping keys run.py writes, and some metrics)
JOBS = {
    "0-simclr-small_cnn-trainer.epochs=0": {"method": "simclr", "encoder": "small_cnn", "epochs": 0,
                                            "dataset": "cifar10", "seed": 0, "train_images": 3000,
                                            "pretrain_seconds": 0.0, "images_per_second": None, "eval": "linear",
                                            "knn_top1": 0.313, "linear_top1": 0.334, "linear_top5": 0.85},
    "1-simclr-small_cnn-trainer.epochs=10": {"method": "simclr", "encoder": "small_cnn", "epochs": 10,
                                             "dataset": "cifar10", "seed": 0, "train_images": 3000,
                                             "pretrain_seconds": 55.2, "images_per_second": 545.1,
                                             "knn_top1": 0.348, "linear_top1": 0.449, "linear_top5": 0.912,
                                             "label_fraction": 1.0, "labelled_images": 45000},
    "2-byol-small_cnn-trainer.epochs=10": {"method": "byol", "encoder": "small_cnn", "epochs": 10,
                                                       "dataset": "cifar10", "seed": 0, "kmeans_nmi": 0.14,
                                                       "map_at_r": 0.052, "future_metric": 3.5},
}
METRICS = ["knn_top1", "linear_top1", "linear_top5", "kmeans_nmi", "map_at_r", "future_metric"]


def write_sweep(root: Path, jobs: dict = JOBS) -> Path:
    for name, results in jobs.items():
        (root / SWEEP / name).mkdir(parents=True)
        (root / SWEEP / name / "results.json").write_text(json.dumps(results))
    return root / SWEEP


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as file:
        return list(csv.DictReader(file))


def test_the_table_has_a_row_per_run_and_a_column_per_metric(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    assert main([str(tmp_path / "multirun"), "--output", str(tmp_path / "out")]) == 0
    rows = read_csv(tmp_path / "out" / "comparison.csv")
    assert list(rows[0]) == ["run", *METRICS, "folder"], "bookkeeping numbers (seed, epochs, ...) are no columns"
    assert [Path(row["folder"]) for row in rows] == [sweep / name for name in JOBS]
    for row, results in zip(rows, JOBS.values()):
        assert {key: float(row[key]) for key in METRICS if row[key]} == {k: v for k, v in results.items() if k in METRICS}
        assert all(row[key] == "" for key in METRICS if key not in results), "a missing metric is empty"
    assert [row["run"] for row in rows] == ["simclr / small_cnn / random init / cifar10 / trainer.epochs=0",
                                            "simclr / small_cnn / 10 epochs / cifar10 / trainer.epochs=10",
                                            "byol / small_cnn / 10 epochs / cifar10 / trainer.epochs=10"]
    table = (tmp_path / "out" / "comparison.md").read_text()
    assert capsys.readouterr().out == table
    assert table.splitlines()[0] == "| run | " + " | ".join(METRICS) + " | folder |"
    assert "| byol / small_cnn / 10 epochs / cifar10 / trainer.epochs=10 | - | - | - | 0.1400 |" in table


def test_the_chart_is_a_png_of_the_metrics_in_0_1(tmp_path, capsys):
    sweep = write_sweep(tmp_path)
    assert main([str(sweep)]) == 0
    png = (sweep / "comparison.png").read_bytes()  # one DIR: the files go beside its runs
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    assert "left out, not in [0, 1]: future_metric" in capsys.readouterr().err


def test_metrics_chooses_the_columns_and_an_unknown_one_is_an_error(tmp_path, capsys):
    write_sweep(tmp_path)
    assert main([str(tmp_path), "--metrics", "linear_top1,knn_top1"]) == 0
    assert list(read_csv(tmp_path / "comparison.csv")[0]) == ["run", "linear_top1", "knn_top1", "folder"]
    assert main([str(tmp_path), "--metrics", "linear_top1,knn_top2"]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("ssltrain-compare: error: --metrics: no run has knn_top2; they have: knn_top1,")


def test_runs_that_describe_alike_are_told_apart_by_their_folder(tmp_path):
    same = {"method": "simclr", "encoder": "small_cnn", "epochs": 5, "dataset": "synthetic", "knn_top1": 0.5}
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "results.json").write_text(json.dumps(same))
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0  # two DIRs: the folder that holds both
    assert [row["run"] for row in read_csv(tmp_path / "comparison.csv")] == [
        f"simclr / small_cnn / 5 epochs / synthetic ({tmp_path / folder})" for folder in ("a", "b")]


def test_bad_folders_are_one_line_errors_and_a_corrupt_file_is_skipped_with_a_warning(tmp_path, capsys):
    assert main([str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"ssltrain-compare: error: {tmp_path / 'missing'}: no such folder\n"
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"ssltrain-compare: error: no results.json under {tmp_path}\n"
    sweep = write_sweep(tmp_path)
    corrupt = sweep / "3-simclr-small_cnn-trainer.epochs=20" / "results.json"
    corrupt.parent.mkdir()
    corrupt.write_text('{"method": "simclr", "knn_')
    assert main([str(tmp_path)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"ssltrain-compare: warning: skipping {corrupt}: ")
    assert len(read_csv(tmp_path / "comparison.csv")) == len(JOBS)


def test_without_matplotlib_the_tables_are_written_and_one_line_says_how_to_get_the_chart(tmp_path, capsys,
                                                                                          monkeypatch):
    sweep = write_sweep(tmp_path)
    (sweep / "comparison.png").write_bytes(b"an older chart")
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # importlib.util.find_spec then finds none
    assert main([str(sweep)]) == 0
    assert (sweep / "comparison.md").exists() and (sweep / "comparison.csv").exists()
    assert not (sweep / "comparison.png").exists(), "an older chart would not match the new table"
    assert "no comparison.png: the chart needs matplotlib: pip install 'ssltrain[plots]'" in capsys.readouterr().err


def test_a_real_sweep_compares_a_trained_run_with_its_random_init(tmp_path):
    done = run_cli(["-m", *smoke("trainer.epochs=0,1")], tmp_path)
    assert done.returncode == 0, done.stderr
    compared = subprocess.run([sys.executable, "-m", "ssltrain.compare", "multirun"], cwd=tmp_path, text=True,
                              capture_output=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert compared.returncode == 0, compared.stderr
    rows = read_csv(tmp_path / "multirun" / "comparison.csv")
    assert list(rows[0]) == ["run", "knn_top1", "knn_top5", "folder"], "every other number is bookkeeping"
    assert [row["run"] for row in rows] == ["simclr / small_cnn / random init / synthetic / trainer.epochs=0",
                                            "simclr / small_cnn / 1 epoch / synthetic / trainer.epochs=1"]
    assert compared.stdout.startswith("| run | knn_top1 | knn_top5 | folder |")
