"""Does domain-adversarial training adapt? A real domain shift made from the CIFAR-10
training copy, and DANN against the source-only baseline trained the same way.

Source: the clean training images (`dataset`, 3,000 of them). Target: the source's
5,000-image holdout (never pretrained on as source) with its colour channels permuted
(SHIFTS), written as an ImageFolder tree by `build_shifted_copy`; its labels serve evaluation only.
The target splits, seeded as every dataset is, into TARGET_HOLDOUT for scoring and the rest,
which DANN sees unlabelled. Two runs, the same but for method.domain_weight (0: the
source-only baseline: same batches, both domains through the encoder, no domain loss):
- target_accuracy: DANN's own label classifier on the held-out target images, the number
  the DANN paper reports; source_accuracy: the same classifier on the source's own holdout
  (the target's images unshifted), the accuracy adaptation could at best recover (both
  from the run's results.json);
- linear_top1 / knn_top1: probes on the frozen encoder's target features (eval_dataset = the
  labelled target copy: fitted on the target's training part, scored on its holdout).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from PIL import Image

from ssltrain.build import load_data
from ssltrain.compose import compose_settings
from ssltrain.run import run

TARGET_HOLDOUT = 0.4  # of the 5,000 target images: 2,000 scored, 3,000 seen unlabelled in training
DEFAULTS = ("encoder=small_cnn", "dataset=imagefolder", "dataset.image_size=32", "dataset.limit=3000",
            "eval=linear", "trainer.resume=never", "trainer.log_every=10", "trainer.image_every=0")


# Domain shifts applied to uint8 pixels [H, W, 3].
# channels_permuted (DANN's check): the target's R, G, B hold the source's B, R, G. Every
# pixel value is kept, so a representation that classifies both domains exists (one blind
# to the channels' order), and the channels of natural images are correlated, so a
# source-only network still sees shapes; what it learned of colour points it the wrong way.
# (Inverting the colours, tried first, left the source-only classifier at chance, 10.3%:
# no shared structure for the alignment to start from; on grayscale the source-only
# classifier kept 32.9%, and DANN did not improve on it: docs/results/learning-domains-cpu.json.)
SHIFTS = {
    "channels_permuted": lambda pixels: pixels[..., [2, 0, 1]],
    "grayscale": lambda pixels: (pixels.float() @ torch.tensor([0.299, 0.587, 0.114])).round().to(torch.uint8)
    .unsqueeze(-1).expand(-1, -1, 3),  # ITU-R 601 luma in all three channels
}


def build_shifted_copy(cifar_root: Path, out_dir: Path, shift: str, split: str = "val", seed: int = 0) -> Path:
    """Write a split of `dataset=imagefolder dataset.root=cifar_root` as DEFAULTS and `seed` make
    it ("val": the 5,000-image holdout; "train": the 3,000 pretraining images), shifted by
    SHIFTS[shift], to out_dir/train/<label>/<n>.png; returns out_dir."""
    settings = compose_settings([f"dataset.root={cifar_root}", *DEFAULTS, f"trainer.seed={seed}"])
    images = getattr(load_data(settings.dataset, seed), split)
    for index, (pixels, label) in enumerate(zip(images.pixels, images.labels.tolist())):
        folder = out_dir / "train" / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(SHIFTS[shift](pixels).numpy()).save(folder / f"{index}.png")
    return out_dir


def target_overrides(target_root: Path) -> list[str]:
    """The shifted copy as DANN's target and as the evaluation dataset (the same seeded holdout)."""
    return [f"{key}={value}" for name in ("target_dataset", "eval_dataset")
            for key, value in ((name, "imagefolder"), (f"{name}.root", target_root), (f"{name}.image_size", 32),
                               (f"{name}.holdout_fraction", TARGET_HOLDOUT))]


def run_in_folder(overrides: list[str], measure=lambda run_dir: {}) -> dict:
    """results.json's content for one run, plus what `measure` reads from its folder."""
    settings = compose_settings([*DEFAULTS, *overrides])
    with tempfile.TemporaryDirectory(prefix="ssltrain-domains-") as run_dir:
        results = run(settings, Path(run_dir), search_roots=[])
        return {**results, **measure(Path(run_dir))}


METRICS = ("target_accuracy", "source_accuracy", "linear_top1", "knn_top1")


def domain_check(cifar_root: Path, target_root: Path, epochs: int, extra: list[str], seed: int = 0) -> dict:
    """DANN and its source-only baseline (domain_weight=0) on the same settings; 'gain' is
    target_accuracy's difference."""
    common = [f"dataset.root={cifar_root}", "method=dann", *target_overrides(target_root), *extra,
              f"trainer.epochs={epochs}", f"trainer.seed={seed}"]
    baseline, trained = run_in_folder([*common, "method.domain_weight=0"]), run_in_folder(common)
    scores = {f"{state}_{name}": source[name] for name in METRICS
              for state, source in (("source_only", baseline), ("trained", trained))}
    return {"method": "dann", "encoder": trained["encoder"], "baseline": "source_only",
            "baseline_overrides": ["method.domain_weight=0"], "overrides": [*DEFAULTS, *common], "epochs": epochs,
            "seed": seed, "metric": "target_accuracy", **scores,
            "gain": trained["target_accuracy"] - baseline["target_accuracy"],
            "val_split": trained["val_split"], "train_images": trained["train_images"],
            "pretrain_seconds": trained["pretrain_seconds"]}


def cyclegan_check(cifar_root: Path, grayscale_root: Path, epochs: int, extra: list[str], seed: int = 0) -> dict:
    """CycleGAN between the 3,000 colour images (A) and their grayscale copies (B, unpaired:
    each domain's loader draws its own order); the probed encoder half on A's holdout against
    the random-init encoder (trainer.epochs=0), plus the translated pictures it saved."""
    common = [f"dataset.root={cifar_root}", "method=cyclegan", "target_dataset=imagefolder",
              f"target_dataset.root={grayscale_root}", "target_dataset.image_size=32", *extra, f"trainer.seed={seed}"]
    pictures = lambda run_dir: {"pictures": sorted(path.name for path in (run_dir / "pictures").glob("*.png"))}
    baseline = run_in_folder([*common, "trainer.epochs=0"])
    trained = run_in_folder([*common, f"trainer.epochs={epochs}", "trainer.image_every=1"], pictures)
    scores = {f"{state}_{name}": source[name] for name in ("linear_top1", "knn_top1")
              for state, source in (("random", baseline), ("trained", trained))}
    return {"method": "cyclegan", "encoder": trained["encoder"], "overrides": [*DEFAULTS, *common], "epochs": epochs,
            "seed": seed, "metric": "linear_top1", **scores, "gain": trained["linear_top1"] - baseline["linear_top1"],
            "pictures": trained["pictures"], "domains": "A = 3,000 CIFAR-10 training images, B = their grayscale copies",
            "val_split": trained["val_split"], "train_images": trained["train_images"],
            "pretrain_seconds": trained["pretrain_seconds"]}
