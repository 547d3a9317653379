"""DANN (method=dann): the gradient reversal layer and its ramp against hand computations,
the domain term's gradients (reversed into the encoder, plain into the domain classifier),
the source-only baseline (domain_weight=0), its label classifier's held-out accuracy per
domain, the paired source/target loader, the one-line refusals, and a command-line run on
synthetic data. Its learning check on a real domain
shift is tests/test_domain_learning.py (slow)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import run_cli, smoke
from kit import views_batch
from ssltrain.compose import compose_settings
from ssltrain.data.batch import Batch
from ssltrain.data.paired import PairedLoader
from ssltrain.errors import UserError
from ssltrain.methods.dann import DANN
from ssltrain.parts.gradient_reversal import reversal_ramp, reverse_gradient
from ssltrain.registry import ENCODERS


def test_gradient_reversal_is_the_identity_forward_and_minus_lambda_times_the_gradient_backward():
    x = torch.randn(3, 4, requires_grad=True)
    upstream = torch.randn(3, 4)
    y = reverse_gradient(x, 0.3)
    assert torch.equal(y, x)
    y.backward(upstream)
    torch.testing.assert_close(x.grad, -0.3 * upstream)


def test_the_reversal_coefficient_ramps_from_0_towards_1_as_the_paper_writes():
    assert reversal_ramp(0.0) == 0.0
    assert reversal_ramp(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)  # 0.98661
    assert reversal_ramp(1.0) == pytest.approx(0.9999092, abs=1e-7)
    assert reversal_ramp(0.1, gamma=1.0) == pytest.approx(2 / (1 + math.exp(-0.1)) - 1)


def _dann(**options) -> DANN:
    torch.manual_seed(0)
    encoder = ENCODERS.build("small_cnn", context={"image_size": 16}, channels=[4, 8])
    return DANN(encoder, num_classes=3, domain_hidden_dims=(6,), **options)


def _batch() -> Batch:
    batch = views_batch([16], batch=6, classes=3, target=True)
    return batch


def _encoder_grads(method: DANN, loss: torch.Tensor) -> list[torch.Tensor]:
    method.zero_grad()
    loss.backward()
    return [p.grad.clone() for p in method.encoder.parameters()]


def test_the_domain_term_reaches_the_encoder_reversed_and_scaled_and_the_domain_classifier_plainly():
    method = _dann(domain_weight=0.7)
    method.on_step_start(3, 10)
    lam = reversal_ramp(0.3)
    assert method.reversal == pytest.approx(lam)
    batch = _batch()
    torch.manual_seed(1)
    outputs = method(batch)
    total = _encoder_grads(method, outputs["loss"])
    domain_head_grads = [p.grad.clone() for p in method.domain_classifier.parameters()]

    # by hand: the same forward without the reversal layer
    torch.manual_seed(1)
    features = method.encoder(torch.cat([batch.views[0], batch.target.views[0]]))  # [12, D]
    class_loss = F.cross_entropy(method.classifier(features[:6]), batch.labels)
    logits = method.domain_classifier(features).squeeze(1)  # [12]
    domains = torch.cat([torch.ones(6), torch.zeros(6)])  # source 1, target 0
    per_domain = F.binary_cross_entropy_with_logits(logits, domains, reduction="none")
    domain_loss = per_domain[:6].mean() + per_domain[6:].mean()  # the paper's two averages, summed
    torch.testing.assert_close(outputs["domain_loss"], domain_loss.detach())
    torch.testing.assert_close(outputs["class_loss"], class_loss.detach())
    class_grads = _encoder_grads(method, class_loss)
    torch.manual_seed(1)
    features = method.encoder(torch.cat([batch.views[0], batch.target.views[0]]))
    logits = method.domain_classifier(features).squeeze(1)
    per_domain = F.binary_cross_entropy_with_logits(logits, domains, reduction="none")
    domain_grads = _encoder_grads(method, 0.7 * (per_domain[:6].mean() + per_domain[6:].mean()))
    for got, c, d in zip(total, class_grads, domain_grads):
        torch.testing.assert_close(got, c - lam * d, rtol=1e-4, atol=1e-6)
    for got, plain in zip(domain_head_grads, [p.grad for p in method.domain_classifier.parameters()]):
        torch.testing.assert_close(got, plain, rtol=1e-4, atol=1e-6)  # descends 0.7 * domain loss, not reversed


def test_domain_weight_0_is_the_source_only_baseline_cross_entropy_alone():
    method = _dann(domain_weight=0.0)
    method.on_step_start(9, 10)
    batch = _batch()
    torch.manual_seed(1)
    outputs = method(batch)
    torch.testing.assert_close(outputs["loss"], outputs["class_loss"])
    assert outputs["domain_loss"] > 0  # still measured, not trained


class _Counting:
    """A loader whose batches are labelled by (epoch, step): label = 100 * epoch + step."""

    def __init__(self, steps: int):
        self.steps_per_epoch = steps

    def epoch(self, epoch: int, start_step: int = 0):
        for step in range(start_step, self.steps_per_epoch):
            yield Batch(views=[torch.zeros(1, 3, 2, 2)], labels=torch.tensor([100 * epoch + step]))


def _targets(loader: PairedLoader, epoch: int, start: int = 0) -> list[int]:
    return [int(batch.target.labels) for batch in loader.epoch(epoch, start)]


def test_the_held_out_accuracy_of_each_domain_is_its_label_classifiers_top1():
    method = DANN(ENCODERS.build("small_cnn", channels=[8, 16]), num_classes=2)
    with torch.no_grad():  # class 1 wins exactly when the first feature is positive
        method.classifier.weight.zero_()
        method.classifier.bias.zero_()
        method.classifier.weight[1, 0] = 1.0
    features = torch.zeros(4, method.encoder.out_dim)
    features[:, 0] = torch.tensor([1.0, -1.0, 2.0, -2.0])
    labels = {"source": torch.tensor([1, 0, 1, 0]), "target": torch.tensor([1, 1, 0, 0])}
    assert method.held_out_metrics({domain: (features, labels[domain]) for domain in labels}) == {
        "source_accuracy": 1.0, "target_accuracy": 0.5}


def test_the_paired_loader_cycles_the_target_and_resumes_mid_epoch_at_the_same_target_batch():
    loader = PairedLoader(_Counting(5), _Counting(3))
    assert loader.steps_per_epoch == 5
    assert _targets(loader, 0) == [0, 1, 2, 100, 101]  # the target's epoch 1 follows its epoch 0
    assert _targets(loader, 1) == [102, 200, 201, 202, 300]
    assert _targets(loader, 1, start=3) == [202, 300]  # a resumed epoch: the same targets
    assert [int(b.labels) for b in loader.epoch(1, 3)] == [103, 104]  # the source's own batches


def test_dann_without_a_target_dataset_says_which_key_to_set():
    with pytest.raises(UserError, match=r"^method dann trains on two datasets: set the second with target_dataset="):
        compose_settings(["method=dann", "encoder=small_cnn"])


def test_a_target_dataset_for_a_one_dataset_method_is_refused():
    with pytest.raises(UserError, match=r"^target_dataset=synthetic is set but method simclr trains on one dataset"):
        compose_settings(["method=simclr", "encoder=small_cnn", "target_dataset=synthetic"])


def test_a_target_dataset_key_without_a_target_dataset_says_to_choose_one():
    with pytest.raises(UserError, match=r"target_dataset.root sets a key of the target dataset, and none is chosen"):
        compose_settings(["target_dataset.root=/data"])


def test_dann_trains_from_the_command_line_on_two_datasets_and_reports_both_domains_accuracy(tmp_path):
    result = run_cli(smoke("method=dann", "trainer.epochs=1", "target_dataset=synthetic",
                           "target_dataset.num_images=100", "target_dataset.seed=3", "hydra.run.dir=run"), tmp_path)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["method"] == "dann" and math.isfinite(results["knn_top1"])
    assert 0.0 <= results["source_accuracy"] <= 1.0 and 0.0 <= results["target_accuracy"] <= 1.0
    said = (tmp_path / "run" / "ssltrain.log").read_text()
    assert "target data: synthetic, 100 training images" in said
