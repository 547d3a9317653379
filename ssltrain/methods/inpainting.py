"""Context Encoder: fill in blocks hidden from the encoder (Pathak, Krähenbühl, Donahue,
Darrell & Efros, "Context Encoders: Feature Learning by Inpainting", CVPR 2016,
https://arxiv.org/abs/1604.07379).

The hidden pixels are set to 0 in normalised space, the dataset's mean colour (the
reference code fills them with the mean pixel). The loss is the squared error on the
hidden region (eq. 1), plus `outside_weight` times the error elsewhere. With
`adversarial_weight` w > 0, a small discriminator judges the completed images (the
reconstruction pasted into the hole) and the loss becomes (1 - w) * reconstruction
+ w * adversarial (eq. 3; the paper uses w = 0.001).

The discriminator trains in the same optimizer and the same backward pass: its own loss
sees the completed images detached, so it moves only the discriminator; the generator's
non-saturating loss runs the discriminator with detached copies of its parameters, so it
moves only the encoder and decoder. One step updates both players simultaneously.

Defaults: 4 random blocks of 8 x 8 at 32 px hide at most a quarter of the image, the
paper's proportion; reconstruction loss only (the adversarial term, weight 0.001 in the
paper, sharpens the inpainted pixels: turn it on with adversarial_weight).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.func import functional_call

from ssltrain.errors import UserError
from ssltrain.losses.gan import discriminator_loss, generator_loss
from ssltrain.losses.reconstruction import reconstruction_mse
from ssltrain.pretext.masking import block_mask
from ssltrain.methods.families.reconstruction import RGB, PixelReconstruction
from ssltrain.registry import METHODS


def discriminator(image_size: int, width: int = 64) -> nn.Sequential:
    """[B, 3, S, S] -> [B, 1, 1, 1] logits: 4x4 stride-2 convs with LeakyReLU(0.2), doubling
    the width, down to 4x4, then a 4x4 conv to one logit (the Context Encoder's DCGAN-style
    discriminator, without BatchNorm so that real and completed batches stay independent)."""
    layers: list[nn.Module] = []
    channels, size = 3, image_size
    while size > 4:
        layers += [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True)]
        channels, width, size = width, width * 2, size // 2
    layers.append(nn.Conv2d(channels, 1, size))
    return nn.Sequential(*layers)


@METHODS.register("inpainting")
class Inpainting(PixelReconstruction):
    """block: side of each hidden square in pixels; blocks: how many at random positions
    (they may overlap); center: one centred block instead."""

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), block: int = 8, blocks: int = 4, center: bool = False,
                 outside_weight: float = 0.0, adversarial_weight: float = 0.0):
        if not 0 < block <= image_size:
            raise UserError(f"method.block={block} must be between 1 and the image size {image_size}")
        if not 0.0 <= adversarial_weight < 1.0:
            raise UserError(f"method.adversarial_weight={adversarial_weight} must be in [0, 1)")
        super().__init__(encoder, image_size, mean, std)
        self.block, self.blocks, self.center = block, blocks, center
        self.outside_weight, self.adversarial_weight = outside_weight, adversarial_weight
        self.discriminator = discriminator(image_size) if adversarial_weight > 0 else None

    def corrupt(self, images: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        batch, _, height, width = images.shape
        hidden = block_mask(batch, height, width, self.block, self.blocks, self.center, images.device)  # [B, 1, H, W]
        return images.masked_fill(hidden, 0.0), hidden

    def losses(self, images: torch.Tensor, outputs: torch.Tensor, region: Optional[torch.Tensor]) -> dict[str, torch.Tensor]:
        reconstruction = reconstruction_mse(outputs, images, region, self.outside_weight)
        if self.discriminator is None:
            return {"loss": reconstruction}
        completed = torch.where(region, outputs, images)  # [B, 3, H, W]: the hole filled in
        frozen = {name: param.detach() for name, param in self.discriminator.named_parameters()}
        adversarial = generator_loss(functional_call(self.discriminator, frozen, (completed,)))
        critic = discriminator_loss(self.discriminator(images), self.discriminator(completed.detach()))
        weight = self.adversarial_weight
        return {"loss": (1 - weight) * reconstruction + weight * adversarial + critic,
                "reconstruction": reconstruction, "adversarial": adversarial, "discriminator": critic}
