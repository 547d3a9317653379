"""The two-dataset methods on domain pairs made from the CIFAR-10 copy (tests/domain_check.py
says how; `pytest -m slow`; python scripts/learning_report.py -k "dann or cyclegan" --output
docs/results/learning-domains-cpu.json records the numbers):
- DANN adapts: its label classifier beats the source-only baseline (the same run with
  method.domain_weight=0) on held-out target images (colour channels permuted) by the
  learning checks' margin;
- CycleGAN (colour <-> grayscale) learns: the probed encoder (the grayscale -> colour
  generator's) beats the random-init encoder by that margin, and the run leaves its translated pictures."""

from __future__ import annotations

import pytest

from domain_check import build_shifted_copy, cyclegan_check, domain_check
from learning_check import learning_seed, load_table, record

MARGIN, _ = load_table()
# DANN's check: its recipe (batch 64 per domain, SGD lr 0.01) for 8 epochs of the 3,000
# source images (368 steps). The small CNN at a quarter of its default width: on 2 shared
# CPU cores the full width took ~4.6 s a step, the runs (DANN and its baseline) over an hour.
DANN_EPOCHS, DANN_OVERRIDES = 8, ["encoder.channels=[16,32,64,128]"]


SEED = learning_seed()


@pytest.mark.slow
@pytest.mark.learning
def test_dann_beats_source_only_on_held_out_target_images(cifar10_root, tmp_path_factory):
    shift = "channels_permuted"
    # the source's holdout for SEED, shifted: no target image is a source training image
    target = build_shifted_copy(cifar10_root, tmp_path_factory.mktemp(f"cifar10-{shift}"), shift, "val", SEED)
    result = {**domain_check(cifar10_root, target, DANN_EPOCHS, DANN_OVERRIDES, SEED),
              "shift": f"target = the source's 5,000-image holdout, {shift} (domain_check.SHIFTS)"}
    print(f"\ndann, target {shift}: " + ", ".join(
        f"{name} {result['source_only_' + name]:.4f} -> {result['trained_' + name]:.4f}"
        for name in ("target_accuracy", "source_accuracy", "linear_top1", "knn_top1")) + " (source-only -> DANN)")
    record(result)
    assert result["gain"] >= MARGIN, result


# CycleGAN's check: its recipe (the lr constant for 4 epochs, then decaying for 4) for 8
# epochs of the 3,000 images (368 steps at batch 64), the length of DANN's check and of the
# other image-making methods' (autoencoder, colorization, inpainting: learning_checks.yaml);
# the small CNN at a quarter width and 32-64-128 discriminators, for CPU time as DANN's.
# Probed: F's encoder (method.representation=b_to_a), the generator that colours grayscale
# images, the direction that needs the image's content; G (colour -> grayscale) only weighs
# the channels. It sees colour images (the probe's) through the identity loss.
# G's encoder: 2 epochs gained +2.4 (no pool, constant lr) and +2.0 points; 8 epochs +3.7
# with seed 0 but +2.5 with seed 1. F's, 8 epochs: +3.7 (seed 0), +3.3 (seed 1), +4.7 (seed 2):
# it passes all three, seeds 0 and 1 close to the margin (docs/results/learning-domains-cpu.json).
CYCLEGAN_EPOCHS = 8
CYCLEGAN_OVERRIDES = ["encoder.channels=[16,32,64,128]", "method.discriminator_widths=[32,64,128]",
                      "method.representation=b_to_a"]


@pytest.mark.slow
@pytest.mark.learning
def test_cyclegan_encoder_beats_the_random_encoder_and_saves_its_translations(cifar10_root, tmp_path_factory):
    grayscale = build_shifted_copy(cifar10_root, tmp_path_factory.mktemp("cifar10-gray"), "grayscale", "train", SEED)
    result = cyclegan_check(cifar10_root, grayscale, CYCLEGAN_EPOCHS, CYCLEGAN_OVERRIDES, SEED)
    print(f"\ncyclegan colour <-> grayscale: linear {result['random_linear_top1']:.4f} -> "
          f"{result['trained_linear_top1']:.4f}, kNN {result['random_knn_top1']:.4f} -> {result['trained_knn_top1']:.4f}")
    record(result)
    assert {"a_to_b_to_a.png", "b_to_a_to_b.png"} <= set(result["pictures"])  # beside the probe's pictures
    assert result["gain"] >= MARGIN, result
