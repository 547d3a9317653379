"""Momentum (EMA) copies of a network, and the cosine schedule their momentum follows.

Used by the methods with a teacher or key encoder (MoCo, BYOL, DINO, ...): the copy is
frozen (no gradients) and after each optimizer step moves towards the online network.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy that takes no gradients (and so is left out of the optimizer)."""
    target = copy.deepcopy(module)
    target.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, for every parameter.

    Buffers (BatchNorm statistics) are not averaged: the copy keeps its own, from its
    own forward passes, as in MoCo's and BYOL's reference code.
    """
    target_params = list(target.parameters())
    online_params = list(online.parameters())
    torch._foreach_lerp_(target_params, online_params, 1.0 - momentum)


def cosine_momentum(base: float, step: int, total_steps: int, final: float = 1.0) -> float:
    """From `base` at step 0 to `final` at the last step along half a cosine:
    tau = final - (final - base) * (cos(pi * k / K) + 1) / 2 (BYOL, Grill et al. 2020, sec. 3.2)."""
    progress = step / max(1, total_steps)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2
