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
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad.add(param, alpha=group["weight_decay"]) if group["weight_decay"] else param.grad.clone()
                if not group.get("lars_exclude", False):
                    param_norm, grad_norm = torch.linalg.vector_norm(param), torch.linalg.vector_norm(param.grad)
                    ratio = group["trust_coefficient"] * param_norm / (grad_norm + group["weight_decay"] * param_norm + group["eps"])
                    if group["clip"]:
                        ratio = torch.clamp(ratio / group["lr"], max=1.0)
                    ratio = torch.where((param_norm > 0) & (grad_norm > 0), ratio, torch.ones_like(ratio))
                    grad.mul_(ratio)
                state = self.state[param]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = grad
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                param.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


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
