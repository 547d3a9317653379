"""Cross-entropy between the targets of the global crops and the predictions of every
other crop: the multi-crop objective that SwAV and DINO share.

SwAV: Caron et al., NeurIPS 2020, https://arxiv.org/abs/2006.09882, eq. (1) and sec. 3.1
(the swapped prediction generalised to multi-crop). DINO: Caron et al., ICCV 2021,
https://arxiv.org/abs/2104.14294, eq. (3).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def cross_crop_entropy(targets: Sequence[torch.Tensor], logits: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean over pairs (i, v), v != i, of the batch-mean cross-entropy H(targets[i], softmax(logits[v])).

    targets: G tensors [B, K], probability distributions computed from crop i (the G
    global crops come first in the crop order and carry no gradient).
    logits: V >= G tensors [B, K], predictions of crop v (already divided by a temperature).
    Every target is predicted by each of the other V - 1 crops, so there are G * (V - 1) pairs.
    """
    if len(logits) < len(targets):
        raise ValueError(f"{len(targets)} target crops but only {len(logits)} predicting crops")
    target = torch.stack(list(targets)).float()  # [G, B, K]
    log_probs = F.log_softmax(torch.stack(list(logits)).float(), dim=-1)  # [V, B, K]
    (crops, batch, _), views = target.shape, log_probs.shape[0]
    pair_loss = -torch.einsum("gbk,vbk->gv", target, log_probs) / batch  # [G, V]: batch-mean cross-entropy
    other = 1.0 - torch.eye(crops, views, device=pair_loss.device)  # [G, V]: 0 where v == i
    return (pair_loss * other).sum() / (crops * (views - 1))
