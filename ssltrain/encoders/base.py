"""The contract every encoder keeps, so methods and evaluators never ask which one it is.

- `forward(x)`: images [B, 3, H, W] -> features [B, out_dim], for every input size
  that `check_input_size` accepts
- `check_input_size(side)`: raise UserError unless inputs of that side (pixels) can be
  encoded; methods call it before training starts (CNNs take any size, ViTs multiples
  of their patch size)
- `out_dim`: the feature size
- `kind`: "cnn" or "vit", for methods that need one of them
- `stages()`: parameter-holding parts from input to output, for freezing the first K
  in fine-tuning; each stage is a list of modules and loose parameters

CNN encoders also give `forward_features(x)` -> [B, C, h, w] (the map before pooling)
and `feature_channels`, for methods that decode from or predict over the map. ViT
encoders give `tokens(x, keep=None)` -> [B, 1 + K, D] (the final class and patch tokens,
of the patches at `keep` [B, K] only when given) and `patch_size`.
"""

from __future__ import annotations

from typing import Protocol, Union, runtime_checkable

import torch
from torch import nn

Stage = list[Union[nn.Module, nn.Parameter]]


@runtime_checkable
class Encoder(Protocol):
    out_dim: int
    kind: str

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...

    def check_input_size(self, side: int) -> None: ...

    def stages(self) -> list[Stage]: ...


class AnyInputSize:
    """`check_input_size` for encoders that pool any input size down (the CNNs)."""

    def check_input_size(self, side: int) -> None:
        pass


def stage_parameters(stage: Stage) -> list[nn.Parameter]:
    params: list[nn.Parameter] = []
    for part in stage:
        params.extend(part.parameters() if isinstance(part, nn.Module) else [part])
    return params
