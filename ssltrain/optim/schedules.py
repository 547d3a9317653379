"""Per-iteration schedules, precomputed once (DINO style): index by the global step."""

from __future__ import annotations

import math

import torch


def cosine(progress: torch.Tensor, base: float, final: float, decay_start: float) -> torch.Tensor:
    """Half a cosine from `base` to `final`."""
    return final + 0.5 * (base - final) * (1 + torch.cos(math.pi * progress))


def inverse_decay(progress: torch.Tensor, base: float, final: float, decay_start: float) -> torch.Tensor:
    """base / (1 + 10 p)^0.75: DANN's annealing, mu_p = mu_0 / (1 + alpha p)^beta with
    alpha = 10, beta = 0.75 (Ganin et al., JMLR 2016, sec. 5.2.2); `final` plays no part."""
    return base / (1 + 10 * progress) ** 0.75


def linear_decay(progress: torch.Tensor, base: float, final: float, decay_start: float) -> torch.Tensor:
    """`base` until p = decay_start, then a straight line to `final` at p = 1 (CycleGAN,
    Zhu et al., ICCV 2017, sec. 7.1: constant for 100 epochs, linearly to zero over the next 100)."""
    return final + (base - final) * ((1 - progress) / (1 - decay_start)).clamp(max=1.0)


# optimizer.lr_schedule's choices: the decay after the warm-up, of progress p in [0, 1).
DECAYS = {"cosine": cosine, "inverse_decay": inverse_decay, "linear_decay": linear_decay}


def warmup_decay(name: str, base: float, final: float, total_steps: int, warmup_steps: int = 0,
                 warmup_start: float = 0.0, decay_start: float = 0.5) -> torch.Tensor:
    """Linear from `warmup_start` to `base` over `warmup_steps`, then DECAYS[name] over the
    remaining steps (p = i / remaining for the i-th of them); `decay_start`: linear_decay's.

    Returns [total_steps] float64 values; step i uses values[i].
    """
    warmup_steps = min(warmup_steps, total_steps)
    warmup = torch.linspace(warmup_start, base, warmup_steps + 1, dtype=torch.float64)[:-1] if warmup_steps else torch.empty(0, dtype=torch.float64)
    remaining = total_steps - warmup_steps
    progress = torch.arange(remaining, dtype=torch.float64) / max(1, remaining)
    return torch.cat([warmup, DECAYS[name](progress, base, final, decay_start)])


def warmup_cosine(base: float, final: float, total_steps: int, warmup_steps: int = 0, warmup_start: float = 0.0) -> torch.Tensor:
    """Linear from `warmup_start` to `base` over `warmup_steps`, then half a cosine to `final`."""
    return warmup_decay("cosine", base, final, total_steps, warmup_steps, warmup_start)


def capped_warmup(warmup_epochs: float, max_fraction: float, epochs: int) -> float:
    """The warm-up a run of `epochs` gets: the recipe's, but at most `max_fraction` of the run.

    Recipes state their warm-up for the length they were written for (10 epochs of a
    1000-epoch run); a shortened run (`trainer.epochs=15`) would otherwise spend most of
    its steps warming up.
    """
    return min(warmup_epochs, max_fraction * epochs)


class OptimizerSchedule:
    """Sets every group's lr and weight decay for a step from precomputed schedules.

    Group flags: `no_weight_decay` (biases and norms, which also run at `bias_lr_scale`
    times the lr) and `fixed_lr` (keeps the base lr, as SimSiam's predictor).
    """

    def __init__(self, lr: torch.Tensor, weight_decay: torch.Tensor, base_lr: float, bias_lr_scale: float = 1.0):
        self.lr, self.weight_decay, self.base_lr = lr.tolist(), weight_decay.tolist(), base_lr
        self.bias_lr_scale = bias_lr_scale

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        step = min(step, len(self.lr) - 1)
        for group in optimizer.param_groups:
            lr = self.base_lr if group.get("fixed_lr") else self.lr[step]
            biases_and_norms = group.get("no_weight_decay", False)
            group["lr"] = lr * (self.bias_lr_scale if biases_and_norms else 1.0)
            group["weight_decay"] = 0.0 if biases_and_norms else self.weight_decay[step]
        return self.lr[step]
