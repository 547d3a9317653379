"""DINO: the student matches the centred, sharpened output of a momentum teacher.

Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021,
https://arxiv.org/abs/2104.14294: eq. (2)-(3) (cross-entropy between the teacher's
distributions on the global crops and the student's on every other crop) and eq. (4)
(the centre: an EMA of the teacher's batch-mean output).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ssltrain.runtime import dist
from ssltrain.losses.cross_crop import cross_crop_entropy


def dino_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor], center: torch.Tensor,
              student_temperature: float | torch.Tensor = 0.1,
              teacher_temperature: float | torch.Tensor = 0.04) -> torch.Tensor:
    """Mean cross-entropy H(P_t(teacher[i]), P_s(student[v])) over the pairs of different crops.

    student: V tensors [B, K], the student's logits for every crop, global crops first.
    teacher: G tensors [B, K], the teacher's logits for the G global crops (no gradient).
    center: [K] (or [1, K]), subtracted from the teacher's logits (centring).
    P_t = softmax((teacher - center) / teacher_temperature) (a low temperature sharpens),
    P_s = softmax(student / student_temperature).
    """
    targets = [F.softmax((logits.detach().float() - center) / teacher_temperature, dim=-1) for logits in teacher]
    return cross_crop_entropy(targets, [logits / student_temperature for logits in student])


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher: torch.Tensor, momentum: float = 0.9) -> torch.Tensor:
    """center * momentum + (1 - momentum) * mean of the teacher's logits over the global batch.

    center: [K]. teacher: [N, K], this rank's teacher logits (all global crops); the mean
    is all-reduced across DDP ranks. Returns the new [K] centre.
    """
    batch_mean = dist.all_reduce_mean(teacher.float().mean(dim=0))  # [K]
    return center * momentum + batch_mean * (1.0 - momentum)
