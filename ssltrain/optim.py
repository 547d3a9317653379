"""Optimizers by name, and the parameter groups they receive.

Biases and normalisation parameters (every tensor with fewer than two dimensions) get no
weight decay and, under LARS, no layer-wise adaptation (SimCLR / BYOL practice).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ssltrain.registry import OPTIMIZERS


def default_param_groups(module: nn.Module) -> list[dict]:
    """[weights, biases-and-norms]; frozen parameters are left out."""
    decay, no_decay = [], []
    for param in module.parameters():
        if param.requires_grad:
            (decay if param.ndim > 1 else no_decay).append(param)
    return [
        {"params": decay},
        {"params": no_decay, "no_weight_decay": True, "lars_exclude": True},
    ]


class LARS(torch.optim.Optimizer):
    """SGD with momentum whose step per tensor is scaled by a trust ratio
    eta * ||w|| / (||g|| + wd * ||w||) (You et al., 2017, https://arxiv.org/abs/1708.03888).

    Groups marked `lars_exclude` take plain SGD steps. With `clip`, the scaled rate never
    exceeds the group's rate (the LARC "clip" mode that solo-learn's CIFAR recipes use).
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                 trust_coefficient: float = 0.001, clip: bool = False, eps: float = 1e-8):
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay,
                        trust_coefficient=trust_coefficient, clip=clip, eps=eps)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [param for param in group["params"] if param.grad is not None]
            if params:
                self._update(group, params)
        return loss

    def _update(self, group: dict, params: list[torch.Tensor]) -> None:
        """One group's step with multi-tensor (foreach) kernels: a handful of launches per
        group instead of several per tensor."""
        grads = [param.grad for param in params]
        decay = group["weight_decay"]
        steps = torch._foreach_add(grads, params, alpha=decay) if decay else torch._foreach_mul(grads, 1.0)
        if not group.get("lars_exclude", False):
            param_norms = torch.stack(torch._foreach_norm(params))  # [P]
            grad_norms = torch.stack(torch._foreach_norm(grads))  # [P]
            ratios = group["trust_coefficient"] * param_norms / (grad_norms + decay * param_norms + group["eps"])
            if group["clip"]:
                ratios = torch.clamp(ratios / group["lr"], max=1.0)
            ratios = torch.where((param_norms > 0) & (grad_norms > 0), ratios, torch.ones_like(ratios))
            torch._foreach_mul_(steps, ratios.unbind())
        buffers = [self.state[param].get("momentum_buffer") for param in params]
        if any(buffer is None for buffer in buffers):  # first step: the buffers start as the steps
            for param, step in zip(params, steps):
                self.state[param]["momentum_buffer"] = step.clone()
            buffers = [self.state[param]["momentum_buffer"] for param in params]
        else:
            torch._foreach_mul_(buffers, group["momentum"])
            torch._foreach_add_(buffers, steps)
        torch._foreach_add_(params, buffers, alpha=-group["lr"])


def _fused(params: list[dict]) -> bool:
    """torch's fused kernels need every tensor on CUDA."""
    return all(p.is_cuda for group in params for p in group["params"])


@OPTIMIZERS.register("sgd")
def sgd(params: list[dict], momentum: float = 0.9, nesterov: bool = False) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=0.0, momentum=momentum, nesterov=nesterov, fused=_fused(params) or None)


@OPTIMIZERS.register("adamw")
def adamw(params: list[dict], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=0.0, betas=tuple(betas), eps=eps, weight_decay=0.0, fused=_fused(params) or None)


@OPTIMIZERS.register("lars")
def lars(params: list[dict], momentum: float = 0.9, trust_coefficient: float = 0.02, clip: bool = True) -> torch.optim.Optimizer:
    # trust_coefficient 0.02 and clip: solo-learn scripts/pretrain/cifar/*.yaml (eta, clip_lr)
    return LARS(params, lr=0.0, momentum=momentum, trust_coefficient=trust_coefficient, clip=clip)
