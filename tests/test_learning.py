"""Every method learns on real images: a short pretraining beats the same encoder at random
initialisation on held-out images, by the margin in learning_checks.yaml (the table holds
each check's settings). SimCLR's runs in the default suite; the others with `-m slow`."""

import json
import os

import pytest

from learning_check import PROTOCOL_METRICS, load_table, protocol_check

MARGIN, CHECKS = load_table()


def _marks(name: str) -> list:
    return [pytest.mark.learning] + ([] if CHECKS[name].default_suite else [pytest.mark.slow])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in CHECKS])
def test_pretraining_beats_the_random_encoder_on_held_out_images(name, learn):
    result = learn(CHECKS[name])
    assert result["gain"] >= MARGIN, result


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_beats_the_random_encoder_on_clustering_and_retrieval_too(cifar10_root):
    """SimCLR's check (same settings) scored by k-means (NMI, ARI, accuracy) and retrieval (R@1, MAP@R)."""
    result = protocol_check(CHECKS["simclr"], str(cifar10_root), int(os.environ.get("SSLTRAIN_LEARNING_SEED", "0")))
    print(f"\nprotocols after {result['epochs']} epochs of simclr: " + ", ".join(
        f"{name} {result['random_' + name]:.4f} -> {result['trained_' + name]:.4f}" for name in PROTOCOL_METRICS))
    _record(result)
    for name in PROTOCOL_METRICS:
        assert result[f"trained_{name}"] > result[f"random_{name}"], (name, result)


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("name", ["siamese", "triplet", "arcface"])
def test_metric_learning_beats_the_random_encoder_on_retrieval_too(name, cifar10_root):
    """The metric-learning methods' checks (same settings) scored by retrieval (R@1, MAP@R),
    the protocol they are made for; clustering is recorded beside it."""
    result = protocol_check(CHECKS[name], str(cifar10_root), int(os.environ.get("SSLTRAIN_LEARNING_SEED", "0")))
    _record(result)
    for metric in ("recall_at_1", "map_at_r"):
        assert result[f"trained_{metric}"] > result[f"random_{metric}"], (metric, result)


def _record(result: dict) -> None:
    """Append to scripts/learning_report.py's records, when it runs the test."""
    report = os.environ.get("SSLTRAIN_LEARNING_REPORT")
    if report:
        with open(report, "a") as file:
            file.write(json.dumps(result) + "\n")
