"""The standard GAN losses on discriminator logits, generator in its non-saturating form.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
https://arxiv.org/abs/1406.2661, eq. 1 and section 3 (maximise log D(G(z)) for the
generator); used by the Context Encoder (Pathak et al. 2016, eq. 2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean log D(real) - mean log(1 - D(fake)); logits of any shape, D = sigmoid(logit)."""
    real, fake = real_logits.float(), fake_logits.float()
    return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-mean log D(fake): the generator's non-saturating loss."""
    fake = fake_logits.float()
    return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
