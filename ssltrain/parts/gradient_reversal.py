"""The gradient reversal layer of domain-adversarial training, and its coefficient's ramp.

Ganin et al., "Domain-Adversarial Training of Neural Networks", JMLR 17(59), 2016,
https://jmlr.org/papers/v17/15-239.html, sec. 5 (eq. 18-19) and sec. 5.2.2 (the ramp).
"""

from __future__ import annotations

import math

import torch


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inputs: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return inputs.view_as(inputs)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(inputs: torch.Tensor, scale: float) -> torch.Tensor:
    """R(x) = x in the forward pass; the backward pass multiplies the gradient by -scale
    (eq. 18-19: dR/dx = -lambda I). Any shape."""
    return _ReverseGradient.apply(inputs, scale)


def reversal_ramp(progress: float, gamma: float = 10.0) -> float:
    """lambda_p = 2 / (1 + exp(-gamma p)) - 1 for training progress p in [0, 1]: 0 at the
    start, rising to ~1, so the domain classifier's noisy early signal barely reaches the
    features (sec. 5.2.2, gamma = 10)."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0
