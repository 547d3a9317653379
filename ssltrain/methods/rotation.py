"""Rotation prediction (RotNet): which of 0, 90, 180 or 270 degrees was an image turned by?

Gidaris et al., "Unsupervised Representation Learning by Predicting Image Rotations",
ICLR 2018, https://arxiv.org/abs/1803.07728.

Every image is shown in all four rotations in the same batch, not one random rotation:
the paper's CIFAR-10 implementation details (sec. 3.1) report that feeding all four
copies at once trains better. A step thus sees 4B inputs for a batch of B images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.heads import mlp
from ssltrain.methods.base import SSLMethod
from ssltrain.registry import METHODS

ROTATIONS = 4  # multiples of 90 degrees


def all_rotations(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image turned counter-clockwise by 0, 90, 180 and 270 degrees.

    [B, C, S, S] -> (rotated [4B, C, S, S], labels [4B]); rows r*B .. (r+1)*B - 1 are the
    batch turned by r * 90 degrees and labelled r.
    """
    rotated = torch.cat([torch.rot90(images, r, dims=(2, 3)) for r in range(ROTATIONS)])  # [4B, C, S, S]
    labels = torch.arange(ROTATIONS, device=images.device).repeat_interleave(images.shape[0])  # [4B]
    return rotated, labels


@METHODS.register("rotation")
class Rotation(SSLMethod):
    views = (1, 1)

    def __init__(self, encoder: nn.Module, head_hidden_dims: tuple[int, ...] = (512,)):
        """head_hidden_dims: widths of the classifier's hidden layers on the encoder's
        features; () makes it linear."""
        super().__init__(encoder)
        self.head = mlp([encoder.out_dim, *head_hidden_dims, ROTATIONS])

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images, labels = all_rotations(batch.views[0])  # [4B, 3, S, S], [4B]
        logits = self.head(self.encoder(images))  # [4B, 4]
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": F.cross_entropy(logits, labels), "rotation_accuracy": accuracy}
