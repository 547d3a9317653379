"""The supervised metric-learning losses against hand computations on tiny tensors
(siamese: contrastive margin; triplet: batch-hard and semi-hard mining, hard and soft margin;
arcface: margin logits), and their one-line refusals."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from ssltrain.compose import compose_settings
from ssltrain.errors import UserError
from ssltrain.losses.arcface import arcface_logits, arcface_loss
from ssltrain.losses.contrastive_margin import contrastive_margin_loss
from ssltrain.losses.distances import pairwise_distances
from ssltrain.losses.triplet import batch_hard, semi_hard, triplet_margin_loss
from ssltrain.methods import triplet as triplet_module
from ssltrain.registry import ENCODERS, METHODS
from ssltrain.run import run

# five points on a line: class 0 at 0, 1, 3; class 1 at 2.5, 10
LINE = torch.tensor([[0.0], [1.0], [3.0], [2.5], [10.0]], dtype=torch.float64)
LINE_LABELS = torch.tensor([0, 0, 0, 1, 1])


def test_contrastive_loss_on_hand_pairs():
    # one positive pair at distance 5: 5^2; negatives at 1 and sqrt(18) with margin 2: (2 - 1)^2 and 0
    z = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)
    loss = contrastive_margin_loss(z, torch.tensor([0, 0, 1]), margin=2.0)
    assert loss.item() == pytest.approx(25 + (1 + 0) / 2)


def test_contrastive_loss_has_a_finite_gradient_for_identical_embeddings():
    z = torch.zeros(3, 4, requires_grad=True)
    contrastive_margin_loss(z, torch.tensor([0, 0, 1]), margin=1.0).backward()
    assert torch.isfinite(z.grad).all()


def test_batch_hard_picks_the_farthest_positive_and_the_closest_negative():
    anchors, positives, negatives = batch_hard(pairwise_distances(LINE), LINE_LABELS)
    assert anchors.tolist() == [0, 1, 2, 3, 4]
    assert positives.tolist() == [2, 2, 0, 4, 3]
    assert negatives.tolist() == [3, 3, 3, 2, 2]
    # max(0, d_ap - d_an + 0.2): 3 - 2.5, 2 - 1.5, 3 - 0.5, 7.5 - 0.5, 7.5 - 7, each + 0.2
    loss = triplet_margin_loss(LINE, LINE_LABELS, margin=0.2, mining="batch_hard")
    assert loss.item() == pytest.approx((0.7 + 0.7 + 2.7 + 7.2 + 0.7) / 5)


def test_semi_hard_picks_the_closest_negative_farther_than_the_positive_else_the_farthest():
    anchors, positives, negatives = semi_hard(pairwise_distances(LINE), LINE_LABELS)
    chosen = {(a, p): n for a, p, n in zip(anchors.tolist(), positives.tolist(), negatives.tolist())}
    assert len(chosen) == 8, "every anchor-positive pair"
    assert chosen[(0, 1)] == 3  # d_ap 1: negatives at 2.5 and 10, the closer one
    assert chosen[(0, 2)] == 4  # d_ap 3: 2.5 is closer than the positive, 10 is not
    assert chosen[(4, 3)] == 1  # d_ap 7.5: negatives at 10, 9, 7: the closest beyond 7.5
    assert chosen[(3, 4)] == 0  # d_ap 7.5: every negative (2.5, 1.5, 0.5) is closer: the farthest, fallback


@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_the_soft_margin_is_the_softplus_of_the_violation(margin):
    # batch-hard's d_ap - d_an on LINE (above): 0.5, 0.5, 2.5, 7.0, 0.5; ln(1 + exp(x + margin)) each
    expected = sum(math.log1p(math.exp(x + margin)) for x in (0.5, 0.5, 2.5, 7.0, 0.5)) / 5
    loss = triplet_margin_loss(LINE, LINE_LABELS, margin, mining="batch_hard", soft_margin=True)
    assert loss.item() == pytest.approx(expected)


def test_the_soft_margin_still_pulls_triplets_the_hinge_calls_satisfied():
    # anchors 0 and 1: positive at 1, negative at 10 and 9: d_ap - d_an = -9, -8, past any margin of 0.2
    z = torch.tensor([[0.0], [1.0], [10.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    hinge = triplet_margin_loss(z, labels, 0.2, "batch_hard")
    soft = triplet_margin_loss(z, labels, 0.0, "batch_hard", soft_margin=True)
    assert hinge.item() == 0
    assert soft.item() == pytest.approx((math.log1p(math.exp(-9)) + math.log1p(math.exp(-8))) / 2)
    soft.backward()
    assert z.grad.abs().sum() > 0


def test_a_batch_without_a_triplet_is_refused():
    with pytest.raises(ValueError, match="no triplet"):
        triplet_margin_loss(LINE[:3], torch.tensor([0, 1, 2]), 0.2, "batch_hard")


def test_arcface_adds_the_margin_to_the_true_class_angle_only():
    scale, margin = 16.0, 0.5
    angles = torch.tensor([0.3, 1.2, 3.0], dtype=torch.float64)  # class centres at these angles
    weight = torch.stack([angles.cos(), angles.sin()], dim=1) * torch.tensor([[2.0], [0.5], [1.0]], dtype=torch.float64)
    z = torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=torch.float64)  # angles 0 and pi / 2; norms do not matter
    labels = torch.tensor([0, 1])
    logits = arcface_logits(z, weight, labels, scale, margin)
    theta = torch.stack([angles, (angles - math.pi / 2).abs()])  # [2, 3] angle between each z and each centre
    expected = scale * theta.cos()
    expected[0, 0] = scale * math.cos(0.3 + margin)
    expected[1, 1] = scale * math.cos(abs(1.2 - math.pi / 2) + margin)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(arcface_loss(z, weight, labels, scale, margin), F.cross_entropy(expected, labels))


def test_arcface_past_pi_falls_back_to_the_cosine_minus_m_sin_m():
    # theta_y = 3.0: theta + 0.5 > pi, where cos(theta + m) would rise again
    weight = torch.tensor([[math.cos(3.0), math.sin(3.0)], [1.0, 0.0]], dtype=torch.float64)
    logits = arcface_logits(torch.tensor([[1.0, 0.0]], dtype=torch.float64), weight, torch.tensor([0]), 1.0, 0.5)
    assert logits[0, 0].item() == pytest.approx(math.cos(3.0) - 0.5 * math.sin(0.5))


def _small_encoder():
    return ENCODERS.build("small_cnn", context={"image_size": 32}, channels=[4, 8])


def test_arcface_without_a_class_count_fails_in_one_line():
    with pytest.raises(UserError, match="^method arcface needs the dataset's number of classes"):
        METHODS.build("arcface", context={"encoder": _small_encoder()})


def test_an_unknown_triplet_mining_names_the_key_and_the_choices():
    with pytest.raises(UserError, match="method.mining='hardest' is not valid; choose one of: batch_hard, semi_hard"):
        METHODS.build("triplet", context={"encoder": _small_encoder()}, mining="hardest")


def test_the_triplet_defaults_are_facenets_setting():
    options = compose_settings(["method=triplet"]).method.options
    assert (options["mining"], options["normalize"], options["soft_margin"], options["margin"]) == \
        ("semi_hard", True, False, 0.2)


def test_hermans_setting_as_the_triplet_docstring_gives_it_composes():
    overrides = next(line.split() for line in triplet_module.__doc__.splitlines() if "method.mining=batch_hard" in line)
    options = compose_settings(["method=triplet", *overrides]).method.options
    assert (options["mining"], options["normalize"], options["soft_margin"], options["margin"]) == \
        ("batch_hard", False, True, 0.0)


@pytest.mark.parametrize("method", ["siamese", "triplet", "arcface"])
def test_on_an_unlabelled_image_folder_each_fails_with_one_line_asking_for_labels(tmp_path, method):
    (tmp_path / "train").mkdir()
    for index in range(4):
        Image.new("RGB", (32, 32), (60 * index, 80, 120)).save(tmp_path / "train" / f"{index}.png")
    settings = compose_settings([f"method={method}", "encoder=small_cnn", "dataset=imagefolder", "eval=none",
                                 f"dataset.root={tmp_path}", "dataset.image_size=32", "dataset.cache=false",
                                 "trainer.batch_size=2", "trainer.device=cpu"])
    with pytest.raises(UserError) as error:
        run(settings, tmp_path / "run", search_roots=[])
    assert str(error.value) == f"method {method} needs labelled images; imagefolder has none"
