"""KL divergence of a diagonal Gaussian posterior from the standard normal prior.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
https://arxiv.org/abs/1312.6114, appendix B: -KL = 1/2 sum_j (1 + log s_j^2 - m_j^2 - s_j^2).
"""

from __future__ import annotations

import torch


def gaussian_kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)), summed over the latent dimensions and
    averaged over the batch. mean, log_var: [B, Z]."""
    mean, log_var = mean.float(), log_var.float()
    per_sample = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(dim=1)  # [B]
    return per_sample.mean()
