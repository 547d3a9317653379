"""Run every learning check (tests/learning_checks.yaml: a short pretraining on the real
CIFAR-10 copy against the same encoder at random initialisation) and write the numbers
they measured, with the machine, versions and command, to docs/results/learning-<machine>.json.

    python scripts/learning_report.py [-k EXPR] [--seeds 0,1,2] [--output PATH]

--seeds repeats the checks once per trainer.seed (the seed also draws the holdout), which
measures the spread a check's margin must clear.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="pytest -k expression to run a subset")
    device = torch.cuda.get_device_name().replace(" ", "-") if torch.cuda.is_available() else "cpu"
    parser.add_argument("--seeds", default="0", help="comma-separated trainer.seed values, one pass each")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / f"learning-{device}.json")
    args = parser.parse_args()
    statuses = []
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as records:
        command = [sys.executable, "-m", "pytest", "tests/test_learning.py", "tests/test_backend_learning.py",
                   "tests/test_domain_learning.py", "-m", "learning", "-p", "no:cacheprovider", "-q", "-s"]
        if args.k:
            command += ["-k", args.k]
        for seed in args.seeds.split(","):
            env = {**os.environ, "SSLTRAIN_LEARNING_REPORT": records.name, "SSLTRAIN_LEARNING_SEED": seed}
            statuses.append(subprocess.run(command, cwd=REPO, env=env).returncode)
        results = [json.loads(line) for line in records.read().splitlines()]
    status = max(statuses)
    report = {
        "what": "kNN (k=200) and linear-probe top-1 on a seeded 5,000-image class-balanced holdout of the "
                "CIFAR-10 JPEG training copy (never pretrained on), after a short pretraining vs. the same encoder "
                "at random initialisation with its BatchNorm statistics estimated on the training images; "
                "'metric' is the one each check asserts its margin on (tests/learning_checks.yaml)",
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()})",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "pytest_exit_status": status,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for result in results:  # a check names the metric it asserts on; a protocol check asserts on all it has
        metrics = [result["metric"]] if "metric" in result else [k[len("trained_"):] for k in result if k.startswith("trained_")]
        for metric in metrics:
            # the baseline is the random encoder unless the record names another (dann: source_only)
            random, trained = result[result.get("baseline", "random") + "_" + metric], result["trained_" + metric]
            print(f"{result['method']:24s} seed {result['seed']} {metric:16s} {random:.4f} -> {trained:.4f} "
                  f"({trained - random:+.4f})")
    print(f"wrote {args.output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
