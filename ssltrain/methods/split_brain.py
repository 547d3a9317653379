"""Split-brain autoencoder: a network split in two halves, one predicting colour (ab) from
lightness (L), the other L from ab; the representation is both halves' features together.

Zhang, Isola & Efros, "Split-Brain Autoencoders: Unsupervised Learning by Cross-Channel
Prediction", CVPR 2017, https://arxiv.org/abs/1611.09842.

The halves: the paper splits each layer's channels in two. For the small CNN each half is
a small CNN of half the channels, so the concatenated feature has the configured width.
The ResNets have no width setting here: each half is a whole ResNet (the second starting
as a copy of the first's initial weights), so the feature is twice the configured width.

Inputs: a half sees its channels as an RGB image (no input adapter): L as the grey image
(a, b = 0), ab as the colour at a fixed lightness of 50 (pretext/color.py). Each half
feeds a mirror decoder (parts/decoders.py) predicting, per pixel, a distribution over
bins of the other channels: ab over in-gamut bins of side `grid`, with colorization's
soft encoding and rebalancing (methods/colorization.py's AbClassification); L over
`lightness_bins` equal bins of [0, 100] (hard targets, cross-entropy). The loss is the sum
of the two, each half trained only by its own.

`self.encoder` is the pair (SplitBrainEncoder): evaluation feeds it normalised RGB images
and gets [B, out_dim of L half + out_dim of ab half].

Defaults: the paper's 100 L bins and ab grid 10 (the 313 bins of Zhang et al., 2016);
colorization's soft encoding (5 neighbours, sigma 5) and rebalancing (lambda 0.5).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ssltrain.augment.pixels import RGB, denormalize, normalize
from ssltrain.data.batch import Batch
from ssltrain.encoders.base import Stage
from ssltrain.encoders.small import SmallCNN
from ssltrain.methods.base import SSLMethod
from ssltrain.methods.colorization import AbClassification
from ssltrain.parts.decoders import mirror_decoder
from ssltrain.pretext.color import chroma_image, lightness_image, rgb_to_lab
from ssltrain.registry import METHODS

MAX_LIGHTNESS = 100.0


def lightness_bins(lightness: torch.Tensor, count: int) -> torch.Tensor:
    """[B, 1, H, W] L in [0, 100] -> [B, H, W] int64 index of its bin among `count` equal bins."""
    return (lightness[:, 0] / MAX_LIGHTNESS * count).long().clamp(0, count - 1)


def half_network(encoder: nn.Module) -> nn.Module:
    """A network for one half: the small CNN at half its channels, else a copy of `encoder`."""
    if isinstance(encoder, SmallCNN):
        return SmallCNN(tuple(max(1, block[0].out_channels // 2) for block in encoder.blocks))
    return copy.deepcopy(encoder)


class SplitBrainEncoder(nn.Module):
    """Normalised RGB [B, 3, H, W] -> [B, out_dim]: the L half's features of the grey image,
    then the ab half's of the colour image. Keeps the encoder contract (encoders/base.py)."""

    kind = "cnn"

    def __init__(self, lightness: nn.Module, colour: nn.Module, mean: RGB, std: RGB):
        super().__init__()
        self.lightness, self.colour = lightness, colour  # the halves that see L and ab
        self.mean, self.std = tuple(mean), tuple(std)
        self.out_dim = lightness.out_dim + colour.out_dim

    def inputs(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised views -> (the L half's input, the ab half's input, Lab [B, 3, H, W])."""
        lab = rgb_to_lab(denormalize(images.float(), self.mean, self.std))
        return normalize(lightness_image(lab), self.mean, self.std), normalize(chroma_image(lab), self.mean, self.std), lab

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        grey, colour, _ = self.inputs(images)
        return torch.cat([self.lightness(grey), self.colour(colour)], dim=1)  # [B, out_dim]

    def check_input_size(self, side: int) -> None:
        self.lightness.check_input_size(side)

    def stages(self) -> list[Stage]:
        return [[*first, *second] for first, second in zip(self.lightness.stages(), self.colour.stages())]


@METHODS.register("split_brain")
class SplitBrain(SSLMethod):
    """grid, neighbours, sigma, rebalance, prior_momentum: the ab classification's (see
    methods/colorization.py); lightness_bins: the number of L bins."""

    views = (1, 1)
    encoder_kinds = ("cnn",)

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), grid: float = 10.0, neighbours: int = 5, sigma: float = 5.0,
                 rebalance: float = 0.5, prior_momentum: float = 0.99, lightness_bins: int = 100):
        super().__init__(self.encoder_module(encoder, mean, std))
        # the temperature is of colorization's pictures' annealed mean, which split_brain does not draw
        self.ab = AbClassification(grid, neighbours, sigma, rebalance, prior_momentum, temperature=0.38)
        self.lightness_bins = lightness_bins
        self.ab_decoder = mirror_decoder(self.encoder.lightness, image_size, self.ab.out_channels)
        self.lightness_decoder = mirror_decoder(self.encoder.colour, image_size, lightness_bins)

    @staticmethod
    def encoder_module(encoder: nn.Module, mean: RGB, std: RGB) -> nn.Module:
        return SplitBrainEncoder(half_network(encoder), half_network(encoder), mean, std)

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        grey, colour, lab = self.encoder.inputs(batch.views[0])
        ab_logits = self.ab_decoder(self.encoder.lightness.forward_features(grey))  # [B, Q, H, W]
        lightness_logits = self.lightness_decoder(self.encoder.colour.forward_features(colour))  # [B, L, H, W]
        ab_loss = self.ab.loss(ab_logits, lab[:, 1:])
        lightness_loss = F.cross_entropy(lightness_logits.float(), lightness_bins(lab[:, :1], self.lightness_bins))
        return {"loss": ab_loss + lightness_loss, "ab_loss": ab_loss.detach(), "lightness_loss": lightness_loss.detach()}
