"""ResNets as torchvision builds them, minus the classifier, with a CIFAR stem for small images.

The state_dict keys are torchvision's own, so `backbone.pt` loads with strict=True into
`torchvision.models.resnet18()` after `fc = nn.Identity()` (and, for the CIFAR stem, the
same `conv1` / `maxpool` swap as below).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from ssltrain.encoders.base import AnyInputSize, Stage
from ssltrain.registry import ENCODERS

CIFAR_STEM_MAX_SIZE = 64  # auto: images up to this side get the CIFAR stem


def use_cifar_stem(model: ResNet) -> None:
    """3x3 stride-1 first conv and no max-pool: keeps 32 px images at 32x32 into layer1
    (the stem of SimCLR's CIFAR-10 experiments, appendix B.9)."""
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()


class ResNetEncoder(AnyInputSize, ResNet):
    kind = "cnn"

    def __init__(self, block, layers: list[int], cifar_stem: bool, zero_init_residual: bool):
        super().__init__(block, layers, zero_init_residual=zero_init_residual)
        if cifar_stem:
            use_cifar_stem(self)
        self.out_dim = self.feature_channels = self.fc.in_features
        self.fc = nn.Identity()

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(images))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))  # [B, C, h, w]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.avgpool(self.forward_features(images)), 1)  # [B, C]

    def stages(self) -> list[Stage]:
        return [[self.conv1, self.bn1], [self.layer1], [self.layer2], [self.layer3], [self.layer4]]


def _resnet(block, layers: list[int], image_size: int, cifar_stem: Optional[bool], zero_init_residual: bool) -> ResNetEncoder:
    stem = image_size <= CIFAR_STEM_MAX_SIZE if cifar_stem is None else cifar_stem
    return ResNetEncoder(block, layers, cifar_stem=stem, zero_init_residual=zero_init_residual)


@ENCODERS.register("resnet18")
def resnet18(image_size: int, cifar_stem: Optional[bool] = None, zero_init_residual: bool = False) -> ResNetEncoder:
    """cifar_stem: null chooses by image size (<= 64 px: CIFAR stem)."""
    return _resnet(BasicBlock, [2, 2, 2, 2], image_size, cifar_stem, zero_init_residual)


@ENCODERS.register("resnet34")
def resnet34(image_size: int, cifar_stem: Optional[bool] = None, zero_init_residual: bool = False) -> ResNetEncoder:
    return _resnet(BasicBlock, [3, 4, 6, 3], image_size, cifar_stem, zero_init_residual)


@ENCODERS.register("resnet50")
def resnet50(image_size: int, cifar_stem: Optional[bool] = None, zero_init_residual: bool = False) -> ResNetEncoder:
    return _resnet(Bottleneck, [3, 4, 6, 3], image_size, cifar_stem, zero_init_residual)
