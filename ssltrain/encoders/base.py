"""The contract every encoder keeps, so methods and evaluators never ask which one it is.

- `forward(x)`: images [B, 3, H, W] -> features [B, out_dim]
- `out_dim`: the feature size
- `kind`: "cnn" or "vit", for methods that need one of them
- `stages()`: parameter-holding parts from input to output, for freezing the first K
  in fine-tuning; each stage is a list of modules and loose parameters

CNN encoders also give `forward_features(x)` -> [B, C, h, w] (the map before pooling)
and `feature_channels`, for methods that decode from or predict over the map.
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

    def stages(self) -> list[Stage]: ...


def stage_parameters(stage: Stage) -> list[nn.Parameter]:
    params: list[nn.Parameter] = []
    for part in stage:
        params.extend(part.parameters() if isinstance(part, nn.Module) else [part])
    return params
