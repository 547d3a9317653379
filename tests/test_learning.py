"""Every method learns on real images: a short pretraining beats the same encoder at random
initialisation on held-out images, by the margin in learning_checks.yaml (the table holds
each check's settings). SimCLR's runs in the default suite; the others with `-m slow`."""

import pytest

from learning_check import (PROTOCOL_METRICS, TRANSFER_METRICS, learning_seed, load_table, protocol_check, record,
                            transfer_check)

MARGIN, CHECKS = load_table()


def _marks(name: str) -> list:
    return [pytest.mark.learning] + ([] if CHECKS[name].default_suite else [pytest.mark.slow])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in CHECKS])
def test_pretraining_beats_the_random_encoder_on_held_out_images(name, learn):
    result = learn(CHECKS[name])
    assert result["gain"] >= MARGIN, result


def _beats_random_on(metrics: tuple[str, ...], result: dict, what: str) -> None:
    """Print and record a check's figures, then assert each trained one beats random init's."""
    print(f"\n{what} after {result['epochs']} epochs of {result['method']}: " + ", ".join(
        f"{name} {result['random_' + name]:.4f} -> {result['trained_' + name]:.4f}" for name in metrics))
    record(result)
    for name in metrics:
        assert result[f"trained_{name}"] > result[f"random_{name}"], (name, result)


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_beats_the_random_encoder_on_every_evaluation_protocol(cifar10_root):
    """SimCLR's check (same settings) scored by few labels (10%), k-means, retrieval, the
    layer-wise probe and fine-tuning."""
    _beats_random_on(PROTOCOL_METRICS, protocol_check(CHECKS["simclr"], str(cifar10_root), learning_seed()), "protocols")


@pytest.mark.slow
@pytest.mark.learning
def test_simclr_transfers_to_classes_it_never_saw(cifar10_root):
    """Pretrained on five CIFAR-10 classes, probed on the other five."""
    result = transfer_check(CHECKS["simclr"], str(cifar10_root), cifar10_root.parent / "class-split", learning_seed())
    _beats_random_on(TRANSFER_METRICS, result, "transfer")


@pytest.mark.slow
@pytest.mark.learning
@pytest.mark.parametrize("name", ["siamese", "triplet", "arcface"])
def test_metric_learning_beats_the_random_encoder_on_retrieval_too(name, cifar10_root):
    """The metric-learning methods' checks (same settings) scored by retrieval (R@1, MAP@R),
    the protocol they are made for; clustering is recorded beside it."""
    _beats_random_on(("recall_at_1", "map_at_r"), protocol_check(CHECKS[name], str(cifar10_root), learning_seed()),
                     "retrieval")
