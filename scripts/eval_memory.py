"""Measure the peak memory and time of the evaluation protocols that work on feature tensors
(kNN, retrieval, k-means) on random features, and write them with the machine, versions and
command to docs/results/eval-memory-cpu.json.

    python scripts/eval_memory.py [--train 50000] [--val 10000] [--dim 512] [--classes 10]
                                  [--protocols knn,retrieval,kmeans] [--output PATH]

Each protocol runs in its own fresh process, so one's peak cannot hide another's. Its peak
is the process's peak resident set during the call (VmHWM, reset just before it through
/proc/self/clear_refs, so Linux only) minus its resident set just before: what the call
adds above the features, the labels and the imported libraries. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import inspect
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MB = 1e6
# What each protocol is given: the training features as the gallery or the voters, the
# evaluation features as queries; k-means clusters the training features, an upper bound.
PROTOCOLS = {"knn": "knn_metrics: a k-NN vote of the training features for each evaluation feature",
             "retrieval": "retrieval_metrics: each evaluation feature queries the training features",
             "kmeans": "kmeans_clusters + clustering_metrics on the training features (the protocol clusters the "
                       "smaller evaluation split); random features have no clusters, so k-means runs longer on "
                       "them than on learned ones"}


def _status_mb(field: str) -> float:
    """A memory line of /proc/self/status (in kB there), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no {field} in /proc/self/status")


def _defaults(function, *names: str) -> dict:
    return {name: inspect.signature(function).parameters[name].default for name in names}


def _call(protocol: str, train, train_labels, val, val_labels, classes: int) -> tuple[dict[str, float], dict]:
    """(the protocol's metrics, the default settings it ran with, its chunk sizes among them)."""
    if protocol == "knn":
        from ssltrain.eval.knn import knn_metrics, knn_scores

        settings = {**_defaults(knn_metrics, "k"), **_defaults(knn_scores, "chunk")}
        return knn_metrics((train, train_labels), (val, val_labels), classes), settings
    if protocol == "retrieval":
        from ssltrain.eval.retrieval import retrieval_metrics

        return retrieval_metrics(train, train_labels, val, val_labels), _defaults(retrieval_metrics, "chunk")
    from ssltrain.eval.clustering import clustering_metrics, kmeans, kmeans_clusters

    settings = _defaults(kmeans, "restarts")
    return clustering_metrics(train_labels, kmeans_clusters(train, classes, settings["restarts"], seed=0)), settings


def measure(protocol: str, args: argparse.Namespace) -> dict:
    """One protocol in this process (a fresh one): its extra peak memory and seconds."""
    import torch

    generator = torch.Generator().manual_seed(0)
    tiny = torch.randn(4 * args.classes, args.dim, generator=generator)
    _call(protocol, tiny, torch.arange(len(tiny)) % args.classes, tiny[:2], torch.arange(2), args.classes)  # imports
    gc.collect()
    before_features = _status_mb("VmRSS")
    train = torch.randn(args.train, args.dim, generator=generator)  # [N, D]
    val = torch.randn(args.val, args.dim, generator=generator)  # [Q, D]
    train_labels = torch.randint(args.classes, (args.train,), generator=generator)
    val_labels = torch.randint(args.classes, (args.val,), generator=generator)
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    start = time.perf_counter()
    metrics, settings = _call(protocol, train, train_labels, val, val_labels, args.classes)
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return {"protocol": protocol, "does": PROTOCOLS[protocol], "settings": settings, "seconds": round(seconds, 2),
            "peak_above_features_mb": round(peak - before, 1), "rss_before_call_mb": round(before, 1),
            "peak_rss_mb": round(peak, 1), "features_rss_mb": round(before - before_features, 1),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "metrics": metrics}


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=50_000, help="training features (the gallery)")
    parser.add_argument("--val", type=int, default=10_000, help="evaluation features (the queries)")
    parser.add_argument("--dim", type=int, default=512, help="feature dimension")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--protocols", default=",".join(PROTOCOLS), help="comma-separated, from: %(default)s")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "results" / "eval-memory-cpu.json")
    parser.add_argument("--protocol", choices=PROTOCOLS, help=argparse.SUPPRESS)  # the child's one measurement
    args = parser.parse_args(argv)
    unknown = set(args.protocols.split(",")) - set(PROTOCOLS)
    if unknown:
        parser.error(f"--protocols: {', '.join(sorted(unknown))} unknown; choose from {', '.join(PROTOCOLS)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.protocol:
        print(json.dumps(measure(args.protocol, args)))
        return 0
    load = os.getloadavg()[0]  # seconds depend on what else runs; memory does not
    sizes = ["--train", str(args.train), "--val", str(args.val), "--dim", str(args.dim), "--classes", str(args.classes)]
    records = []
    for protocol in args.protocols.split(","):
        done = subprocess.run([sys.executable, __file__, *sizes, "--protocol", protocol], capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        if done.returncode:
            sys.stderr.write(done.stderr)
            return done.returncode
        records.append(json.loads(done.stdout.splitlines()[-1]))
        print(f"{protocol:10s} {records[-1]['peak_above_features_mb']:8.1f} MB above the features, "
              f"{records[-1]['seconds']:.1f} s")
    float32 = 4
    report = {
        "what": "peak resident memory each evaluation protocol adds above its input features (VmHWM during the "
                "call minus VmRSS before it, each protocol in a fresh process), and its seconds, on random "
                "float32 features; MB = 10^6 bytes",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{cpu_model()} ({len(os.sched_getaffinity(0))} cores, {platform.machine()})",
        "load_average_at_start": load,
        "torch": records[0]["torch"],
        "python": platform.python_version(),
        "command": shlex.join(["python", "scripts/eval_memory.py", *argv]),
        "train_features": [args.train, args.dim], "val_features": [args.val, args.dim], "classes": args.classes,
        "train_features_mb": args.train * args.dim * float32 / MB,
        "val_features_mb": args.val * args.dim * float32 / MB,
        "train_by_train_float32_mb": args.train ** 2 * float32 / MB,  # what an unchunked N x N would need
        "val_by_train_float32_mb": args.val * args.train * float32 / MB,  # and an unchunked query x gallery
        "protocols": [{key: value for key, value in record.items() if key != "torch"} for record in records],
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
