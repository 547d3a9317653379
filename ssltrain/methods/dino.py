"""DINO: self-distillation with no labels.

Caron et al., ICCV 2021, https://arxiv.org/abs/2104.14294. A student (encoder + DINO
head) sees every crop; a teacher, its exponential moving average, sees the two global
crops. The student's softmax (temperature 0.1) matches the teacher's centred and
sharpened softmax on every other crop; centring and sharpening together avoid collapse
(sec. 3.1, algorithm 1).

Step-based settings are fractions of the run's steps, since a method sees only
(step, total_steps): e.g. 30 warm-up epochs of a 300-epoch run is 0.1.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.errors import check_choice
from ssltrain.parts.heads import NORMS, mlp
from ssltrain.losses.dino import dino_loss, updated_center
from ssltrain.methods.base import encode_views
from ssltrain.methods.families.multicrop import GLOBAL_CROPS, MultiCropMethod
from ssltrain.parts.prototypes import Prototypes
from ssltrain.parts.momentum import cosine_momentum, ema_update, frozen_copy
from ssltrain.registry import METHODS


class DINOHead(nn.Module):
    """MLP (in -> hidden -> hidden -> bottleneck, GELU), L2 normalisation, then a
    weight-normalised bias-free layer to out_dim (its norm fixed to 1, the paper's default)
    (sec. 3.1, appendix).

    Initialised as facebookresearch/dino vision_transformer.py DINOHead: the MLP's Linear
    weights truncated normal with std 0.02 and zero biases (its trunc_normal_, like torch's,
    cuts at -2 and 2 absolute, 100 std: in effect a plain normal); the last layer keeps
    nn.Linear's default init, since DINOHead builds it after applying `_init_weights`."""

    def __init__(self, in_dim: int, hidden_dim: int, bottleneck_dim: int, out_dim: int, norm: Optional[str]):
        super().__init__()
        if norm is not None:
            check_choice("method.head_norm", norm, tuple(NORMS))
        self.mlp = mlp([in_dim, hidden_dim, hidden_dim, bottleneck_dim], hidden_norm=norm, activation="gelu")
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                nn.init.trunc_normal_(layer.weight, std=0.02)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        self.last_layer = Prototypes(bottleneck_dim, out_dim, normalize_weight=True)
        # nn.Linear's default, uniform within +-1/sqrt(in): the forward sees only the rows'
        # directions, but their norm (about 1/sqrt(3)) sets how fast the directions move
        bound = 1 / math.sqrt(bottleneck_dim)
        nn.init.uniform_(self.last_layer.weight, -bound, bound)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(features), dim=1))  # [B, out_dim]


def teacher_temperature(step: int, total_steps: int, start: float, end: float, warmup_fraction: float) -> float:
    """Linear from `start` at step 0 to `end` at step warmup_fraction * total_steps, then `end`."""
    warmup_steps = warmup_fraction * total_steps
    if step >= warmup_steps:
        return end
    return start + (end - start) * step / warmup_steps


@METHODS.register("dino")
class DINO(MultiCropMethod):
    couples_batch = True

    def __init__(self, encoder: nn.Module, out_dim: int = 4096, hidden_dim: int = 2048, bottleneck_dim: int = 256,
                 head_norm: Optional[str] = None, student_temperature: float = 0.1,
                 warmup_teacher_temperature: float = 0.04, teacher_temperature: float = 0.07,
                 teacher_temperature_warmup_fraction: float = 0.03, center_momentum: float = 0.9,
                 base_momentum: float = 0.9995, final_momentum: float = 1.0,
                 freeze_last_layer_fraction: float = 0.001):
        """head_norm: null (the paper) or "batch" (BatchNorm in the head's hidden layers).
        The teacher temperature rises linearly from warmup_teacher_temperature to
        teacher_temperature over the first teacher_temperature_warmup_fraction of the run;
        the teacher's momentum follows a cosine from base_momentum to final_momentum; the
        head's last layer gets no gradient during the first freeze_last_layer_fraction."""
        super().__init__(encoder)
        self.head = DINOHead(encoder.out_dim, hidden_dim, bottleneck_dim, out_dim, head_norm)
        self.teacher_encoder = frozen_copy(encoder)
        self.teacher_head = frozen_copy(self.head)
        self.register_buffer("center", torch.zeros(out_dim))  # [K]
        # a tensor, so that a compiled step does not recompile as it changes every step
        self.register_buffer("teacher_temp", torch.tensor(warmup_teacher_temperature), persistent=False)
        self.student_temperature = student_temperature
        self.teacher_temperatures = dict(start=warmup_teacher_temperature, end=teacher_temperature,
                                         warmup_fraction=teacher_temperature_warmup_fraction)
        self.center_momentum = center_momentum
        self.base_momentum, self.final_momentum = base_momentum, final_momentum
        self.freeze_last_layer_fraction = freeze_last_layer_fraction
        self.on_step_start(0, 1)

    def on_step_start(self, step: int, total_steps: int) -> None:
        self.teacher_temp.fill_(teacher_temperature(step, total_steps, **self.teacher_temperatures))
        self.head.last_layer.frozen = step < self.freeze_last_layer_fraction * total_steps

    def after_optimizer_step(self, step: int, total_steps: int) -> None:
        momentum = cosine_momentum(self.base_momentum, step, total_steps, final=self.final_momentum)
        ema_update(self.teacher_encoder, self.encoder, momentum)
        ema_update(self.teacher_head, self.head, momentum)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        student = encode_views(batch.views, lambda x: self.head(self.encoder(x)))  # V x [B, K]
        with torch.no_grad():
            teacher = encode_views(batch.views[:GLOBAL_CROPS], lambda x: self.teacher_head(self.teacher_encoder(x)))  # 2 x [B, K]
        loss = dino_loss(student, teacher, self.center, self.student_temperature, self.teacher_temp)
        self.center.copy_(updated_center(self.center, torch.cat(teacher), self.center_momentum))
        return {"loss": loss, "teacher_temperature": self.teacher_temp.detach().clone()}
