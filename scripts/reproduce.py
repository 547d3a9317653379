#!/usr/bin/env python
"""The CIFAR-10 recipes, reproduced: one `ssltrain` run per method (ResNet-18 by default,
each method's own recipe from configs/method/), then kNN accuracy on the seeded holdout
of the CIFAR-10 training copy (never pretrained on) and the wall time of each run.

    python scripts/reproduce.py --data /path/to/cifar10-jpeg --epochs 100
    python scripts/reproduce.py --data DIR --epochs 1 --methods simclr trainer.batch_size=64  # overrides last

Writes <out>.json (one record per method: accuracy, times, machine, versions, the exact
command) and <out>.md (the Markdown table, also printed). Run directories go under
<out>-runs/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ssltrain.groups import group_choices  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the CIFAR-10 ImageFolder copy (DIR/train/<class>/*.jpg)")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--methods", default="simclr,byol,moco")
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--eval", default="knn", help="the evaluation after pretraining: knn | linear | finetune")
    parser.add_argument("--out", default=None, help="output path without extension "
                                                    "(default docs/benchmarks/reproduce-<epochs>ep-<date>)")
    parser.add_argument("overrides", nargs="*", help="more ssltrain overrides, applied last (key=value)")
    return parser.parse_args(argv)


def check_methods(methods: list[str]) -> None:
    registered = group_choices("method")
    missing = [method for method in methods if method not in registered]
    if missing:
        sys.exit(f"reproduce: method '{missing[0]}' is not registered in this checkout; registered: "
                 f"{', '.join(registered)} (choose with --methods)")


def run_one(method: str, args: argparse.Namespace, run_dir: Path) -> dict:
    overrides = [f"method={method}", f"encoder={args.encoder}", "dataset=cifar10", f"dataset.root={args.data}",
                 f"trainer.epochs={args.epochs}", f"eval={args.eval}", "trainer.resume=never", *args.overrides,
                 f"hydra.run.dir={run_dir}"]
    command = [sys.executable, "-m", "ssltrain", *overrides]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        sys.exit(f"reproduce: the {method} run failed (exit status {done.returncode}); its log is in {run_dir}")
    results = json.loads((run_dir / "results.json").read_text())
    accuracy = {key: value for key, value in results.items() if key.endswith(("_top1", "_top5"))}
    return {"method": method, "encoder": args.encoder, "epochs": args.epochs, **accuracy,
            "pretrain_seconds": results["pretrain_seconds"], "wall_seconds": wall,
            "images_per_second": results["images_per_second"], "val_split": results["val_split"],
            "train_images": results["train_images"], "device": results["device"], "torch": results["torch"],
            "machine": f"{platform.node()} ({platform.machine()}, {len(os.sched_getaffinity(0))} cores)",
            "python": platform.python_version(), "command": shlex.join(["ssltrain", *overrides[:-1]]),
            "run_dir": str(run_dir), "date": datetime.datetime.now().isoformat(timespec="seconds")}


def table(records: list[dict]) -> str:
    metrics = sorted({key for record in records for key in record if key.endswith("_top1")})
    lines = [f"| method | encoder | epochs | {' | '.join(metrics)} | pretrain time | wall time | images/s | device |",
             "|---" * (7 + len(metrics)) + "|"]
    for r in records:
        scores = " | ".join(f"{100 * r[m]:.2f}" for m in metrics)
        lines.append(f"| {r['method']} | {r['encoder']} | {r['epochs']} | {scores} | {r['pretrain_seconds'] / 60:.1f} min | "
                     f"{r['wall_seconds'] / 60:.1f} min | {r['images_per_second']:,.0f} | {r['device']} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    methods = args.methods.split(",")
    check_methods(methods)
    out = Path(args.out) if args.out else (
        REPO / "docs" / "benchmarks" / f"reproduce-{args.epochs}ep-{datetime.date.today().isoformat()}")
    out = out.resolve()
    records = []
    for method in methods:
        run_dir = Path(f"{out}-runs") / method
        records.append(run_one(method, args, run_dir))
        print(json.dumps({k: v for k, v in records[-1].items() if k.endswith("_top1") or k in ("method", "wall_seconds")}),
              flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps(records, indent=2) + "\n")
    markdown = table(records)
    Path(f"{out}.md").write_text(
        f"Accuracy on {records[0]['val_split']}; command: `{shlex.join(['python', 'scripts/reproduce.py', *argv])}`\n\n"
        f"{markdown}\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
