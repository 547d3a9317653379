"""Every method learns on real images: a short pretraining beats the same encoder at random
initialisation on held-out images, by the margin in learning_checks.yaml (the table holds
each check's settings). SimCLR's runs in the default suite; the others with `-m slow`."""

import json
import os

import pytest

from learning_check import PROTOCOL_METRICS, TRANSFER_METRICS, load_table, protocol_check, transfer_check

MARGIN, CHECKS = load_table()


def _marks(name: str) -> list:
    return [pytest.mark.learning] + ([] if CHECKS[name].default_suite else [pytest.mark.slow])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in CHECKS])
def test_pretraining_beats_the_random_encoder_on_held_out_images(name, learn):
    result = learn(CHECKS[name])
    assert result["gain"] >= MARGIN, result


def _record(result: dict) -> None:
    """Append to scripts/learning_report.py's records, when it runs the test."""
    report = os.environ.get("SSLTRAIN_LEARNING_REPORT")
    if report:
        with open(report, "a") as file:
            file.write(json.dumps(result) + "\n")


def _seed() -> int:
    return int(os.environ.get("SSLTRAIN_LEARNING_SEED", "0"))


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_beats_the_random_encoder_on_every_evaluation_protocol(cifar10_root):
    """SimCLR's check (same settings) scored by few labels (10%), k-means, retrieval, the
    layer-wise probe and fine-tuning."""
    result = protocol_check(CHECKS["simclr"], str(cifar10_root), _seed())
    print(f"\nprotocols after {result['epochs']} epochs of simclr: " + ", ".join(
        f"{name} {result['random_' + name]:.4f} -> {result['trained_' + name]:.4f}" for name in PROTOCOL_METRICS))
    _record(result)
    for name in PROTOCOL_METRICS:
        assert result[f"trained_{name}"] > result[f"random_{name}"], (name, result)


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_transfers_to_classes_it_never_saw(cifar10_root):
    """Pretrained on five CIFAR-10 classes, probed on the other five."""
    result = transfer_check(CHECKS["simclr"], str(cifar10_root), cifar10_root.parent / "class-split", _seed())
    print(f"\ntransfer after {result['epochs']} epochs of simclr: " + ", ".join(
        f"{name} {result['random_' + name]:.4f} -> {result['trained_' + name]:.4f}" for name in TRANSFER_METRICS))
    _record(result)
    for name in TRANSFER_METRICS:
        assert result[f"trained_{name}"] > result[f"random_{name}"], (name, result)


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("name", ["siamese", "triplet", "arcface"])
def test_metric_learning_beats_the_random_encoder_on_retrieval_too(name, cifar10_root):
    """The metric-learning methods' checks (same settings) scored by retrieval (R@1, MAP@R),
    the protocol they are made for; clustering is recorded beside it."""
    result = protocol_check(CHECKS[name], str(cifar10_root), _seed())
    _record(result)
    for metric in ("recall_at_1", "map_at_r"):
        assert result[f"trained_{metric}"] > result[f"random_{metric}"], (metric, result)
