"""The registered optimizers. Each builder takes the parameter groups (param_groups.py) and
its own settings; the learning rate and weight decay are set per step by the schedule."""

from __future__ import annotations

import torch

from ssltrain.optim.lars import LARS
from ssltrain.registry import OPTIMIZERS


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
