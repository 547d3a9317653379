"""Run every learning test (a short pretraining on the real CIFAR-10 copy against the same
encoder at random initialisation) and write the numbers they measured, with the machine,
versions and command, to docs/results/learning-<machine>.json.

    python scripts/learning_report.py [-k EXPR] [--output PATH]
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
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / f"learning-{device}.json")
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as records:
        command = [sys.executable, "-m", "pytest", "-m", "learning", "-p", "no:cacheprovider", "-q", "-s"]
        if args.k:
            command += ["-k", args.k]
        env = {**os.environ, "SSLTRAIN_LEARNING_REPORT": records.name}
        status = subprocess.run(command, cwd=REPO, env=env).returncode
        results = [json.loads(line) for line in records.read().splitlines()]
    report = {
        "what": "kNN (k=200) and linear-probe top-1 on a seeded 5,000-image class-balanced holdout of the "
                "CIFAR-10 JPEG training copy (never pretrained on), after a short pretraining vs. the same encoder "
                "at random initialisation; 'metric' is the one each check asserts a gain of at least 0.03 on",
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
    for result in results:
        metric = result["metric"]
        print(f"{result['method']:24s} {metric:12s} {result['random_' + metric]:.4f} -> "
              f"{result['trained_' + metric]:.4f} ({result['gain']:+.4f})")
    print(f"wrote {args.output}")
    return status


if __name__ == "__main__":
    sys.exit(main())
