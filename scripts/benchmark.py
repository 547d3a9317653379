#!/usr/bin/env python
"""Pretraining throughput of ssltrain's data backends against the peers' pipeline.

For every method x encoder x backend x compile setting: the real training step
(ssltrain.engine.TrainStep in a PretrainLoop: autocast, optimizer, schedules, method hooks) on
the same model, batch size and precision, fed by
  batched     ssltrain's batched augmentation on the device (DeviceLoader)
  streamed    ssltrain's path for files: torchvision.io decoding and the crops in DataLoader
              workers, the colour ops batched on the device (StreamedLoader)
  per_sample  ssltrain's per-sample path: torchvision.transforms.v2 in DataLoader workers
  dataloader  the peers' pipeline (solo-learn, lightly): PIL + torchvision.transforms in
              DataLoader workers (scripts/peer_baseline.py)
all in this process on this device. `--large-images DIR` measures on a folder of large
JPEGs streamed from disk (DIR/train/<class>/*.jpg; scripts/make_large_images.py writes one)
at `--image-size`; `--repeats` runs the backends' list that many times, interleaved, so a
shared machine's load weighs on each alike (each record keeps os.getloadavg()). Images/s are timed over `--steps` steps after
`--warmup` steps (which also absorb torch.compile), with the device synchronised before
each clock reading. Peak memory is torch.cuda.max_memory_allocated over the run.

    python scripts/benchmark.py --data /path/to/cifar10-jpeg            # the full matrix
    python scripts/benchmark.py --smoke --out /tmp/smoke.json          # seconds, on CPU
    python scripts/benchmark.py --large-images /tmp/large --methods simclr --encoders small_cnn \
        --compile off --device cpu --augmentation imagenet_simclr --batch-size 32 --workers 2 --repeats 2

Records are appended to --out (a JSON list); the table is printed to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import itertools
import json
import os
import platform
import re
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # ssltrain, scripts

from peer_baseline import PeerLoader  # noqa: E402

from ssltrain.runtime.checkpoint import Progress  # noqa: E402
from ssltrain.compose import compose_settings  # noqa: E402
from ssltrain.groups import group_choices  # noqa: E402
from ssltrain.data.pipeline import pretrain_loader  # noqa: E402
from ssltrain.build import build_method, build_optimizer, load_data, select_device, select_precision  # noqa: E402
from ssltrain.engine import PretrainLoop, TrainStep  # noqa: E402
from ssltrain.errors import UserError  # noqa: E402

BACKENDS = ("batched", "dataloader", "per_sample", "streamed")
DEFAULT_BACKENDS = {False: "batched,dataloader,per_sample", True: "streamed,per_sample,dataloader"}  # by --large-images
REPO = Path(__file__).resolve().parents[1]
SMOKE = ["--methods", "simclr", "--encoders", "small_cnn", "--compile", "off", "--batch-size", "16", "--images", "64",
         "--warmup", "1", "--steps", "2", "--workers", "0", "--device", "cpu"]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", default="simclr,byol,moco")
    parser.add_argument("--encoders", default="resnet18,resnet50,vit_tiny")
    parser.add_argument("--backends", default=None, help=f"of {', '.join(BACKENDS)}; default: "
                        f"{DEFAULT_BACKENDS[False]} ({DEFAULT_BACKENDS[True]} with --large-images)")
    parser.add_argument("--compile", default="off,on", choices=["off", "on", "off,on", "on,off"])
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--precision", default="auto", help="auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32 | fp16")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (they absorb compilation)")
    parser.add_argument("--steps", type=int, default=50, help="timed steps")
    parser.add_argument("--workers", type=int, default=16, help="DataLoader workers of the cpu and dataloader backends")
    parser.add_argument("--data", default="synthetic", help="synthetic, or the CIFAR-10 ImageFolder root")
    parser.add_argument("--images", type=int, default=50_000, help="synthetic images (CIFAR-10's training set size)")
    parser.add_argument("--large-images", default=None, metavar="DIR",
                        help="a folder of large images, DIR/train/<class>/*, streamed from disk (instead of --data)")
    parser.add_argument("--image-size", type=int, default=224, help="the views' side with --large-images")
    parser.add_argument("--augmentation", default=None, help="an augmentation preset for every run (e.g. imagenet_simclr)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds over the backends, interleaved")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--note", default="", help="free text stored with each record (e.g. the machine's load)")
    parser.add_argument("--out", default=None, help="JSON file to append to (default docs/benchmarks/<device>-<date>.json)")
    parser.add_argument("overrides", nargs="*", help="more ssltrain overrides for every run (e.g. optimizer=sgd)")
    parser.add_argument("--smoke", action="store_true", help="tiny CPU run (CI), other options win: " + " ".join(SMOKE))
    args = parser.parse_args(argv)
    if args.smoke:  # the smoke settings, then whatever the command line says
        args = parser.parse_args([*SMOKE, *argv])
    args.backends = args.backends or DEFAULT_BACKENDS[args.large_images is not None]
    return args


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {len(os.sched_getaffinity(0))} cores)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class TimedLoader:
    """`warmup + steps` batches of a loader (across its epochs) as one epoch; times the
    last `steps` of them, from a synchronised clock to a synchronised clock."""

    def __init__(self, inner, warmup: int, steps: int):
        self.inner, self.warmup = inner, warmup
        self.steps_per_epoch = warmup + steps
        self.device, self.skipped_images = inner.device, 0
        self.seconds = float("nan")

    def epoch(self, epoch: int, start_step: int = 0):
        batches = itertools.chain.from_iterable(self.inner.epoch(e) for e in itertools.count())
        started = time.perf_counter()
        for step in range(self.steps_per_epoch):
            if step == self.warmup:
                synchronize(self.device)
                started = time.perf_counter()
            yield next(batches)
        synchronize(self.device)  # the last step has been launched: wait for it
        self.seconds = time.perf_counter() - started


def data_overrides(args: argparse.Namespace) -> list[str]:
    augmentation = [f"augmentation={args.augmentation}"] if args.augmentation else []
    if args.large_images:
        return ["dataset=imagefolder", f"dataset.root={args.large_images}", f"dataset.image_size={args.image_size}",
                "dataset.decode_once=false", *augmentation]
    if args.data == "synthetic":
        return ["dataset=synthetic", f"dataset.num_images={args.images}", "dataset.image_size=32", *augmentation]
    return ["dataset=cifar10", f"dataset.root={args.data}", *augmentation]


def measure(args: argparse.Namespace, method_name: str, encoder: str, backend: str, compiled: bool, splits) -> dict:
    settings = compose_settings([
        f"method={method_name}", f"encoder={encoder}", *data_overrides(args), f"trainer.batch_size={args.batch_size}",
        f"trainer.precision={args.precision}", f"trainer.compile={str(compiled).lower()}", f"trainer.device={args.device}",
        f"augmentation.backend={'per_sample' if backend == 'dataloader' else backend}", "eval=none", *args.overrides])
    trainer = settings.trainer
    device = select_device(trainer.device)
    precision = select_precision(trainer.precision, device)
    torch.manual_seed(trainer.seed)
    method = build_method(settings, splits.image_size, splits.mean, splits.std, splits.num_classes, len(splits.train)).to(device)
    if trainer.channels_last:
        method.to(memory_format=torch.channels_last)
    view_args = (splits.train, settings.augmentation.views if backend == "dataloader" else settings.augmentation,
                 splits.image_size, splits.mean, splits.std, args.batch_size)
    if backend == "dataloader":
        loader = PeerLoader(*view_args, device, args.workers, trainer.channels_last)
    else:
        loader = pretrain_loader(*view_args, trainer.seed, device, args.workers, channels_last=trainer.channels_last)
    optimizer, schedule = build_optimizer(settings, method, loader.steps_per_epoch)
    timed = TimedLoader(loader, args.warmup, args.steps)
    step = TrainStep(method, torch.compile(method) if compiled else method, optimizer, schedule,
                     total_steps=loader.steps_per_epoch, device_type=device.type, precision=precision, seed=trainer.seed)
    loop = PretrainLoop(step=step, loader=timed, epochs=1, log_every=10**9)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loop.run(Progress())
    images_per_second = args.steps * args.batch_size / timed.seconds
    full_epoch = len(splits.train) // args.batch_size * args.batch_size
    return {
        "images_per_second": images_per_second,
        "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
        "epoch_seconds_projected": full_epoch / images_per_second,  # a full epoch at the steady-state rate
        "timed_seconds": timed.seconds,
        "precision": {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[precision.dtype],
        "device": device_name(device),
        "views": settings.augmentation.num_views,
        "augmentation": settings.augmentation.name,
    }


def release_memory() -> None:
    gc.collect()  # also shuts down the persistent DataLoader workers of the last loader
    torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_choices(args: argparse.Namespace) -> None:
    for name, group in (("methods", "method"), ("encoders", "encoder")):
        known = group_choices(group)
        for choice in getattr(args, name).split(","):
            if choice not in known:
                sys.exit(f"benchmark: {group} '{choice}' is not registered in this checkout; registered: {', '.join(known)}")
    for backend in args.backends.split(","):
        if backend not in BACKENDS:
            sys.exit(f"benchmark: backend '{backend}' is not one of {', '.join(BACKENDS)}")


def median_rates(records: list[dict]) -> dict[tuple, float]:
    """The median images/s over the rounds, per (method, encoder, compile, backend)."""
    rates: dict[tuple, list[float]] = {}
    for r in records:
        if r.get("images_per_second"):
            rates.setdefault((r["method"], r["encoder"], r["compile"], r["backend"]), []).append(r["images_per_second"])
    return {key: statistics.median(values) for key, values in rates.items()}


def speedups(records: list[dict]) -> dict[tuple, float]:
    """Each ssltrain backend's median images/s over the dataloader's, per (method, encoder,
    compile, backend)."""
    rate = median_rates(records)
    return {key: value / rate[(*key[:3], "dataloader")] for key, value in rate.items()
            if key[3] != "dataloader" and rate.get((*key[:3], "dataloader"))}


def table(records: list[dict]) -> str:
    """One row per setting and backend: the median over the rounds, and each round's rate."""
    ratio, rate = speedups(records), median_rates(records)
    lines = ["| method | encoder | compile | backend | images/s (median) | each round | peak GB | / dataloader |",
             "|---" * 8 + "|"]
    for key in dict.fromkeys((r["method"], r["encoder"], r["compile"], r["backend"]) for r in records):
        rounds = [r for r in records if (r["method"], r["encoder"], r["compile"], r["backend"]) == key]
        each = ", ".join(f"{r['images_per_second']:,.1f}" if r.get("images_per_second") else f"error: {r.get('error')}"
                         for r in rounds)
        memory = max((r["peak_memory_gb"] for r in rounds if r.get("peak_memory_gb") is not None), default=None)
        median = f"{rate[key]:,.1f}" if key in rate else "-"
        lines.append(f"| {key[0]} | {key[1]} | {'on' if key[2] else 'off'} | {key[3]} | {median} | {each} | "
                     f"{f'{memory:.2f}' if memory is not None else '-'} | {f'{ratio[key]:.2f}x' if key in ratio else ''} |")
    return "\n".join(lines)


def large_images_made(folder: str | None) -> dict | None:
    """What scripts/make_large_images.py recorded of the folder (made.json), if it wrote it."""
    made = Path(folder) / "made.json" if folder else None
    return json.loads(made.read_text()) if made and made.is_file() else None


def default_out(device: torch.device) -> Path:
    slug = re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-")
    return REPO / "docs" / "benchmarks" / f"{slug}-{datetime.date.today().isoformat()}.json"


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    check_choices(args)
    compiles = {"off": [False], "on": [True], "off,on": [False, True], "on,off": [True, False]}[args.compile]
    device = select_device(args.device)
    first = compose_settings([f"method={args.methods.split(',')[0]}", f"encoder={args.encoders.split(',')[0]}", *data_overrides(args),
                              f"trainer.device={args.device}",
                              *args.overrides])
    splits = load_data(first.dataset, first.trainer.seed)
    common = {"command": shlex.join([sys.executable, *sys.argv]), "torch": torch.__version__,
              "torchvision": torchvision.__version__, "python": platform.python_version(), "batch_size": args.batch_size,
              "warmup_steps": args.warmup, "timed_steps": args.steps, "workers": args.workers,
              "data": args.large_images or args.data, "large_images": large_images_made(args.large_images),
              "train_images": len(splits.train), "image_size": splits.image_size, "overrides": args.overrides, "note": args.note,
              "date": datetime.datetime.now().isoformat(timespec="seconds")}
    records = []
    for round_, method_name, encoder, compiled, backend in itertools.product(
            range(args.repeats), args.methods.split(","), args.encoders.split(","), compiles, args.backends.split(",")):
        record = {**common, "method": method_name, "encoder": encoder, "compile": compiled, "backend": backend,
                  "device": device_name(device), "precision": args.precision, "round": round_,
                  "load_average_before": os.getloadavg()}
        try:
            record.update(measure(args, method_name, encoder, backend, compiled, splits))
        except (RuntimeError, ValueError, UserError) as error:  # e.g. out of memory: recorded; the exit status says so
            record.update(images_per_second=None, peak_memory_gb=None, error=f"{type(error).__name__}: {str(error).splitlines()[0]}")
        finally:
            release_memory()
        record["load_average_after"] = os.getloadavg()
        records.append(record)
        print(json.dumps({k: record.get(k) for k in ("round", "method", "encoder", "compile", "backend", "images_per_second",
                                                      "peak_memory_gb", "load_average_after", "error")}), flush=True)
    out = Path(args.out) if args.out else default_out(device)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(out.read_text()) if out.exists() else []
    out.write_text(json.dumps(previous + records, indent=2) + "\n")
    print(table(records))
    print(f"records appended to {out}")
    return 1 if any(r.get("error") for r in records) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
