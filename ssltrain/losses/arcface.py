"""ArcFace: softmax over cosine logits with an additive angular margin on the true class.

Deng, Guo, Xue & Zafeiriou, "ArcFace: Additive Angular Margin Loss for Deep Face
Recognition", CVPR 2019, https://arxiv.org/abs/1801.07698, eq. (3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def arcface_logits(z: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, scale: float,
                   margin: float) -> torch.Tensor:
    """z: [N, D] embeddings, weight: [C, D] class centres, labels: [N] -> logits [N, C]:
    s * cos(theta_j) for every class j, and s * cos(theta_y + m) for the true class y, where
    theta_j is the angle between z and W_j (both L2-normalised). Where theta_y + m would pass
    pi, where cos stops decreasing, the target is s * (cos(theta_y) - m * sin(m)) instead, as
    the authors' code does (insightface, easy_margin=False), so the logit keeps decreasing."""
    cosine = F.normalize(z, dim=1) @ F.normalize(weight, dim=1).T  # [N, C]
    target = cosine.gather(1, labels[:, None])  # [N, 1]
    sine = (1 - target.pow(2)).clamp_min(1e-9).sqrt()  # [N, 1]
    with_margin = target * math.cos(margin) - sine * math.sin(margin)  # cos(theta + m), [N, 1]
    with_margin = torch.where(target > math.cos(math.pi - margin), with_margin, target - math.sin(math.pi - margin) * margin)
    return scale * cosine.scatter(1, labels[:, None], with_margin)  # [N, C]


def arcface_loss(z: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor, scale: float, margin: float) -> torch.Tensor:
    """Cross-entropy over arcface_logits (shapes there); the mean over the batch."""
    return F.cross_entropy(arcface_logits(z, weight, labels, scale, margin), labels)
