"""Least-squares GAN losses, as CycleGAN trains its two adversarial games.

Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017,
https://arxiv.org/abs/1611.04076 (eq. 2 with a = 0, b = c = 1); Zhu et al., "Unpaired
Image-to-Image Translation using Cycle-Consistent Adversarial Networks", ICCV 2017,
https://arxiv.org/abs/1703.10593, sec. 4 (the least-squares form) and sec. 7.1 (D's
objective halved). Scores may have any shape (a PatchGAN's map [B, 1, h, w]); each term is a
mean over its elements.
"""

from __future__ import annotations

import torch


def lsgan_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """0.5 * [mean (D(real) - 1)^2 + mean D(fake)^2]: real scored towards 1, fake towards 0."""
    return 0.5 * ((real_scores.float() - 1).pow(2).mean() + fake_scores.float().pow(2).mean())


def lsgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """mean (D(G(x)) - 1)^2: the generator wants its images scored as real."""
    return (fake_scores.float() - 1).pow(2).mean()
