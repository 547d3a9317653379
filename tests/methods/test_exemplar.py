"""Exemplar CNN: the surrogate classes (a seeded subset of the images, each its own class)
and the loss over the samples of those classes, against a hand computation."""

from __future__ import annotations

import math

import pytest
import torch

from kit import train_step, views_batch
from ssltrain.encoders.small import small_cnn
from ssltrain.methods.exemplar import UNCHOSEN, Exemplar, exemplar_loss, surrogate_classes


def test_every_image_is_its_own_class_when_there_are_fewer_than_the_exemplars():
    assert surrogate_classes(5, num_exemplars=8).tolist() == [0, 1, 2, 3, 4]


def test_a_seeded_subset_of_the_images_are_the_classes_numbered_in_image_order():
    classes = surrogate_classes(100, num_exemplars=10)
    chosen = (classes != UNCHOSEN).nonzero().flatten()
    assert len(chosen) == 10 and classes[chosen].tolist() == list(range(10))
    assert torch.equal(classes, surrogate_classes(100, num_exemplars=10)), "the same draw every time"


def test_the_loss_is_the_cross_entropy_of_the_chosen_samples_only():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    loss = exemplar_loss(logits, torch.tensor([0, 0, UNCHOSEN]))
    by_hand = (-math.log(math.exp(2) / (math.exp(2) + 1)) - math.log(1 / (1 + math.e))) / 2
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    none = exemplar_loss(logits.requires_grad_(), torch.full((3,), UNCHOSEN))
    assert none.item() == 0 and none.requires_grad


def test_both_views_of_an_image_are_samples_of_its_class_and_the_classifier_has_one_output_per_class():
    torch.manual_seed(0)
    method = Exemplar(small_cnn(channels=(8, 16)), num_images=12, num_exemplars=6)
    assert method.classifier.out_features == 6 and "classes" in method.state_dict()
    batch = views_batch([16, 16], batch=4)
    batch.indices = torch.tensor([0, 5, 6, 11])
    seen = []
    method.classifier.register_forward_hook(lambda module, inputs, output: seen.append(output.shape[0]))
    outputs = train_step(method, batch)
    assert seen == [8] and torch.isfinite(outputs["loss"]) and 0 <= outputs["exemplar_accuracy"] <= 1
