"""SupCon: supervised contrastive loss, every view of the same class is a positive.

Khosla et al., "Supervised Contrastive Learning", NeurIPS 2020,
https://arxiv.org/abs/2004.11362, eq. (2) (L_out: the mean over positives sits outside
the log).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ssltrain.runtime import dist


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean L_out over every view of every image in the global batch.

    z: [B, V, D] projections of V >= 2 views of B images (this rank's share);
    labels: [B] class indices. Views and labels are gathered across DDP ranks (views
    with gradients) into N = world_size * B images. Anchor i's positives P(i) are the
    other V*N - 1 views that share its label (at least its own image's other views);
    its denominator runs over all views but itself:
        L_i = -1/|P(i)| sum_{p in P(i)} log(exp(z_i.z_p / t) / sum_{a != i} exp(z_i.z_a / t))
    on L2-normalised z. With all labels distinct and V = 2 this is SimCLR's NT-Xent.
    (The reference code also multiplies by t / 0.07; that only rescales the loss.)
    """
    batch, views = z.shape[:2]
    if views < 2:
        raise ValueError(f"supcon_loss needs at least 2 views per image, got {views}")
    local = F.normalize(z, dim=-1)  # [B, V, D]
    candidates = dist.gather_with_grad(local).flatten(0, 1)  # [N*V, D], image-major
    candidate_labels = dist.gather(labels).repeat_interleave(views)  # [N*V]
    anchors = local.flatten(0, 1)  # [B*V, D]
    anchor_labels = labels.repeat_interleave(views)  # [B*V]
    own = dist.rank() * batch * views + torch.arange(batch * views, device=z.device)  # anchors' columns
    is_self = torch.zeros(len(anchors), len(candidates), dtype=torch.bool, device=z.device)  # [B*V, N*V]
    is_self[torch.arange(len(anchors), device=z.device), own] = True
    logits = (anchors @ candidates.T / temperature).masked_fill(is_self, float("-inf"))  # [B*V, N*V]
    log_prob = logits.log_softmax(dim=1)  # [B*V, N*V]
    positive = (anchor_labels[:, None] == candidate_labels[None, :]) & ~is_self  # [B*V, N*V]
    positive_log_prob = torch.where(positive, log_prob, torch.zeros_like(log_prob)).sum(dim=1)  # [B*V]
    return -(positive_log_prob / positive.sum(dim=1)).mean()
