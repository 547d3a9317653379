"""Colorization: predict the colour (ab in CIE Lab) of an image from its lightness (L).

Zhang, Isola & Efros, "Colorful Image Colorization", ECCV 2016,
https://arxiv.org/abs/1603.08511.

The encoder sees the lightness as a grey RGB image (the view with its colour removed:
Lab (L, 0, 0) converted back to sRGB, normalised like every view), so the encoder that
evaluation later feeds RGB images needs no input adapter. The decoder predicts, per
pixel, either a distribution over quantised ab bins (loss=classification, the paper's
rebalanced multinomial cross-entropy with soft-encoded targets) or ab itself
(loss=regression, the paper's L2 baseline, on ab / 100).

Class rebalancing needs the distribution of ab bins over the data; it is estimated on the
fly, as a bias-corrected exponential moving average of each batch's bin histogram
(momentum `prior_momentum`, averaged over DDP ranks), kept in buffers so that it is
checkpointed and resumed with the model.
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.runtime import dist
from ssltrain.pretext.ab_bins import (annealed_mean, bin_histogram, gamut_bins, nearest_bin, rebalancing_weights,
                              soft_encode)
from ssltrain.pretext.color import lab_to_rgb, lightness_image, rgb_to_lab
from ssltrain.data.batch import Batch
from ssltrain.errors import UserError
from ssltrain.losses.rebalanced_cross_entropy import rebalanced_cross_entropy
from ssltrain.losses.reconstruction import reconstruction_mse
from ssltrain.methods.families.reconstruction import PICTURES, RGB, Reconstruction
from ssltrain.registry import METHODS

AB_SCALE = 100.0  # regression predicts ab / AB_SCALE


class AbRegression(nn.Module):
    """Decoder outputs [B, 2, H, W] = ab / AB_SCALE, mean squared error."""

    out_channels = 2

    def loss(self, outputs: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        return reconstruction_mse(outputs, ab / AB_SCALE)

    def colours(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float() * AB_SCALE  # [B, 2, H, W]


class AbClassification(nn.Module):
    """Decoder outputs [B, Q, H, W] logits over the in-gamut ab bins of side `grid`."""

    def __init__(self, grid: float, neighbours: int, sigma: float, rebalance: float, prior_momentum: float,
                 temperature: float):
        super().__init__()
        self.register_buffer("centres", gamut_bins(grid))  # [Q, 2]
        self.register_buffer("frequency", torch.zeros(len(self.centres)))  # [Q] EMA of bin histograms
        self.register_buffer("frequency_mass", torch.zeros(()))  # EMA of 1: the bias correction
        self.out_channels = len(self.centres)
        self.neighbours, self.sigma, self.rebalance = neighbours, sigma, rebalance
        self.prior_momentum, self.temperature = prior_momentum, temperature

    @torch.no_grad()
    def update_prior(self, bins: torch.Tensor) -> torch.Tensor:
        """Fold this batch's [B, H, W] nearest bins into the estimate; returns the [Q] bin
        distribution estimated so far."""
        histogram = dist.all_reduce_mean(bin_histogram(bins, len(self.centres)))  # [Q]
        momentum = self.prior_momentum
        self.frequency.mul_(momentum).add_(histogram, alpha=1 - momentum)
        self.frequency_mass.mul_(momentum).add_(1 - momentum)
        return self.frequency / self.frequency_mass

    def loss(self, outputs: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = soft_encode(ab, self.centres, self.neighbours, self.sigma)  # [B, Q, H, W]
            bins = nearest_bin(ab, self.centres)  # [B, H, W]
            weights = rebalancing_weights(self.update_prior(bins), self.centres, self.rebalance, self.sigma)  # [Q]
        return rebalanced_cross_entropy(outputs, targets, weights[bins])

    def colours(self, outputs: torch.Tensor) -> torch.Tensor:
        return annealed_mean(outputs, self.centres, self.temperature)  # [B, 2, H, W]


OBJECTIVES = ("classification", "regression")


@METHODS.register("colorization")
class Colorization(Reconstruction):
    """loss: classification (grid: ab bin side; neighbours / sigma: soft encoding;
    rebalance: the uniform share lambda of the rebalancing; prior_momentum: of the bin
    distribution estimate; temperature: of the annealed mean shown in the pictures) or
    regression (the classification options are then unused).

    Defaults: the paper's rebalancing (lambda 0.5, sec. 2.2), 5-neighbour soft encoding and
    annealed-mean temperature 0.38 (sec. 2.3). At 32 px the decoder predicts every pixel (the
    paper predicts at a quarter of the resolution), so the grid is coarser than the paper's
    10 (313 bins): 20, giving 76 in-gamut bins, with the Gaussian width scaled with it
    (sigma 10 for the paper's 5). For the paper's bins: grid=10 sigma=5."""

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), loss: str = "classification", grid: float = 20.0,
                 neighbours: int = 5, sigma: float = 10.0, rebalance: float = 0.5, prior_momentum: float = 0.99,
                 temperature: float = 0.38):
        if loss not in OBJECTIVES:
            raise UserError(f"method.loss={loss!r} is not valid; choose one of: {', '.join(OBJECTIVES)}")
        objective = (AbClassification(grid, neighbours, sigma, rebalance, prior_momentum, temperature)
                     if loss == "classification" else AbRegression())
        super().__init__(encoder, image_size, mean, std, out_channels=objective.out_channels)
        self.objective = objective

    def split(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised views -> (encoder input [B, 3, H, W]: the grey image, L [B, 1, H, W],
        ab [B, 2, H, W])."""
        lab = rgb_to_lab(self.to_pixels(images.float()))  # [B, 3, H, W]
        return self.from_pixels(lightness_image(lab)), lab[:, :1], lab[:, 1:]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        inputs, _, ab = self.split(batch.views[0])
        return {"loss": self.objective.loss(self.reconstruct(inputs), ab)}

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0][:PICTURES]
        inputs, lightness, _ = self.split(images)
        ab = self.objective.colours(self.reconstruct(inputs))  # [N, 2, H, W]
        return {"inputs": self.to_pixels(inputs.float()), "outputs": lab_to_rgb(torch.cat([lightness, ab], dim=1)).clamp(0, 1),
                "targets": self.to_pixels(images.float())}
