#!/usr/bin/env python
"""Augmentation alone, per image: the CPU backend's per-sample torchvision.transforms.v2
pipeline, the peers' PIL + torchvision.transforms pipeline, and the batched backend on a
whole batch (on --device), for one augmentation config (all its views).

    python scripts/augment_speed.py --augmentation simclr --batch-size 512 --threads 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]  # ssltrain, scripts

from peer_baseline import peer_transform  # noqa: E402

from ssltrain.compose import compose_settings  # noqa: E402
from ssltrain.augment.batched import BatchAugment  # noqa: E402
from ssltrain.augment.per_sample import MultiViewTransform  # noqa: E402


def seconds_per_image(work, images: int, repeats: int, synchronize=lambda: None) -> float:
    """The best of `repeats` timings of `work` (which handles `images` images), per image."""
    work()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        synchronize()
        started = time.perf_counter()
        work()
        synchronize()
        best = min(best, time.perf_counter() - started)
    return best / images


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--augmentation", default="simclr")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--per-sample-images", type=int, default=128, help="images timed on the per-sample pipelines")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a DataLoader worker uses 1)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    views = compose_settings([f"augmentation={args.augmentation}"]).augmentation.views
    stats = ((0.5,) * 3, (0.25,) * 3)
    size = args.image_size
    pixels = torch.randint(0, 256, (args.batch_size, size, size, 3), generator=torch.Generator().manual_seed(0),
                           dtype=torch.uint8)
    sample = pixels[: args.per_sample_images]

    v2_views = MultiViewTransform(views, size, *stats)
    peer_views = [peer_transform(view, size, *stats) for view in views for _ in range(view.count)]
    per_sample = {
        "per_sample backend: torchvision.transforms.v2 per sample": lambda: [v2_views(image.permute(2, 0, 1)) for image in sample],
        "peers: PIL + torchvision.transforms per sample": lambda: [
            [pipeline(image) for pipeline in peer_views] for image in map(Image.fromarray, sample.numpy())],
    }
    device = torch.device(args.device)
    on_device, generator = pixels.to(device), torch.Generator(device=device).manual_seed(0)
    batched = BatchAugment(views, size, *stats)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)

    print(f"augmentation={args.augmentation}, {sum(v.count for v in views)} views of {size} px, "
          f"{args.threads} torch thread(s)")
    results = {name: seconds_per_image(work, len(sample), args.repeats) for name, work in per_sample.items()}
    results[f"batched backend: batch {args.batch_size} on {device}"] = seconds_per_image(
        lambda: batched(on_device, generator), args.batch_size, args.repeats, sync)
    fastest_per_sample = min(value for name, value in results.items() if "per sample" in name)
    for name, value in results.items():
        print(f"{name:60s} {value * 1e3:8.3f} ms/image {1 / value:10,.0f} images/s "
              f"({fastest_per_sample / value:.1f}x the faster per-sample pipeline)")


if __name__ == "__main__":
    main(sys.argv[1:])
