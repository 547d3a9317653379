"""The parameter groups every optimizer receives.

Biases and normalisation parameters (every tensor with fewer than two dimensions) get no
weight decay and, under LARS, no layer-wise adaptation (SimCLR / BYOL practice). Flags on
a group are read by schedules.OptimizerSchedule (`no_weight_decay`, `fixed_lr`) and by
LARS (`lars_exclude`).
"""

from __future__ import annotations

from torch import nn


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
