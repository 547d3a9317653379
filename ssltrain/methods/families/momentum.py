"""The shared skeleton of the methods with a momentum (EMA) target network: MoCo v2,
MoCo v3 and BYOL. Not a method itself (nothing is registered here).

The target network is a frozen copy of the encoder and projector. It takes no gradients;
after every optimizer step it moves towards the online networks,
target <- m * target + (1 - m) * online, with m following half a cosine from
`base_momentum` at the first step to `final_momentum` at the last (BYOL, sec. 3.2).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ssltrain.methods.base import SSLMethod, encode_each
from ssltrain.parts.momentum import cosine_momentum, ema_update, frozen_copy


class MomentumMethod(SSLMethod):
    def __init__(self, encoder: nn.Module, projector: nn.Module, base_momentum: float, final_momentum: float):
        super().__init__(encoder)
        self.projector = projector
        self.momentum_encoder = frozen_copy(encoder)
        self.momentum_projector = frozen_copy(projector)
        self.base_momentum, self.final_momentum = base_momentum, final_momentum

    def momentum(self, step: int, total_steps: int) -> float:
        return cosine_momentum(self.base_momentum, step, total_steps, self.final_momentum)

    @torch.no_grad()
    def targets(self, views: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """The momentum network's projection of each view ([B, D] each), without a graph;
        one view at a time, as the three methods' reference code does."""
        return encode_each(views, lambda x: self.momentum_projector(self.momentum_encoder(x)))

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        momentum = self.momentum(step, total_steps)
        ema_update(self.momentum_encoder, self.encoder, momentum)
        ema_update(self.momentum_projector, self.projector, momentum)
