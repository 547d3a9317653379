#!/usr/bin/env python
"""A folder of large JPEGs for the large-image benchmark (scripts/benchmark.py --large-images):
CIFAR-10 images of a local ImageFolder copy upscaled (bicubic) to random sides of 256-500 px,
with seeded Gaussian noise (so the files carry about the detail of photographs, which
upscaling alone smooths away), saved at JPEG quality 90 under OUT/train/<class>/.

    python scripts/make_large_images.py ~/.cache/ssltrain-tests/cifar10-jpeg /tmp/large --count 512
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ssltrain.data.decode import class_folders

SIDES = (256, 500)
QUALITY = 90
NOISE_STD = 8.0  # in uint8 levels


def make_large_images(source: Path, out: Path, count: int, seed: int = 0) -> dict:
    """`count` JPEGs from source/train/<class>/*.jpg, the classes taken in turn; returns what
    was made (for the benchmark's record)."""
    classes = [source / "train" / name for name in class_folders(source / "train")]
    files = [sorted(folder.glob("*.jpg")) for folder in classes]
    rng = np.random.default_rng(seed)
    sizes = []
    for i in range(count):
        folder, names = classes[i % len(classes)], files[i % len(classes)]
        width, height = (int(side) for side in rng.integers(SIDES[0], SIDES[1] + 1, size=2))
        with Image.open(names[i // len(classes) % len(names)]) as small:
            image = np.asarray(small.convert("RGB").resize((width, height), Image.BICUBIC), dtype=np.float32)
        noisy = np.clip(image + rng.normal(0.0, NOISE_STD, image.shape), 0, 255).astype(np.uint8)
        target = out / "train" / folder.name / f"{i:05d}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(noisy).save(target, quality=QUALITY)
        sizes.append(target.stat().st_size)
    return {"source": str(source), "count": count, "seed": seed, "sides": list(SIDES), "jpeg_quality": QUALITY,
            "noise_std": NOISE_STD, "mean_file_kb": round(sum(sizes) / len(sizes) / 1024, 1),
            "how": "CIFAR-10 JPEGs upscaled (bicubic) to random width and height in the sides' range, plus noise"}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="an ImageFolder copy of CIFAR-10: SOURCE/train/<class>/*.jpg")
    parser.add_argument("out", type=Path)
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    made = make_large_images(args.source.expanduser(), args.out, args.count, args.seed)
    (args.out / "made.json").write_text(json.dumps(made, indent=2) + "\n")
    print(json.dumps(made))


if __name__ == "__main__":
    main(sys.argv[1:])
