"""LARS: SGD with a layer-wise trust ratio (You et al., 2017, https://arxiv.org/abs/1708.03888)."""

from __future__ import annotations

from typing import Iterable

import torch


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
