"""Exemplar CNN: every training image is a surrogate class of its own, to be recognised under
heavy augmentation by a parametric classifier.

Dosovitskiy et al., "Discriminative Unsupervised Feature Learning with Convolutional Neural
Networks", NIPS 2014, https://arxiv.org/abs/1406.6909 (TPAMI 2016, arXiv:1506.02753).

A linear classifier on the encoder's features has one output per surrogate class: for N
images, N x out_dim weights (50,000 CIFAR-10 images on a ResNet-18: 25.6M weights, twice
the encoder, plus the optimizer's state). As the paper does (it trained on 8,000 surrogate
classes, images drawn from STL-10's unlabelled set), the classes are `num_exemplars` images drawn once with a fixed seed (0,
kept in a buffer, so a resumed run has the same classes); the other images of a batch are
left out of the loss. With fewer images than that, every image is a class. Each view of an
image (the simclr augmentation makes two) is a sample of its class; the paper drew 100
transformed samples per class offline, here each step draws new ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.methods.base import SSLMethod, encode_views
from ssltrain.registry import METHODS

UNCHOSEN = -1  # the surrogate class of an image that is not an exemplar


def surrogate_classes(num_images: int, num_exemplars: int, seed: int = 0) -> torch.Tensor:
    """[num_images] int64: the class of each image, 0 .. C - 1 in image order for the
    C = min(num_exemplars, num_images) images drawn with `seed`, UNCHOSEN for the others."""
    chosen = torch.randperm(num_images, generator=torch.Generator().manual_seed(seed))[:num_exemplars]
    classes = torch.full((num_images,), UNCHOSEN, dtype=torch.long)
    classes[chosen.sort().values] = torch.arange(len(chosen))
    return classes


def exemplar_loss(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the samples of surrogate classes. logits: [B, C]; classes: [B]
    int64, UNCHOSEN for samples outside the classes (left out). A batch without any gives
    0, still connected to the graph."""
    chosen = (classes != UNCHOSEN).float()  # [B]
    total = (F.cross_entropy(logits, classes.clamp(min=0), reduction="none") * chosen).sum()
    return total / chosen.sum().clamp(min=1)


@METHODS.register("exemplar")
class Exemplar(SSLMethod):
    views = (1, None)

    def __init__(self, encoder: nn.Module, num_images: int, num_exemplars: int = 8000):
        """num_exemplars: the number of surrogate classes (the paper's 8,000)."""
        super().__init__(encoder)
        self.register_buffer("classes", surrogate_classes(num_images, num_exemplars))  # [N]
        self.classifier = nn.Linear(encoder.out_dim, min(num_exemplars, num_images))

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        logits = encode_views(batch.views, lambda x: self.classifier(self.encoder(x)))  # V x [B, C]
        classes = self.classes[batch.indices].repeat(len(logits))  # [V B]
        logits = torch.cat(logits)  # [V B, C]
        chosen = (classes != UNCHOSEN).float()  # [V B]
        accuracy = ((logits.argmax(dim=1) == classes).float() * chosen).sum() / chosen.sum().clamp(min=1)
        return {"loss": exemplar_loss(logits, classes), "exemplar_accuracy": accuracy}
