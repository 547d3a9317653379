"""kNN, linear probe and fine-tuning on known data."""

import math

import pytest
import torch

from ssltrain.data.images import ImageSet
from ssltrain.encoders.small import small_cnn
from ssltrain.eval.data import EvalData, estimate_batchnorm_statistics, extract_features, topk_accuracy
from ssltrain.eval.finetune import _freeze, finetune, train_classifier
from ssltrain.eval.knn import knn_scores
from ssltrain.eval.linear import fit_linear, linear


def test_knn_scores_sum_exp_weighted_votes_of_the_k_nearest():
    train = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 1, 1, 0])
    query = torch.tensor([[1.0, 0.1]])
    scores = knn_scores(train, labels, query, num_classes=2, k=2, temperature=0.5)
    q = query[0] / query[0].norm()
    sims = [float(q @ t) for t in train]  # nearest two: rows 0 and 1
    expected = torch.tensor([[math.exp(sims[0] / 0.5), math.exp(sims[1] / 0.5)]])
    assert torch.allclose(scores, expected, rtol=1e-5)


def test_topk_accuracy_counts_labels_within_the_top_k():
    scores = torch.tensor([[0.9, 0.05, 0.05], [0.1, 0.2, 0.7], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 1])
    top1, top2 = topk_accuracy(scores, labels, ks=(1, 2))
    assert top1 == pytest.approx(1 / 3) and top2 == pytest.approx(1.0)


def test_linear_probe_separates_linearly_separable_features():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (300,), generator=generator)
    centres = torch.randn(3, 16, generator=generator) * 3
    features = (centres[labels] + torch.randn(300, 16, generator=generator)) * 100 + 50  # large scale and offset
    classifier = fit_linear(features[:200], labels[:200], 3, epochs=30, lr=0.1, batch_size=32, weight_decay=0.0, seed=0)
    with torch.no_grad():
        top1, _ = topk_accuracy(classifier(features[200:]), labels[200:])
    chance = torch.bincount(labels[200:]).max().item() / 100
    assert top1 > chance + 0.2


def test_freezing_k_stages_freezes_exactly_their_parameters():
    encoder = small_cnn(channels=(4, 8, 16))
    encoder.blocks[2][0].weight.requires_grad_(False)  # held fixed in pretraining, as MAE's positions
    frozen_modules = _freeze(encoder, 2)
    blocks = list(encoder.blocks)
    assert all(not p.requires_grad for block in blocks[:2] for p in block.parameters())
    assert all(p.requires_grad for p in blocks[2].parameters())
    assert frozen_modules == blocks[:2]


def _toy_data(count=64):
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(count) % 2
    pixels = torch.where(labels.view(-1, 1, 1, 1) == 1, 200, 40).to(torch.uint8).expand(count, 8, 8, 3).clone()
    pixels = (pixels.int() + torch.randint(-30, 30, pixels.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
    images = ImageSet(labels=labels, pixels=pixels)
    return EvalData(images, images, num_classes=2, image_size=8, mean=(0.5,) * 3, std=(0.25,) * 3, seed=0)


def test_extract_features_normalises_decoded_images_in_order():
    data = _toy_data(8)
    features, labels = extract_features(torch.nn.Flatten(), data.val, data, torch.device("cpu"), batch_size=3)
    expected = (data.val.pixels.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    assert torch.allclose(features, expected.flatten(1), atol=1e-6)
    assert torch.equal(labels, data.val.labels)


# the backbone's learning rate is the head's: only freezing can keep the backbone still
FINE_TUNING = dict(lr=0.5, backbone_lr=0.5, batch_size=16, weight_decay=0.0)


def _state(encoder: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in encoder.state_dict().items()}


def _changed_entries(encoder: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    """The encoder's state_dict entries (weights and BatchNorm buffers) that differ from `before`."""
    return {key for key, value in encoder.state_dict().items() if not torch.equal(value, before[key])}


def test_fine_tuning_with_every_stage_frozen_learns_the_head_and_leaves_the_backbone_untouched():
    backbone = small_cnn(channels=(4, 8))
    before = _state(backbone)
    logits, labels = train_classifier(backbone, _toy_data(), torch.device("cpu"), epochs=5, freeze_stages=-1,
                                      **FINE_TUNING)
    top1, _ = topk_accuracy(logits, labels)
    assert top1 > 0.9
    assert _changed_entries(backbone, before) == set()


def test_fine_tuning_with_no_stage_frozen_trains_the_backbones_weights_and_batchnorm_statistics():
    backbone = small_cnn(channels=(4, 8))
    before = _state(backbone)
    train_classifier(backbone, _toy_data(), torch.device("cpu"), epochs=1, freeze_stages=0, **FINE_TUNING)
    changed = _changed_entries(backbone, before)
    assert "blocks.0.0.weight" in changed and "blocks.1.1.running_mean" in changed, changed


def test_the_fine_tuning_evaluator_trains_a_copy_and_leaves_the_runs_encoder_untouched():
    encoder = small_cnn(channels=(4, 8))
    before = _state(encoder)
    results = finetune(encoder, _toy_data(), torch.device("cpu"), epochs=1, freeze_stages=0, knn=False, **FINE_TUNING)
    assert 0.0 <= results["finetune_top1"] <= 1.0
    assert _changed_entries(encoder, before) == set()


def test_batchnorm_statistics_are_estimated_on_the_training_images_without_changing_weights():
    data = _toy_data(32)
    encoder = torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Flatten())
    weights = [p.detach().clone() for p in encoder.parameters()]
    used = estimate_batchnorm_statistics(encoder, data, torch.device("cpu"), batch_size=8)
    normalised = (data.train.pixels.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25  # what the probes see
    norm = encoder[0]
    assert used == 32
    torch.testing.assert_close(norm.running_mean, normalised.mean(dim=(0, 2, 3)), atol=1e-5, rtol=0)
    batch_variances = torch.stack([chunk.var(dim=(0, 2, 3)) for chunk in normalised.split(8)])  # unbiased, per batch
    torch.testing.assert_close(norm.running_var, batch_variances.mean(0), atol=1e-5, rtol=0)
    assert norm.momentum == 0.1, "the layer's own momentum is restored"
    assert all(torch.equal(w, p) for w, p in zip(weights, encoder.parameters()))


def test_an_encoder_without_batchnorm_has_no_statistics_to_estimate():
    assert estimate_batchnorm_statistics(torch.nn.Flatten(), _toy_data(8), torch.device("cpu")) == 0


def test_a_label_fraction_keeps_a_seeded_class_balanced_share_of_the_training_images():
    data = _toy_data(100)
    tenth = data.with_label_fraction(0.1)
    assert torch.bincount(tenth.train.labels).tolist() == [5, 5]
    assert torch.equal(tenth.train.labels, data.with_label_fraction(0.1).train.labels)
    assert tenth.val is data.val and data.with_label_fraction(1.0) is data


def test_the_linear_probe_reports_its_label_fraction_and_how_many_labels_it_used():
    results = linear(torch.nn.Flatten(), _toy_data(100), torch.device("cpu"), epochs=2, label_fraction=0.1)
    assert (results["label_fraction"], results["labelled_images"]) == (0.1, 10)
