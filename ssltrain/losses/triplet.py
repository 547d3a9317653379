"""The triplet margin loss with in-batch mining: batch-hard or semi-hard negatives, and a
hard (hinge) or soft (softplus) margin.

Batch-hard: Hermans, Beyer & Leibe, "In Defense of the Triplet Loss for Person
Re-Identification", 2017, https://arxiv.org/abs/1703.07737, eq. (5).
Semi-hard: Schroff, Kalenichenko & Philbin, "FaceNet", CVPR 2015,
https://arxiv.org/abs/1503.03832, section 3.2 (eq. (4)), as TensorFlow Addons'
triplet_semihard_loss computes it online over a batch.
Both on plain (not squared) Euclidean distances, as Hermans et al. recommend.
Soft margin: Hermans et al.'s paragraph "Soft-margin": the hinge [m + x]_+ replaced by the
softplus ln(1 + exp(x)), as their code's default (triplet-reid loss.py apply_margin,
train.py --margin soft); a nonzero margin shifts it, softplus(x + m), as
pytorch-metric-learning's TripletMarginLoss(smooth_loss=True) does in its later versions
(its early ones dropped the margin there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssltrain.losses.distances import pairwise_distances

MINING = ("batch_hard", "semi_hard")


def batch_hard(distance: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """distance: [N, N], labels: [N] -> (anchors [T], positives [T], negatives [T]) indices:
    one triplet per anchor that has a positive and a negative in the batch: its farthest
    positive (same class, not itself) and its closest negative (another class)."""
    same = labels[:, None] == labels[None, :]  # [N, N]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # [N, N]
    anchors = (positive.any(1) & (~same).any(1)).nonzero().flatten()  # [T]
    farthest = distance.masked_fill(~positive, float("-inf")).argmax(1)  # [N]
    closest = distance.masked_fill(same, float("inf")).argmin(1)  # [N]
    return anchors, farthest[anchors], closest[anchors]


def semi_hard(distance: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """distance: [N, N], labels: [N] -> (anchors [T], positives [T], negatives [T]) indices:
    one triplet per anchor-positive pair (every positive, as FaceNet uses all of them) whose
    anchor has a negative: the closest negative farther from the anchor than the positive
    (d_an > d_ap); when there is none (every negative is closer than the positive), the
    farthest negative, the least hard of them (TF Addons' fallback; FaceNet section 3.2: the
    hardest negatives can collapse the model early in training)."""
    same = labels[:, None] == labels[None, :]  # [N, N]
    positive = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # [N, N]
    anchors, positives = (positive & (~same).any(1, keepdim=True)).nonzero().unbind(1)  # [T] each
    to_negatives = distance[anchors].masked_fill(same[anchors], float("nan"))  # [T, N], NaN: not a negative
    farther = to_negatives > distance[anchors, positives][:, None]  # [T, N] (NaN compares False)
    closest_farther = to_negatives.masked_fill(~farther, float("inf")).argmin(1)  # [T]
    farthest = to_negatives.nan_to_num(float("-inf")).argmax(1)  # [T]
    negatives = torch.where(farther.any(1), closest_farther, farthest)  # [T]
    return anchors, positives, negatives


def triplet_margin_loss(z: torch.Tensor, labels: torch.Tensor, margin: float, mining: str,
                        soft_margin: bool = False) -> torch.Tensor:
    """z: [N, D] embeddings, labels: [N] classes; the mean over the mined triplets of
        max(0, d(a, p) - d(a, n) + margin), or with `soft_margin` ln(1 + exp(d(a, p) - d(a, n) + margin)).
    Raises ValueError when the batch holds no triplet (no class with two images and another)."""
    if mining not in MINING:
        raise ValueError(f"unknown triplet mining '{mining}'; choose one of: {', '.join(MINING)}")
    distance = pairwise_distances(z)  # [N, N]
    anchors, positives, negatives = (batch_hard if mining == "batch_hard" else semi_hard)(distance.detach(), labels)
    if len(anchors) == 0:
        raise ValueError("the batch holds no triplet: it needs two images of one class and one of another")
    violation = distance[anchors, positives] - distance[anchors, negatives] + margin  # [T]
    return (F.softplus(violation) if soft_margin else violation.clamp_min(0)).mean()
