"""Variational autoencoder: Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014,
https://arxiv.org/abs/1312.6114.

The posterior N(mean, exp(log_var)) comes from linear heads on the encoder's pooled
features (the features evaluation probes); a latent is drawn by reparameterisation
(sec. 2.4), mapped by a linear layer to the shape of the encoder's feature map and decoded
by the mirror decoder. The loss is the negative ELBO with a weight `beta` on the KL term
(beta-VAE, Higgins et al., ICLR 2017): a unit-variance Gaussian likelihood on normalised
pixels, -log p(x | z) = 1/2 * sum of squared errors (+ const), plus beta * KL, optionally
with beta ramped up linearly from 0 over the first `kl_warmup` fraction of training
(KL annealing, Bowman et al. 2016, https://arxiv.org/abs/1511.06349).
"""

from __future__ import annotations

import torch
from torch import nn

from ssltrain.data.batch import Batch
from ssltrain.parts.decoders import feature_map_shape
from ssltrain.errors import UserError
from ssltrain.losses.gaussian_kl import gaussian_kl
from ssltrain.losses.reconstruction import reconstruction_mse
from ssltrain.methods.families.reconstruction import PICTURES, RGB, Reconstruction
from ssltrain.registry import METHODS


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = mean + exp(log_var / 2) * eps, eps ~ N(0, I): a sample differentiable in both."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)  # [B, Z]


@METHODS.register("vae")
class VAE(Reconstruction):
    """latent_dim: size of z; beta: weight of the KL term; kl_warmup: fraction of the
    training steps over which that weight grows linearly from 0 to beta (0: none).

    Defaults from Lightning Bolts' CIFAR-10 VAE (pl_bolts/models/autoencoders/basic_vae/
    basic_vae_module.py: latent_dim 256, kl_coeff 0.1 on a per-value mean MSE and a
    per-dimension mean KL). This loss sums instead (1/2 SSE over the 3,072 values of an
    image + beta * KL summed over 256 dimensions): Bolts' loss times 1,536 is ours with
    beta = 0.1 * 1536 / 256 = 0.6."""

    def __init__(self, encoder: nn.Module, image_size: int = 32, mean: RGB = (0.0, 0.0, 0.0),
                 std: RGB = (1.0, 1.0, 1.0), latent_dim: int = 256, beta: float = 0.6, kl_warmup: float = 0.0):
        if not 0.0 <= kl_warmup <= 1.0:
            raise UserError(f"method.kl_warmup={kl_warmup} is a fraction of training: it must be in [0, 1]")
        super().__init__(encoder, image_size, mean, std)
        channels, height, width = feature_map_shape(encoder, image_size)
        self.to_mean = nn.Linear(encoder.out_dim, latent_dim)
        self.to_log_var = nn.Linear(encoder.out_dim, latent_dim)
        self.from_latent = nn.Sequential(
            nn.Linear(latent_dim, channels * height * width), nn.Unflatten(1, (channels, height, width)),
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
        )
        self.beta, self.kl_warmup = beta, kl_warmup
        self.kl_weight = beta

    def on_step_start(self, step: int, total_steps: int) -> None:
        ramp = min(1.0, step / (self.kl_warmup * total_steps)) if self.kl_warmup > 0 else 1.0
        self.kl_weight = self.beta * ramp

    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(images)  # [B, D]
        return self.to_mean(features), self.to_log_var(features)  # [B, Z] each

    def generate(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_latent(latents))  # [B, 3, H, W]

    def training_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0]  # [B, 3, H, W]
        mean, log_var = self.posterior(images)
        outputs = self.generate(reparameterize(mean, log_var))
        reconstruction = 0.5 * images[0].numel() * reconstruction_mse(outputs, images)  # 1/2 SSE per image
        kl = gaussian_kl(mean, log_var)
        return {"loss": reconstruction + self.kl_weight * kl, "reconstruction": reconstruction, "kl": kl}

    def images(self, batch: Batch) -> dict[str, torch.Tensor]:
        images = batch.views[0][:PICTURES]
        mean, _ = self.posterior(images)
        # the same prior draws every time, so the grids show the decoder changing
        latents = torch.randn(len(images), mean.shape[1], generator=torch.Generator().manual_seed(0))
        grids = {"inputs": images, "outputs": self.generate(mean), "samples": self.generate(latents.to(mean.device))}
        return {tag: self.to_pixels(grid.float()) for tag, grid in grids.items()}
