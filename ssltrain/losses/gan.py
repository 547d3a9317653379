"""The two players' losses of a GAN with a logistic (sigmoid cross-entropy) discriminator.

Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014,
https://arxiv.org/abs/1406.2661, eq. (1) and sec. 3 (the non-saturating generator loss),
as DCGAN trains them (Radford et al., ICLR 2016, https://arxiv.org/abs/1511.06434) and as
the Context Encoder's adversarial term uses them (Pathak et al., CVPR 2016, eq. 2).
Logits may have any shape; each term is a mean over its elements.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE(D(x), real) + BCE(D(G(z)), fake), each a mean over its batch.

    real_logits: [B] D's logits on real images; fake_logits: [M] on generated ones.
    With p = sigmoid(logit): -log p on real, -log(1 - p) on fake (softplus form).
    """
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss BCE(D(G(z)), real) = mean of -log sigmoid(logit).

    fake_logits: [M] D's logits on generated images. Maximising log D(G(z)) instead of
    minimising log(1 - D(G(z))) keeps gradients large while D rejects the samples.
    """
    return F.softplus(-fake_logits.float()).mean()
